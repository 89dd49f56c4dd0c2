"""AppTest of the Settings page: session overrides, connection test, the key never shown."""

from __future__ import annotations

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
