"""Session state: settings with this session's LLM overrides, the dataset choice, URL query parameters.

Nothing here renders a page; the sidebar that shows these choices is in :mod:`pages._widgets`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping

import streamlit as st

from perturb_core.config import Settings, get_settings
from perturb_core.errors import PerturbCoreError, name_key

DEFAULT_SIGNATURES = "tahoe"
DEFAULT_LABELS = "perturbqa-k562"
SIG_KEY = "sig_dataset"
LABEL_KEY = "label_dataset"
LLM_OVERRIDES_KEY = "llm_overrides"
#: A key the visitor typed for their own endpoint (this session's memory only; never written or logged).
LLM_SESSION_KEY = "llm_session_key"
#: Settings the Settings page may override for one browser session.
OVERRIDABLE = ("llm_base_url", "llm_model")
#: Warnings about the link's parameters read before the page was drawn (shown by :func:`query_seed`).
PENDING_LINK_WARNINGS = "_pending_link_warnings"
#: The query parameters this app last wrote into the URL (a link is only what the app did not write).
LAST_SHARED_KEY = "_query_last_shared"


# --------------------------------------------------------------------------- settings


def _secret(name: str) -> str | None:
    """A value from ``.streamlit/secrets.toml`` (``None`` when there is no file or key)."""
    try:
        if not st.secrets.load_if_toml_exists():
            return None
        value = st.secrets.get(name)
    except (FileNotFoundError, KeyError, ValueError, AttributeError, OSError):
        return None
    return str(value) if value else None


def key_source(base: Settings | None = None) -> str:
    """Where this session's API key comes from (never the key itself)."""
    base = base or get_settings()
    current = settings()
    if st.session_state.get(LLM_SESSION_KEY) and current.llm_api_key:
        return "typed for this session (memory only)"
    if _endpoint(current.llm_base_url) != _endpoint(operator_settings().llm_base_url):
        return "none: the server's key is only sent to the server's own endpoint; type one for yours"
    if base.llm_api_key:
        return "environment (OPENAI_API_KEY)"
    if _secret("OPENAI_API_KEY"):
        return ".streamlit/secrets.toml"
    return "not set"


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def is_operator() -> bool:
    """Whether this session may clear the cache, rebuild the data and see server paths.

    ``operator_actions`` (``[app]`` in perturb_core.toml or ``PERTURB_CORE_OPERATOR_ACTIONS``):
    ``"on"``, ``"off"``, or ``"local"`` (default): only while the server listens on localhost,
    i.e. while nobody else can reach it.
    """
    mode = get_settings().operator_actions
    if mode != "local":
        return mode == "on"
    return str(st.get_option("server.address") or "") in _LOOPBACK


def operator_settings() -> Settings:
    """The operator's settings: file + environment, with the key and endpoint from secrets when unset.

    Read again only when the environment, the config file or a secrets file changes
    (:func:`pages._loaders.settings_inputs`), not on every rerun.
    """
    from pages._loaders import settings_inputs

    return _operator_settings(settings_inputs())


@functools.lru_cache(maxsize=16)
def _operator_settings(inputs: tuple) -> Settings:
    s = get_settings()
    changes: dict[str, object] = {}
    if not s.llm_api_key and (key := _secret("OPENAI_API_KEY")):
        changes["llm_api_key"] = key
    if not s.llm_base_url and (url := _secret("OPENAI_BASE_URL")):
        changes["llm_base_url"] = url
    return s.with_(**changes) if changes else s


def _endpoint(url: str | None) -> str:
    """An endpoint URL compared as the client sends to it (empty = OpenAI's default endpoint)."""
    from perturb_core.llm import DEFAULT_BASE_URL

    return (url or DEFAULT_BASE_URL).strip().rstrip("/").lower()


def session_llm_settings(
    operator: Settings, overrides: Mapping[str, object], session_key: str | None = None
) -> Settings:
    """The operator's settings with a visitor's overrides, never sending the operator's key elsewhere.

    The operator's API key only ever goes to the operator's endpoint: when the visitor's endpoint
    differs, the request carries the key the visitor typed for this session, or none.

    Args:
        operator: :func:`operator_settings`.
        overrides: ``llm_base_url`` / ``llm_model`` chosen on the Settings page (others are ignored).
        session_key: a key the visitor typed for their endpoint.
    """
    changes: dict[str, object] = {k: v for k, v in overrides.items() if k in OVERRIDABLE}
    if changes.get("llm_base_url") == "":
        changes["llm_base_url"] = None
    url = changes.get("llm_base_url", operator.llm_base_url)
    if _endpoint(url) != _endpoint(operator.llm_base_url):  # type: ignore[arg-type]
        changes["llm_api_key"] = session_key or None
    elif session_key:
        changes["llm_api_key"] = session_key
    return operator.with_(**changes) if changes else operator


