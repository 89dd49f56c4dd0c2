"""Shared UI helpers: settings with session overrides, cached loaders, the sidebar, error guard, plots.

Pages stay thin: they read inputs, make one call into :mod:`perturb_core` through
:func:`guard` / :func:`call`, and render. Everything here is presentation or caching;
no analysis logic lives in the UI.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from perturb_core.config import Settings, get_settings
from perturb_core.errors import PerturbCoreError, name_key
from perturb_core.serialize import dumps

log = logging.getLogger("perturb_app")

T = TypeVar("T")

# Okabe-Ito (colour-blind safe): positive = blue, negative = orange, unmeasured = grey.
POSITIVE = "#0072B2"
NEGATIVE = "#E69F00"
UNMEASURED = "#999999"
QUERY = "#000000"
ACCENT = "#009E73"  # bluish green: the selected method / observed values
VERMILLION = "#D55E00"
SKY = "#56B4E9"
PURPLE = "#CC79A7"
PALETTE = [POSITIVE, NEGATIVE, ACCENT, VERMILLION, SKY, PURPLE, "#555555", "#F0E442"]

DEFAULT_SIGNATURES = "tahoe"
DEFAULT_LABELS = "perturbqa-k562"
SIG_KEY = "sig_dataset"
LABEL_KEY = "label_dataset"
LLM_OVERRIDES_KEY = "llm_overrides"

BUILD_COMMAND = "python -m perturb_core data fetch && python -m perturb_core data build"

#: Page files, referenced by st.page_link (the router in app.py registers the same files).
PAGES = {
    "overview": "pages/overview.py",
    "retrieval": "pages/retrieval.py",
    "evidence": "pages/evidence.py",
    "benchmarks": "pages/benchmarks.py",
    "data": "pages/data.py",
    "settings": "pages/settings.py",
}


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
    """Where the API key comes from: ``"environment"``, ``"secrets.toml"`` or ``"not set"``."""
    base = base or get_settings()
    if base.llm_api_key:
        return "environment (OPENAI_API_KEY)"
    if _secret("OPENAI_API_KEY"):
        return ".streamlit/secrets.toml"
    return "not set"


def settings() -> Settings:
    """Settings for this session: file + env, the key from secrets, then the Settings page overrides."""
    s = get_settings()
    changes: dict[str, object] = {}
    if not s.llm_api_key and (key := _secret("OPENAI_API_KEY")):
        changes["llm_api_key"] = key
    if not s.llm_base_url and (url := _secret("OPENAI_BASE_URL")):
        changes["llm_base_url"] = url
    overrides = st.session_state.get(LLM_OVERRIDES_KEY) or {}
    changes.update({k: v for k, v in overrides.items() if k in ("llm_base_url", "llm_model")})
    if changes.get("llm_base_url") == "":
        changes["llm_base_url"] = None
    return s.with_(**changes) if changes else s


# --------------------------------------------------------------------------- cached loaders


@st.cache_resource(show_spinner="Loading signatures (once per server process)…")
def signatures(name: str):  # -> SignatureDataset
    """A signature dataset, loaded once per server process."""
    from perturb_core.data.registry import load_signatures

    return load_signatures(name, get_settings())


@st.cache_resource(show_spinner="Loading labels…")
def labels(name: str, task: str = "de"):  # -> LabelSet
    """A label set, loaded once per server process."""
    from perturb_core.data.registry import load_labels

    return load_labels(name, task, get_settings())  # type: ignore[arg-type]


@st.cache_resource(show_spinner="Loading the drug table…")
def drugs():  # -> DrugTable
    """The drug table with fingerprints."""
    from perturb_core.data.registry import load_drugs

    return load_drugs(get_settings())


@st.cache_resource(show_spinner="Loading the knowledge graph (once per server process)…")
def graph():  # -> KnowledgeGraph
    """The knowledge graph."""
    from perturb_core.kg import load_graph

    return load_graph(get_settings())


@st.cache_data(show_spinner="Counting datasets…")
def data_info() -> dict:
    """``perturb_core.data.info.data_info()`` (counts of every dataset, drugs, graph)."""
    from perturb_core.data.info import data_info as _info

    return _info(get_settings())


@st.cache_data(max_entries=512, show_spinner=False)
def structure_svg(smiles: str, legend: str = "", width: int = 260, height: int = 200) -> str | None:
    """One molecule drawn as SVG (``None`` if the SMILES does not parse)."""
    from perturb_core.chem import depict_svg

    return depict_svg(smiles, size=(width, height), legend=legend)


def clear_caches() -> None:
    """Forget every cached dataset, graph and derived table (after a rebuild)."""
    st.cache_resource.clear()
    st.cache_data.clear()


def data_built() -> bool:
    """Whether every processed artifact exists and is up to date."""
    from perturb_core.data.build import is_built

    try:
        return is_built(get_settings())
    except PerturbCoreError:
        return False


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


# --------------------------------------------------------------------------- sidebar


def signature_dataset_names() -> list[str]:
    """Signature datasets (built-in and imported)."""
    from perturb_core.data.registry import list_datasets

    try:
        return [d.name for d in list_datasets(get_settings()) if d.kind == "signatures"]
    except PerturbCoreError:
        return [DEFAULT_SIGNATURES]


def label_dataset_names() -> list[str]:
    """Label datasets (PerturbQA lines and Tahoe drug lines)."""
    from perturb_core.data.registry import label_dataset_names as _names

    try:
        return _names(get_settings())
    except PerturbCoreError:
        return [DEFAULT_LABELS]


def _label_format(name: str) -> str:
    if name.startswith("perturbqa-"):
        return f"PerturbQA {name.removeprefix('perturbqa-').upper()} (CRISPRi)"
    return f"Tahoe {name.removeprefix('tahoe-')} (drugs)"


def sidebar() -> None:
    """The shared sidebar: dataset choices (kept across pages) and the LLM status."""
    sig = signature_dataset_names()
    lab = label_dataset_names()
    st.session_state.setdefault(SIG_KEY, DEFAULT_SIGNATURES if DEFAULT_SIGNATURES in sig else sig[0])
    st.session_state.setdefault(LABEL_KEY, DEFAULT_LABELS if DEFAULT_LABELS in lab else lab[0])
    if st.session_state[SIG_KEY] not in sig:
        st.session_state[SIG_KEY] = sig[0]
    wanted = st.query_params.get("dataset")
    if wanted and not st.session_state.get("_query_seeded_dataset"):
        st.session_state["_query_seeded_dataset"] = True
        by_key = {name_key(n): n for n in [*sig, *lab]}
        hit = by_key.get(name_key(wanted))
        if hit in sig:
            st.session_state[SIG_KEY] = hit
        elif hit in lab:
            st.session_state[LABEL_KEY] = hit
    if st.session_state[LABEL_KEY] not in lab:
        st.session_state[LABEL_KEY] = lab[0]
    with st.sidebar:
        st.subheader("Datasets")
        st.selectbox(
            "Signatures (LGR)",
            sig,
            key=SIG_KEY,
            help="Drug response signatures used by the Retrieval explorer and LGR benchmarks.",
        )
        st.selectbox(
            "Labels (CORE)",
            lab,
            key=LABEL_KEY,
            format_func=_label_format,
            help="Gene-response labels used by the Evidence graph and CORE benchmarks: "
            "PerturbQA knock-down lines or Tahoe drug lines.",
        )
        s = settings()
        if s.llm_configured:
            host = s.llm_base_url or "api.openai.com"
            st.caption(f":material/smart_toy: LLM: `{s.llm_model}` at `{host}`")
        else:
            st.caption(
                ":material/smart_toy: No LLM configured: rule-based selectors and CORE-Voting work "
                "without one. Set an endpoint on **Settings**."
            )


def query_seed(page: str) -> dict[str, str]:
    """URL query parameters to seed this page's inputs with, once per session and page.

    Pages read them before drawing their widgets, so a link like
    ``/evidence?dataset=perturbqa-k562&perturbation=INTS1&gene=LIMD2`` opens that view.
    """
    flag = f"_query_seeded_{page}"
    if st.session_state.get(flag):
        return {}
    st.session_state[flag] = True
    return {k: st.query_params[k] for k in st.query_params}


def seed_choice(
    key: str, value: str | None, options: list[str], resolve: Callable[[str], str], what: str
) -> None:
    """Preselect ``value`` (any spelling) in the widget ``key``; warn with the closest names if unknown."""
    if not value:
        return
    try:
        name = resolve(value)
    except PerturbCoreError as exc:
        st.warning(f"Link parameter ignored: {exc}", icon=":material/link_off:")
        return
    if name in options:
        st.session_state[key] = name
    else:
        st.warning(
            f"Link parameter ignored: {what} {name!r} is not available here.", icon=":material/link_off:"
        )


def share_link(**params: object) -> None:
    """Mirror the current inputs in the URL, so the address bar is a link to this view."""
    with contextlib.suppress(Exception):  # the URL is a convenience; never fail a page for it
        st.query_params.from_dict({k: str(v) for k, v in params.items() if v is not None})


def signature_dataset() -> str:
    """The signature dataset chosen in the sidebar (default ``tahoe``)."""
    return str(st.session_state.get(SIG_KEY) or DEFAULT_SIGNATURES)


def label_dataset() -> str:
    """The label dataset chosen in the sidebar (default ``perturbqa-k562``)."""
    return str(st.session_state.get(LABEL_KEY) or DEFAULT_LABELS)


# --------------------------------------------------------------------------- rendering helpers


def _route_through_app() -> None:
    """Make sure this page runs under ``app.py``'s router (and so gets the shared sidebar).

    Streamlit keeps a legacy mode for apps with a ``pages/`` folder: until the first
    ``st.navigation`` call of the process, a deep link (``/retrieval``) runs the page file on
    its own, without ``app.py``. ``st.navigation`` switches that mode off for good; doing the
    same here and rerunning sends the request through ``app.py`` with the same page.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without the legacy mode
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


