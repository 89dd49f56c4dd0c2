"""Export: every chart of the app is drawn by :func:`chart`, with SVG and PNG downloads; result tables
get a CSV button (:func:`csv_download`) besides the CSV download of ``st.dataframe``'s own toolbar.

The files are rendered on the server by Kaleido (plotly's static-image engine), which drives a
headless Chrome or Chromium, and only when a button is clicked (``st.download_button`` with a
callable). Kaleido finds the browser itself: the ``BROWSER_PATH`` environment variable if set, else
``chrome`` / ``chromium`` on ``PATH`` or at the usual install paths (``/usr/bin/chromium`` on
Debian). Without a browser the buttons are replaced by a one-line note; the chart's own camera
button (plotly's modebar) still downloads a PNG drawn by the user's browser.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import plotly.graph_objects as go
import plotly.io
import streamlit as st
from plotly.basedatatypes import BaseFigure

log = logging.getLogger("perturb_app")

ImageFormat = Literal["svg", "png"]
#: format -> MIME type of the download.
MIME: dict[ImageFormat, str] = {"svg": "image/svg+xml", "png": "image/png"}
#: Width of an exported figure in CSS pixels when the figure sets none (on the page, charts
#: stretch to the column); height is the figure's own (plotly's 500 px when it sets none).
EXPORT_WIDTH = 1000
EXPORT_HEIGHT = 500
#: PNG pixels per CSS pixel (a 1000 px wide figure gives a 2000 px wide PNG); SVG is vector.
PNG_SCALE = 2
NO_BROWSER = (
    "SVG/PNG export needs Kaleido and a Chrome or Chromium on the server (`pip install kaleido`, "
    "then a browser on PATH, at /usr/bin/chromium, or named by `BROWSER_PATH`). The camera icon "
    "above the chart still saves a PNG."
)


#: Attribute of a figure marked by :func:`frozen`: its JSON data, ready for ``st.plotly_chart``.
FROZEN_SPEC = "_perturb_app_spec"


class _PlotlySpec(BaseFigure):
    """A figure reduced to plain JSON data, which ``st.plotly_chart`` serialises as it is.

    Streamlit turns a figure into its JSON spec with ``figure.to_dict()`` (a deep copy) and
    plotly's encoder (which walks every array) on every rerun; this object hands it the data
    already in that form. Only :meth:`to_dict` is ever called on it (``BaseFigure`` is its base
    so Streamlit takes it as a figure, not as a dict it would validate again).
    """

    def __init__(self, spec: dict[str, Any]) -> None:  # no figure set-up: only to_dict is read
        self._spec = spec

    def to_dict(self) -> dict[str, Any]:
        return self._spec


def frozen(fig: go.Figure) -> go.Figure:
    """Mark a figure that is built once and then only read (one in a ``st.cache_resource`` result).

    :func:`chart` then sends the JSON computed here (the same spec ``st.plotly_chart`` would make)
    instead of re-serialising the figure on every rerun of every session. Do not change a frozen
    figure: the chart would keep showing the frozen state.
    """
    spec = json.loads(plotly.io.to_json(fig, validate=False))
    setattr(fig, FROZEN_SPEC, _PlotlySpec(spec))
    return fig


def plotly_input(fig: go.Figure) -> BaseFigure:
    """What :func:`chart` passes to ``st.plotly_chart``: the frozen spec of ``fig`` if it has one, else ``fig``."""
    spec = getattr(fig, FROZEN_SPEC, None)
    return fig if spec is None else spec


def file_stem(name: str) -> str:
    """A safe file name stem: runs of characters other than letters, digits, ``.``, ``-``, ``_`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "figure"


def export_size(fig: go.Figure) -> tuple[int, int]:
    """(width, height) in CSS pixels of the exported figure: its own, else :data:`EXPORT_WIDTH` x :data:`EXPORT_HEIGHT`."""
    return int(fig.layout.width or EXPORT_WIDTH), int(fig.layout.height or EXPORT_HEIGHT)


def figure_bytes(fig: go.Figure, fmt: ImageFormat) -> bytes:
    """The figure as an SVG or PNG file (Kaleido; starts a headless browser for the call, ~3 s)."""
    width, height = export_size(fig)
    return fig.to_image(format=fmt, width=width, height=height, scale=PNG_SCALE if fmt == "png" else 1)


def browser_path() -> str | None:
    """The browser Kaleido will drive, or ``None`` when Kaleido or a Chrome/Chromium is missing.

    Same search as Kaleido's (choreographer's): a browser downloaded by ``plotly_get_chrome``,
    ``BROWSER_PATH``, ``chrome``/``chromium`` on ``PATH``, then the usual install paths.
    """
    if importlib.util.find_spec("kaleido") is None or importlib.util.find_spec("choreographer") is None:
        return None
    from choreographer.browsers import Chromium

    try:
        path = Chromium.find_browser(skip_local=False)
    except Exception:  # a lookup that fails is a missing browser: the page shows the note, not a traceback
        log.warning("looking for a browser for figure export failed", exc_info=True)
        return None
    return str(path) if path and Path(path).is_file() else None


@dataclass
class ExportSetup:
    """Per server: the browser (looked up once), a lock (one export at a time) and the last failure."""

    browser: str | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: why the last export failed (``None`` after a success): shown under every chart until one works
    failure: str | None = None


@st.cache_resource(show_spinner=False)
def _export_setup() -> ExportSetup:
    """The server's :class:`ExportSetup`."""
    return ExportSetup(browser_path())


def renderer(fig: go.Figure, fmt: ImageFormat, setup: ExportSetup, what: str) -> Callable[[], bytes]:
    """The callable of a download button: render ``fig`` when clicked, one export at a time.

    It runs outside the script, so it cannot draw: on failure the button shows Streamlit's "Failed to
    generate file for download" for 5 s, the reason goes to the server log, and the next run of any
    page says under each chart that export failed and why (until an export succeeds).
    """

    def render() -> bytes:
        with setup.lock:
            try:
                data = figure_bytes(fig, fmt)
            except Exception as exc:
                log.exception("exporting %s as %s failed", what, fmt.upper())
                first = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
                setup.failure = f"{type(exc).__name__}: {first[:200]}".replace("`", "'")
                raise
            setup.failure = None
            return data

    return render