def settings() -> Settings:
    """Settings for this session: the operator's (file, env, secrets), then this session's endpoint and key."""
    return session_llm_settings(
        operator_settings(),
        st.session_state.get(LLM_OVERRIDES_KEY) or {},
        st.session_state.get(LLM_SESSION_KEY),
    )


def override_llm(base_url: str, model: str, api_key: str | None = None) -> None:
    """Use this endpoint and model (and the visitor's own key, if typed) for the rest of the browser session."""
    st.session_state[LLM_OVERRIDES_KEY] = {"llm_base_url": base_url, "llm_model": model}
    if api_key:
        st.session_state[LLM_SESSION_KEY] = api_key
    else:
        st.session_state.pop(LLM_SESSION_KEY, None)


def reset_llm() -> None:
    """Forget this session's endpoint, model and key (back to the operator's settings)."""
    st.session_state.pop(LLM_OVERRIDES_KEY, None)
    st.session_state.pop(LLM_SESSION_KEY, None)


# --------------------------------------------------------------------------- datasets


def signature_dataset_names() -> list[str]:
    """Signature datasets (built-in and imported; listed once per 30 s per server, not per rerun)."""
    from pages._loaders import dataset_names

    return dataset_names()[0] or [DEFAULT_SIGNATURES]


def label_dataset_names() -> list[str]:
    """Label datasets (PerturbQA lines and Tahoe drug lines)."""
    from pages._loaders import dataset_names

    return dataset_names()[1] or [DEFAULT_LABELS]


def label_dataset_label(name: str) -> str:
    """How a label dataset reads in a selectbox: the cell line under the name every page uses (``C32``)."""
    from pages._loaders import cell_line_names

    if name.startswith("perturbqa-"):
        return f"{name.removeprefix('perturbqa-').upper()} · PerturbQA CRISPRi"
    line = name.removeprefix("tahoe-")
    return f"{cell_line_names().get(line, line)} · Tahoe drugs"


def dataset_choices() -> tuple[list[str], list[str], dict[str, str]]:
    """(signature datasets, label datasets, label dataset -> :func:`label_dataset_label`) for the sidebar.

    One cached call per rerun (listed once per 30 s per server, like the names alone).
    """
    from pages._loaders import dataset_choices as choices

    sig, lab, labels = choices()
    if not lab:
        lab, labels = [DEFAULT_LABELS], {DEFAULT_LABELS: label_dataset_label(DEFAULT_LABELS)}
    return sig or [DEFAULT_SIGNATURES], lab, labels


def init_datasets(sig: list[str], lab: list[str]) -> None:
    """Default, validate and (once per session, from a link's ``dataset``) seed the dataset choices.

    A link is read once (see :func:`new_link`): pages mirror their inputs in the URL, so reading
    the URL on every run would undo the visitor's next choice in the sidebar (the URL still names
    the previous dataset until the page reruns).
    """
    st.session_state.setdefault(SIG_KEY, DEFAULT_SIGNATURES if DEFAULT_SIGNATURES in sig else sig[0])
    st.session_state.setdefault(LABEL_KEY, DEFAULT_LABELS if DEFAULT_LABELS in lab else lab[0])
    if st.session_state[SIG_KEY] not in sig:
        st.session_state[SIG_KEY] = sig[0]
    link = new_link("dataset")
    if link is not None:
        wanted = link.get("dataset")
        if wanted:
            by_key = {name_key(n): n for n in [*sig, *lab]}
            hit = by_key.get(name_key(wanted))
            if hit in sig:
                st.session_state[SIG_KEY] = hit
            elif hit in lab:
                st.session_state[LABEL_KEY] = hit
            else:
                # shown by the page that reads the link (query_seed), which may run after this one
                st.session_state[PENDING_LINK_WARNINGS] = [
                    f"unknown dataset {wanted!r}; known: {', '.join([*sig, *lab][:12])}, ... "
                    "(see the sidebar for all)"
                ]
    if st.session_state[LABEL_KEY] not in lab:
        st.session_state[LABEL_KEY] = lab[0]


def link_warning(message: str) -> None:
    """Say that one parameter of the link was not used, and why (the page opens with its default)."""
    st.warning(f"Link parameter ignored: {message}", icon=":material/link_off:")


