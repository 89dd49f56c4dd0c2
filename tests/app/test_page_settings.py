"""AppTest of the Settings page: session overrides, connection test, the key never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from perturb_core.testing.fake_openai import FAKE_API_KEY, FakeOpenAI

pytestmark = pytest.mark.realdata


def test_settings_never_shows_the_key(real_data, monkeypatch: pytest.MonkeyPatch, open_page, texts) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_API_KEY)
    at = open_page("settings")
    assert at.title[0].value == "Settings"
    shown = texts(at) + "".join(str(t.value) for t in at.text_input)
    assert FAKE_API_KEY not in shown
    assert "environment (OPENAI_API_KEY)" in shown


def test_settings_test_connection_and_session_override(real_data, open_page, assert_clean) -> None:
    with FakeOpenAI(lambda req: "OK") as server:
        at = open_page("settings")
        test_button = next(b for b in at.button if b.label == "Test connection")
        assert test_button.disabled  # nothing configured yet
        at.text_input[0].input(server.base_url)
        at.text_input[1].input("fake-model")
        next(b for b in at.button if b.label == "Apply for this session").click().run()
        assert_clean(at)
        assert at.session_state["llm_overrides"] == {
            "llm_base_url": server.base_url,
            "llm_model": "fake-model",
        }
        next(b for b in at.button if b.label == "Test connection").click().run()
        assert_clean(at)
        assert any("Connected" in s.value for s in at.success)
        assert server.n_requests == 1


def test_settings_rejects_a_bad_endpoint(real_data, open_page) -> None:
    at = open_page("settings")
    at.text_input[0].input("localhost:8000")
    next(b for b in at.button if b.label == "Apply for this session").click().run()
    assert not at.exception
    assert any("must start with http" in e.value for e in at.error)
    assert "llm_overrides" not in at.session_state


def test_settings_connection_failure_is_an_error_not_a_traceback(real_data, open_page) -> None:
    with FakeOpenAI(
        lambda req: (401, {"error": {"message": "bad key", "type": "auth", "param": None, "code": None}})
    ) as server:
        at = open_page(
            "settings", {"llm_overrides": {"llm_base_url": server.base_url, "llm_model": "fake-model"}}
        )
        next(b for b in at.button if b.label == "Test connection").click().run()
        assert not at.exception
        assert at.error and "OPENAI_API_KEY" in at.error[0].value


OPERATOR_KEY = "sk-operator-secret-0123456789"
VISITOR_KEY = "sk-visitor-typed-9876543210"


@pytest.mark.parametrize(
    ("operator_url", "override_url", "session_key", "expected_key"),
    [
        (None, None, None, OPERATOR_KEY),  # no override: the operator's endpoint and key
        ("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/", None, OPERATOR_KEY),  # same endpoint
        (None, "https://API.openai.com/v1", None, OPERATOR_KEY),  # the default endpoint, spelled out
        ("http://127.0.0.1:9/v1", "http://attacker.invalid/v1", None, None),  # never the operator's key
        (None, "http://attacker.invalid/v1", None, None),
        ("http://127.0.0.1:9/v1", "", None, None),  # empty = OpenAI's endpoint, not the operator's
        ("http://127.0.0.1:9/v1", "http://attacker.invalid/v1", VISITOR_KEY, VISITOR_KEY),
        (None, None, VISITOR_KEY, VISITOR_KEY),
    ],
)
def test_the_operator_key_only_goes_to_the_operator_endpoint(
    operator_url: str | None, override_url: str | None, session_key: str | None, expected_key: str | None
) -> None:
    from pages._state import session_llm_settings
    from perturb_core.config import Settings

    operator = Settings(
        mirror=None,
        data_dir=Path("data"),
        cache_dir=Path("cache"),
        llm_base_url=operator_url,
        llm_api_key=OPERATOR_KEY,
    )
    overrides = {} if override_url is None else {"llm_base_url": override_url, "llm_model": "m"}
    assert session_llm_settings(operator, overrides, session_key).llm_api_key == expected_key


def test_a_visitor_endpoint_never_receives_the_server_key(
    real_data, monkeypatch: pytest.MonkeyPatch, open_page
) -> None:
    """The "attacker" answers only requests carrying the operator's key: the test connection must fail."""
    with FakeOpenAI(lambda req: "OK") as operator, FakeOpenAI(lambda req: "stolen") as attacker:
        monkeypatch.setenv("OPENAI_BASE_URL", operator.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", OPERATOR_KEY)
        attacker.api_key = OPERATOR_KEY  # 401 unless the request carries the operator's key
        at = open_page("settings")
        at.text_input[0].input(attacker.base_url)
        at.text_input[1].input("fake-model")
        next(b for b in at.button if b.label == "Apply for this session").click().run()
        next(b for b in at.button if b.label == "Test connection").click().run()
        assert not at.exception and not any("Connected" in s.value for s in at.success)
        assert at.error  # the attacker refused a request without the operator's key
        shown = " ".join(str(m.value) for m in at.markdown)
        assert "only sent to the server's own endpoint" in shown and OPERATOR_KEY not in shown


def test_a_visitor_key_is_sent_to_the_visitor_endpoint_only_for_the_session(
    real_data, monkeypatch: pytest.MonkeyPatch, open_page
) -> None:
    with FakeOpenAI(lambda req: "OK") as visitor:
        monkeypatch.setenv("OPENAI_API_KEY", OPERATOR_KEY)
        visitor.api_key = VISITOR_KEY
        at = open_page("settings")
        at.text_input[0].input(visitor.base_url)
        at.text_input[1].input("fake-model")
        at.text_input[2].input(VISITOR_KEY)
        next(b for b in at.button if b.label == "Apply for this session").click().run()
        next(b for b in at.button if b.label == "Test connection").click().run()
        assert any("Connected" in s.value for s in at.success) and visitor.n_requests == 1
        shown = " ".join(str(m.value) for m in at.markdown)
        assert VISITOR_KEY not in shown and "typed for this session" in shown
        next(b for b in at.button if b.label == "Reset to defaults").click().run()
        assert "llm_session_key" not in at.session_state


@pytest.mark.parametrize(("mode", "operator"), [("on", True), ("off", False)])
def test_destructive_actions_and_paths_are_for_the_operator(
    real_data, monkeypatch: pytest.MonkeyPatch, open_page, texts, mode: str, operator: bool
) -> None:
    monkeypatch.setenv("PERTURB_CORE_OPERATOR_ACTIONS", mode)
    at = open_page("settings")
    assert not at.exception
    labels = {b.label for b in at.button}
    shown = texts(at)
    assert ("Clear the cache" in labels) is operator and ("Rebuild data" in labels) is operator
    assert (str(real_data.processed_dir) in shown) is operator
    assert ("are for the operator" in shown) is not operator


def test_a_bad_operator_setting_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from perturb_core.config import get_settings
    from perturb_core.errors import ConfigError

    monkeypatch.setenv("PERTURB_CORE_OPERATOR_ACTIONS", "maybe")
    with pytest.raises(ConfigError, match=r"operator_actions = 'maybe'.*valid: local, on, off"):
        get_settings()


def test_settings_lists_served_models_and_labels_the_tiny_model(
    real_data, open_page, assert_clean, texts
) -> None:
    with FakeOpenAI(lambda req: "OK", model_ids=("SmolLM2-135M-Instruct.Q4_1", "other")) as server:
        at = open_page("settings")
        at.text_input[0].input(server.base_url)
        at.text_input[1].input("SmolLM2-135M-Instruct.Q4_1")
        next(b for b in at.button if b.label == "Apply for this session").click().run()
        next(b for b in at.button if b.label == "List served models").click().run()
        assert_clean(at)
        table = at.dataframe[0].value
        assert list(table["id"]) == ["SmolLM2-135M-Instruct.Q4_1", "other"] and table[
            "configured"
        ].tolist() == [True, False]
        assert "wiring check" in texts(at) and "not biology" in texts(at)
        assert "python -m perturb_core llm serve" in texts(at) + "".join(c.value for c in at.code)