def header(title: str, blurb: str) -> None:
    """Route through ``app.py`` if needed, then the page title and one-line blurb."""
    _route_through_app()
    st.title(title)
    st.caption(blurb)


def metric_definition(name: str) -> str:
    """The formula or definition of a metric (empty if unknown)."""
    from perturb_core.metrics import METRIC_DEFINITIONS

    return METRIC_DEFINITIONS.get(name, "")


METRIC_LABELS = {
    "pearson": "Pearson r",
    "cosine": "Cosine",
    "mae": "MAE",
    "mse": "MSE",
    "sign_accuracy": "Sign accuracy",
    "r2": "R²",
    "auroc": "AUROC",
    "auprc": "AUPRC",
    "macro_gene_auroc": "Per-gene AUROC (macro)",
    "predicted_positive_rate": "Predicted positive rate",
    "true_positive_rate": "True positive rate",
    "brier": "Brier score",
    "n_pairs": "Pairs",
    "n_genes_macro": "Genes in macro AUROC",
    "n_queries": "Queries",
    "mean_k_used": "Mean k used",
}

LOWER_IS_BETTER = frozenset({"mae", "mse", "brier"})


def fmt(x: object, digits: int = 3) -> str:
    """A number for display (``–`` for missing)."""
    if x is None:
        return "–"
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(v):
        return "–"
    return f"{v:.{digits}f}"