def export_buttons(fig: go.Figure, *, name: str, key: str) -> None:
    """Two small download buttons, SVG and PNG, rendered on the server when clicked."""
    setup = _export_setup()
    if setup.browser is None:
        st.caption(NO_BROWSER)
        return
    if setup.failure:
        st.caption(
            f"The last SVG/PNG export on this server failed ({setup.failure}); details are in the server "
            "log. The camera icon above the chart still saves a PNG."
        )
    stem = file_stem(name)
    with st.container(horizontal=True, horizontal_alignment="right", gap="small"):
        for fmt in ("svg", "png"):
            st.download_button(
                fmt.upper(),
                renderer(fig, fmt, setup, stem),
                file_name=f"{stem}.{fmt}",
                mime=MIME[fmt],
                key=f"{key}__{fmt}",
                icon=":material/download:",
                type="tertiary",
                on_click="ignore",
                help=f"Download this figure as {fmt.upper()} "
                + ("(vector)" if fmt == "svg" else f"({PNG_SCALE}x resolution)")
                + ", drawn on the server; takes a few seconds.",
            )


def chart(
    fig: go.Figure,
    *,
    name: str,
    key: str | None = None,
    config: dict[str, Any] | None = None,
    on_select: Literal["ignore", "rerun"] = "ignore",
    selection_mode: str | Sequence[str] = ("points", "box", "lasso"),
) -> Any:
    """``st.plotly_chart`` at the page's width, with SVG and PNG downloads under it.

    Args:
        fig: the figure.
        name: file name stem of the downloads, e.g. ``"lgr_scatter_A498_Trametinib"``.
        key: the chart's widget key (kept as pages had it; tests look charts up by it).
        config: plotly config, merged over the defaults (modebar PNG named ``name``, 2x; no logo).
        on_select, selection_mode: as ``st.plotly_chart``.

    Returns:
        What ``st.plotly_chart`` returns (the selection event when ``on_select="rerun"``).
    """
    stem = file_stem(name)
    cfg = {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "scale": PNG_SCALE, "filename": stem},
        **(config or {}),
    }
    event = st.plotly_chart(
        plotly_input(fig),
        width="stretch",
        key=key,
        config=cfg,
        on_select=on_select,
        selection_mode=selection_mode,
    )
    export_buttons(fig, name=name, key=key or f"chart_{stem}")
    return event


def csv_download(
    frame: pd.DataFrame,
    *,
    name: str,
    label: str = "CSV",
    index: bool = False,
    key: str | None = None,
) -> None:
    """A small, right-aligned CSV download of the whole ``frame`` (all rows and columns, full precision).

    The text is written only when clicked. ``st.dataframe``'s toolbar also downloads a CSV, but of
    the rows and columns shown, under a generic file name; this button names the file after the view.
    """
    stem = file_stem(name)

    def write() -> str:
        return frame.to_csv(index=index)

    with st.container(horizontal=True, horizontal_alignment="right"):
        st.download_button(
            label,
            write,
            file_name=f"{stem}.csv",
            mime="text/csv",
            key=key or f"csv_{stem}",
            icon=":material/download:",
            type="tertiary",
            on_click="ignore",
            help=f"Download the whole table as CSV ({len(frame):,} row{'' if len(frame) == 1 else 's'}).",
        )