def signature_dataset() -> str:
    """The signature dataset chosen in the sidebar (default ``tahoe``)."""
    return str(st.session_state.get(SIG_KEY) or DEFAULT_SIGNATURES)


def label_dataset() -> str:
    """The label dataset chosen in the sidebar (default ``perturbqa-k562``)."""
    return str(st.session_state.get(LABEL_KEY) or DEFAULT_LABELS)


# --------------------------------------------------------------------------- links and kept choices


def new_link(reader: str) -> dict[str, str] | None:
    """The URL's parameters if they are a link ``reader`` has not read yet, else ``None``.

    A link is new when the URL holds parameters that this app did not write itself
    (:func:`share_link`) and that ``reader`` has not read before. So opening a link, or an
    example from the Overview, seeds the inputs once; the page's own URL updates never do.
    """
    params = {k: st.query_params[k] for k in st.query_params}
    if not params or params == st.session_state.get(LAST_SHARED_KEY):
        return None
    key = f"_query_read_{reader}"
    if params == st.session_state.get(key):
        return None
    st.session_state[key] = params
    return params


def query_seed(page: str) -> dict[str, str]:
    """URL query parameters to seed this page's inputs with, when they are a new link (:func:`new_link`).

    Pages read them before drawing their widgets, so a link like
    ``/evidence?dataset=perturbqa-k562&perturbation=INTS1&gene=LIMD2`` opens that view.
    """
    for message in st.session_state.pop(PENDING_LINK_WARNINGS, []):
        link_warning(message)
    return new_link(page) or {}


def seed_choice(
    key: str, value: str | None, options: list[str], resolve: Callable[[str], str], what: str
) -> None:
    """Preselect ``value`` (any spelling) in the widget ``key``; warn with the closest names if unknown."""
    if not value:
        return
    try:
        name = resolve(value)
    except PerturbCoreError as exc:
        link_warning(str(exc))
        return
    if name in options:
        st.session_state[key] = name
    else:
        link_warning(f"{what} {name!r} is not available here.")


def seed_options(
    seed: dict[str, str], choices: dict[str, tuple[str, list[str]]], labels: Mapping[str, str] | None = None
) -> None:
    """Preselect widgets from link parameters that name one of their options: ``param -> (key, options)``.

    Any spelling of an option works (``Open World`` finds ``open-world``); a parameter naming no
    option is ignored with a warning that lists the valid ones. ``labels``: what each parameter is.
    """
    for param, (key, options) in choices.items():
        value = seed.get(param)
        if not value:
            continue
        hit = {name_key(o): o for o in options}.get(name_key(value))
        if hit is not None:
            st.session_state[key] = hit
        else:
            what = (labels or {}).get(param, param)
            link_warning(f"unknown {what} {value!r}; valid: {', '.join(options)}")


def seed_int(seed: dict[str, str], param: str, key: str, low: int, high: int) -> None:
    """Preselect an integer widget from a link parameter in ``[low, high]``; warn otherwise."""
    value = seed.get(param)
    if not value:
        return
    text = str(value).strip()
    if text.isdigit() and low <= int(text) <= high:
        st.session_state[key] = int(text)
    else:
        link_warning(f"{param} = {value!r} must be a whole number from {low} to {high}")


_FLAG_VALUES = {
    "1": True,
    "true": True,
    "on": True,
    "yes": True,
    "0": False,
    "false": False,
    "off": False,
    "no": False,
}


def seed_flag(seed: dict[str, str], param: str, key: str) -> None:
    """Preset a toggle from a link parameter (``1``/``true``/``on``/``yes`` or ``0``/``false``/``off``/``no``)."""
    value = seed.get(param)
    if value is None:
        return
    flag = _FLAG_VALUES.get(str(value).strip().lower())
    if flag is None:
        link_warning(f"{param} = {value!r} must be 1 or 0 (true/false, on/off, yes/no)")
    else:
        st.session_state[key] = flag


def keep_choice(key: str, options: list[str], previous_key: str) -> None:
    """Keep the previous choice when the options change (e.g. another cell line), if still valid."""
    prev = st.session_state.get(previous_key)
    if key not in st.session_state and prev in options:
        st.session_state[key] = prev


def share_link(**params: object) -> None:
    """Mirror the current inputs in the URL, so the address bar is a link to this view."""
    shared = {k: str(v) for k, v in params.items() if v is not None}
    st.session_state[LAST_SHARED_KEY] = shared
    with contextlib.suppress(Exception):  # the URL is a convenience; never fail a page for it
        st.query_params.from_dict(shared)
