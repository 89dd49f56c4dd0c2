"""Page furniture: routing through ``app.py``, header, sidebar, the error boundary, metric tiles,
downloads, progress bars and the command-line twin of a view.

Pages stay thin: they read inputs, make one call into :mod:`perturb_core` through
:func:`guard` / :func:`call`, and render. Everything here is presentation; no analysis logic.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
import runpy
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from pages import _state
from pages._export import chart as chart  # re-exported: pages draw every figure with ui.chart
from pages._export import csv_download as csv_download  # ... and offer result tables as CSV with it
from pages._figures import fmt
from pages._loaders import data_built
from perturb_core.errors import PerturbCoreError
from perturb_core.metrics import METRICS
from perturb_core.serialize import dumps

log = logging.getLogger("perturb_app")

T = TypeVar("T")

#: The entrypoint: the router that every page runs under.
APP = Path(__file__).resolve().parent.parent / "app.py"
#: Page files, referenced by st.page_link (the router in app.py registers the same files).
PAGES = {
    "overview": "pages/overview.py",
    "retrieval": "pages/retrieval.py",
    "evidence": "pages/evidence.py",
    "compare": "pages/compare.py",
    "gene": "pages/gene.py",
    "query": "pages/query.py",
    "benchmarks": "pages/benchmarks.py",
    "data": "pages/data.py",
    "settings": "pages/settings.py",
}
BUILD_COMMAND = "python -m perturb_core data fetch && python -m perturb_core data build"

# --------------------------------------------------------------------------- routing

#: True while app.py's router runs the current page (per script run; reset when the page ends).
_UNDER_ROUTER: ContextVar[bool] = ContextVar("perturb_app_under_router", default=False)


@contextlib.contextmanager
def routed_page() -> Iterator[None]:
    """Mark the page that ``app.py`` runs inside this block as routed (see :func:`route_through_app`)."""
    token = _UNDER_ROUTER.set(True)
    try:
        yield
    finally:
        _UNDER_ROUTER.reset(token)


def route_through_app() -> None:
    """Make sure this page runs under ``app.py``'s router (and so gets the shared sidebar).

    Streamlit keeps a legacy mode for apps with a ``pages/`` folder beside the entrypoint:
    until the first ``st.navigation`` call of the server process, a deep link
    (``/retrieval``) runs the page file on its own, without ``app.py``. The documented way
    out is ``st.navigation`` itself: "As soon as any session of your app executes the
    st.navigation command, your app will ignore the pages/ directory (across all sessions)"
    (docs.streamlit.io/develop/api-reference/navigation/st.navigation). So a page that finds
    itself outside the router runs the entrypoint in its place, within the same script run:
    ``app.py`` calls ``st.navigation`` (which resolves to this same page), draws the sidebar
    and runs the page under the router; then the outer, unrouted run stops. Public API only,
    no rerun, so a button click that arrived with this run is not lost.
    """
    if _UNDER_ROUTER.get():
        return
    runpy.run_path(str(APP))
    st.stop()


def header(title: str, blurb: str) -> None:
    """Route through ``app.py`` if needed, then the page title and one-line blurb."""
    route_through_app()
    st.title(title)
    st.caption(blurb)


def require_data() -> None:
    """Stop the page with the fix when the processed data is missing."""
    if data_built():
        return
    st.warning(
        "The processed data is not built yet, so this page has nothing to show. Open **Overview** to "
        f"build it with a progress bar, or run `{BUILD_COMMAND}` in the repository and reload.",
        icon=":material/database:",
    )
    with contextlib.suppress(Exception):
        st.page_link(PAGES["overview"], label="Go to Overview to build the data", icon=":material/home:")
    st.stop()


def sidebar() -> None:
    """The shared sidebar: dataset choices (kept across pages) and the LLM status."""
    sig, lab, lab_labels = _state.dataset_choices()
    _state.init_datasets(sig, lab)
    with st.sidebar:
        st.subheader("Datasets")
        st.selectbox(
            "Signatures (LGR)",
            sig,
            key=_state.SIG_KEY,
            help="Drug response signatures used by the Retrieval explorer and LGR benchmarks.",
        )
        st.selectbox(
            "Labels (CORE)",
            lab,
            key=_state.LABEL_KEY,
            format_func=lab_labels.__getitem__,
            help="Gene-response labels used by the Evidence graph and CORE benchmarks: "
            "PerturbQA knock-down lines or Tahoe drug lines.",
        )
        s = _state.settings()
        if s.llm_configured:
            host = s.llm_base_url or "api.openai.com"
            st.caption(f":material/smart_toy: LLM: `{s.llm_model}` at `{host}`")
        else:
            st.caption(
                ":material/smart_toy: No LLM configured: rule-based selectors and CORE-Voting work "
                "without one. Set an endpoint on **Settings**."
            )


# --------------------------------------------------------------------------- name search

#: One target of a search box: (widget key, its options, resolver of any spelling, key that carries the
#: choice to the next run when the widget's options change, or None).
SearchTarget = tuple[str, Sequence[str], Callable[[str], str], str | None]
SEARCH_HELP = (
    "Any spelling: case, spaces, hyphens and dots are ignored (`C-32` and `c 32` find C32), and "
    "salt forms of drugs are matched. Two names separated by `>` or `→` pick both."
)


def name_search(
    container: Any, label: str, targets: Sequence[SearchTarget], *, key: str, placeholder: str
) -> None:
    """A text box that selects a name, typed in any spelling, in the first target widget that has it.

    A selectbox filters its options on the browser side by plain substring, so ``C-32`` does not
    find ``C32``; this box resolves names with the app's own rules (the core's resolvers). It must
    be drawn before its target widgets (their value is set in the box's callback); add targets
    drawn later with :func:`name_search_targets`.
    """
    st.session_state[f"{key}__targets"] = list(targets)
    container.text_input(
        label, key=key, placeholder=placeholder, on_change=_apply_search, args=(key,), help=SEARCH_HELP
    )
    msg = st.session_state.pop(f"{key}__msg", None)
    if msg:
        container.caption(msg)


def name_search_targets(key: str, targets: Sequence[SearchTarget]) -> None:
    """More targets of the search box ``key`` (widgets whose options depend on an earlier choice)."""
    st.session_state.setdefault(f"{key}__targets", []).extend(targets)


def _apply_search(key: str) -> None:
    """Callback of :func:`name_search`: resolve the text and set the target widgets."""
    text = str(st.session_state.get(key) or "").strip()
    targets: list[SearchTarget] = st.session_state.get(f"{key}__targets", [])
    if not text or not targets:
        return
    parts = [p.strip() for p in re.split(r"→|->|>", text) if p.strip()]
    pending = list(targets)
    missed: list[str] = []
    for part in parts:
        for i, (wkey, options, resolve, carry) in enumerate(pending):
            try:
                name = resolve(part)
            except PerturbCoreError:
                continue
            if name in options:
                st.session_state[wkey] = name
            if carry:
                st.session_state[carry] = name
            if name in options or carry:
                if len(parts) > 1:  # "p > g": the next name goes to a later target
                    del pending[: i + 1]
                break
        else:
            missed.append(part)
    st.session_state[key] = ""
    if missed:
        st.session_state[f"{key}__msg"] = (
            f":material/search_off: No match for {', '.join(map(repr, missed))} here."
        )


# --------------------------------------------------------------------------- errors


@contextlib.contextmanager
def guard(action: str, *, stop: bool = True) -> Iterator[None]:
    """Show errors raised inside the block as ``st.error`` (never a traceback).

    Args:
        action: what was being done, e.g. ``"loading the dataset"``; used in unexpected errors.
        stop: stop the script (or fragment) after showing the error.
    """
    try:
        yield
    except PerturbCoreError as exc:
        st.error(str(exc), icon=":material/error:")
        if stop:
            st.stop()
    except Exception as exc:  # the UI boundary: nothing may reach the page as a traceback
        unexpected(exc, action)
        if stop:
            st.stop()


def call(fn: Callable[..., T], *args: Any, action: str, **kwargs: Any) -> T | None:
    """Run ``fn(*args, **kwargs)``; on failure show the error and return ``None`` (no stop)."""
    result: T | None = None
    with guard(action, stop=False):
        result = fn(*args, **kwargs)
    return result


def unexpected(exc: BaseException, action: str) -> None:
    """Report an error this app did not anticipate: a message for the user, the traceback to the log."""
    log.error("unexpected error while %s", action, exc_info=exc)
    st.error(
        f"Unexpected {type(exc).__name__} while {action}: {exc}. This is a bug in the app; "
        "the full traceback is in the server log. Try other inputs or reload the page.",
        icon=":material/bug_report:",
    )


# --------------------------------------------------------------------------- metrics and tasks
# Labels, definitions, units and directions are the core's (perturb_core.metrics.METRICS); only
# how they are laid out lives here.


def metric_label(name: str) -> str:
    """The metric's label, as in the registry (e.g. ``"R² (squared correlation of the linear fit = Pearson r²)"``)."""
    return METRICS[name].label


def short_label(name: str) -> str:
    """The label without its parenthetical, for narrow places (tiles): ``"R²"``; the full one is in the help."""
    return METRICS[name].label.split(" (", 1)[0]


def metric_help(name: str) -> str:
    """The metric's definition, unit and direction, for a tooltip or caption."""
    spec = METRICS[name]
    return f"{spec.definition}\n\nUnit: {spec.unit}; {spec.better}."


def metric_tiles(
    metrics: Mapping[str, float | None], names: Sequence[str], *, columns: int | None = None
) -> None:
    """A row of ``st.metric`` tiles with each metric's definition, unit and direction as help text."""
    names = [n for n in names if n in metrics]
    if not names:
        return
    per_row = columns or len(names)
    cols: list[Any] = []
    for i, name in enumerate(names):
        if i % per_row == 0:  # one row at a time, so tiles read left to right, then down
            cols = st.columns(per_row)
        cols[i % per_row].metric(
            short_label(name),
            fmt(metrics[name]),
            help=f"**{metric_label(name)}**: {metric_help(name)}",
            border=True,
        )


def metric_columns(
    names: Sequence[str], *, fmt_spec: str | None = None, short: bool = False
) -> dict[str, Any]:
    """``column_config`` of metric columns named by their registry name: label and definition as help.

    ``short``: headers without the label's parenthetical (the full label opens the help), so a wide
    table still fits the page.
    """
    return {
        n: st.column_config.NumberColumn(
            short_label(n) if short else metric_label(n),
            help=f"**{metric_label(n)}**: {metric_help(n)}",
            format=fmt_spec,
        )
        for n in names
    }


def definitions_data(names: Sequence[str]) -> Any:
    """:func:`definitions_table` as ``st.dataframe`` data, built once per list of metrics (the
    registry does not change while the server runs)."""
    return _definitions_data(tuple(names))


@functools.lru_cache(maxsize=32)
def _definitions_data(names: tuple[str, ...]) -> Any:
    from pages._loaders import table_data

    return table_data(definitions_table(names))


def definitions_table(names: Sequence[str]) -> pd.DataFrame:
    """Metric -> definition, unit and direction, for an expander."""
    specs = [METRICS[n] for n in names]
    return pd.DataFrame(
        {
            "metric": [s.label for s in specs],
            "definition": [s.definition for s in specs],
            "unit": [s.unit for s in specs],
            "direction": [s.better for s in specs],
        }
    )


# --------------------------------------------------------------------------- progress, downloads, CLI twin


def progress_bar(label: str) -> tuple[Any, Callable[..., None]]:
    """A progress bar and its callback: ``progress(done, total)`` or ``progress(stage, done, total)``."""
    bar = st.progress(0.0, text=f"{label}: starting…")

    def progress(*args: object) -> None:
        stage, (done, total) = (f" {args[0]}" if len(args) == 3 else ""), args[-2:]
        frac = min(1.0, int(done) / int(total)) if total else 0.0  # type: ignore[call-overload]
        bar.progress(frac, text=f"{label}{stage}: {int(done):,} / {int(total):,}")  # type: ignore[call-overload]

    return bar, progress


def build_progress() -> tuple[Any, Callable[[str, int, int, str], None]]:
    """A progress bar and the callback of a data build: ``progress(artifact, done, total, message)``."""
    bar = st.progress(0.0, text="Starting…")

    def progress(artifact: str, done: int, total: int, message: str) -> None:
        bar.progress(min(1.0, done / total) if total else 0.0, text=f"{artifact}: {message} ({done}/{total})")

    return bar, progress


def to_json(obj: object) -> str:
    """JSON text of results (NaN -> null, NumPy values as numbers)."""
    return dumps(obj)


def json_download(obj: object, file_name: str) -> None:
    """One button that downloads ``obj`` as JSON (``lgr predict --json`` / ``core explain --json``).

    ``obj`` may be the JSON text already (pages cache it, so a rerun does not serialise again). The
    file is handed over only when clicked (a callable), so a rerun does not hash and store the text.
    """
    text = obj if isinstance(obj, str) else to_json(obj)
    st.download_button(
        "Download this explanation (JSON)",
        lambda: text,
        on_click="ignore",
        file_name=file_name.replace(" ", "_").replace("/", "-"),
        mime="application/json",
        icon=":material/download:",
    )


def table_downloads(stem: str, result_dict: Mapping[str, Any], frames: Mapping[str, pd.DataFrame]) -> None:
    """CSV (the summary, and every table as a zip) and JSON download buttons of a benchmark run."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, df in frames.items():
            zf.writestr(f"{stem}_{name}.csv", df.to_csv(index=False))
    c1, c2, c3 = st.columns([1, 1, 2])
    c1.download_button(
        "Summary (CSV)",
        frames["summary"].to_csv(index=False),
        file_name=f"{stem}_summary.csv",
        mime="text/csv",
        icon=":material/download:",
    )
    c2.download_button(
        "All tables (CSV, zip)",
        buf.getvalue(),
        file_name=f"{stem}_tables.zip",
        mime="application/zip",
        icon=":material/download:",
    )
    c3.download_button(
        "Result (JSON)",
        to_json(result_dict),
        file_name=f"{stem}.json",
        mime="application/json",
        icon=":material/download:",
    )


def prompt_messages(messages: Sequence[Mapping[str, str]]) -> None:
    """A chat prompt (OpenAI messages: ``role`` and ``content``), one block per message."""
    for m in messages:
        st.caption(m["role"].upper())
        st.code(m["content"], language=None, wrap_lines=True)


def cli_hint(command: str) -> None:
    """The same view from the command line."""
    st.caption("Same result from the command line:")
    st.code(command, language="bash", wrap_lines=True)