def metric_tiles(metrics: dict[str, object], names: list[str], *, columns: int | None = None) -> None:
    """A row of ``st.metric`` tiles with each metric's definition as help text."""
    names = [n for n in names if n in metrics]
    if not names:
        return
    cols = st.columns(columns or len(names))
    for i, name in enumerate(names):
        better = "lower is better" if name in LOWER_IS_BETTER else "higher is better"
        cols[i % len(cols)].metric(
            METRIC_LABELS.get(name, name),
            fmt(metrics[name]),
            help=f"{metric_definition(name)} ({better})",
            border=True,
        )


def definitions_table(names: list[str]) -> pd.DataFrame:
    """Metric -> definition table for an expander."""
    return pd.DataFrame(
        {
            "metric": [METRIC_LABELS.get(n, n) for n in names],
            "definition": [metric_definition(n) for n in names],
        }
    )


def to_json(obj: object) -> str:
    """JSON text of results (NaN -> null, NumPy values as numbers)."""
    return dumps(obj)


def plotly_layout(fig: Any, *, height: int = 380, **kwargs: Any) -> Any:
    """Shared plotly look (white template, readable fonts, tight margins); ``kwargs`` override it."""
    layout: dict[str, Any] = {
        "template": "plotly_white",
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        "font": {"size": 13},
        "colorway": PALETTE,
    }
    layout.update(kwargs)
    fig.update_layout(**layout)
    return fig


def unexpected(exc: BaseException, action: str) -> None:
    """Report an error this app did not anticipate: a message for the user, the traceback to the log."""
    log.error("unexpected error while %s", action, exc_info=exc)
    st.error(
        f"Unexpected {type(exc).__name__} while {action}: {exc}. This is a bug in the app; "
        "the full traceback is in the server log. Try other inputs or reload the page.",
        icon=":material/bug_report:",
    )


def cli_hint(command: str) -> None:
    """The same view from the command line."""
    st.caption("Same result from the command line:")
    st.code(command, language="bash")
