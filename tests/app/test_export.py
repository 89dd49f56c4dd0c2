"""Figure export (pages/_export.py): SVG and PNG buttons under every chart, valid files from Kaleido."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from pages import _export as export

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CONFIG = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"


def _small_figure() -> go.Figure:
    fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2], mode="markers", name="genes"))
    fig.update_layout(title="three points", template="plotly_white", height=300)
    return fig


def _chart_app() -> None:
    import plotly.graph_objects as go

    from pages import _widgets as ui

    fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 2]))
    ui.chart(fig, name="bars A498/Trametinib", key="bars")


def _buttons(at: AppTest) -> list[str]:
    return [b.proto.label for b in at.get("download_button")]


def test_file_stem_and_export_size() -> None:
    assert export.file_stem("lgr_scatter_tahoe_SW 1271_5-FU/x") == "lgr_scatter_tahoe_SW_1271_5-FU_x"
    assert export.file_stem("///") == "figure"
    assert export.export_size(_small_figure()) == (export.EXPORT_WIDTH, 300)  # own height, default width
    assert export.export_size(go.Figure(layout={"width": 640})) == (640, export.EXPORT_HEIGHT)


def test_a_chart_has_svg_and_png_buttons_and_a_named_modebar_png(monkeypatch) -> None:
    monkeypatch.setattr(export, "browser_path", lambda: "/usr/bin/chromium")
    export._export_setup.clear()
    try:
        at = AppTest.from_function(_chart_app).run()
    finally:
        export._export_setup.clear()
    assert not at.exception
    assert _buttons(at) == ["SVG", "PNG"]
    config = json.loads(at.get("plotly_chart")[0].proto.config)
    assert config["toImageButtonOptions"] == {"format": "png", "scale": 2, "filename": "bars_A498_Trametinib"}
    assert config["displaylogo"] is False


def test_without_a_browser_the_buttons_give_way_to_one_clear_note(monkeypatch) -> None:
    monkeypatch.setattr(export, "browser_path", lambda: None)
    export._export_setup.clear()
    try:
        at = AppTest.from_function(_chart_app).run()
    finally:
        export._export_setup.clear()
    assert not at.exception and not at.error
    assert _buttons(at) == []
    assert [c.value for c in at.caption] == [export.NO_BROWSER]
    assert len(at.get("plotly_chart")) == 1  # the chart (and its camera button) stays


def test_figure_bytes_are_valid_svg_and_png() -> None:
    if export.browser_path() is None:
        if IN_CI:
            pytest.fail("CI must export figures: install kaleido (requirements.txt) and chromium (.ci/run)")
        pytest.skip("no Chrome/Chromium for Kaleido on this machine (set BROWSER_PATH or install chromium)")
    fig = _small_figure()
    svg = export.figure_bytes(fig, "svg")
    head = svg.lstrip()[:200].decode()
    assert head.startswith(("<svg", "<?xml")) and 'width="1000"' in head and 'height="300"' in head
    png = export.figure_bytes(fig, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # IHDR
    assert (width, height) == (export.EXPORT_WIDTH * export.PNG_SCALE, 300 * export.PNG_SCALE)


@pytest.mark.realdata
def test_every_chart_of_a_real_page_has_svg_and_png_buttons(real_data, open_page) -> None:
    if export.browser_path() is None and not IN_CI:
        pytest.skip("no Chrome/Chromium for Kaleido on this machine: the page shows the note instead")
    at = open_page("data")  # the drugs-per-cell-line chart of the signature dataset
    charts = at.get("plotly_chart")
    labels = _buttons(at)
    assert charts and labels.count("SVG") == labels.count("PNG") == len(charts)


def test_the_dataframe_toolbar_keeps_its_csv_download() -> None:
    """``client.disableDataExport`` would hide the CSV button of every ``st.dataframe``'s toolbar."""
    client = tomllib.loads(CONFIG.read_text()).get("client", {})
    assert client.get("disableDataExport", False) is False


def _table_app() -> None:
    import pandas as pd

    from pages import _widgets as ui

    ui.csv_download(
        pd.DataFrame({"gene": ["EGR1"], "z": [2.5]}), name="gene EGR1/tahoe", label="Per drug (CSV)"
    )


def test_a_table_gets_a_named_csv_button() -> None:
    at = AppTest.from_function(_table_app).run()
    assert not at.exception
    (button,) = at.get("download_button")
    assert button.proto.label == "Per drug (CSV)" and "(1 row)" in button.proto.help


def test_a_failed_export_is_reported_under_the_charts(monkeypatch) -> None:
    def broken(fig, fmt):
        raise RuntimeError("The browser seemed to close immediately after starting.")

    monkeypatch.setattr(export, "browser_path", lambda: "/usr/bin/chromium")
    monkeypatch.setattr(export, "figure_bytes", broken)
    export._export_setup.clear()
    try:
        setup = export._export_setup()
        with pytest.raises(RuntimeError):
            export.renderer(_small_figure(), "svg", setup, "three points")()
        at = AppTest.from_function(_chart_app).run()
        assert not at.exception and not at.error
        (note,) = [c.value for c in at.caption]
        assert "last SVG/PNG export on this server failed" in note and "close immediately" in note
        assert _buttons(at) == ["SVG", "PNG"]  # still offered: the cause may be gone
        monkeypatch.setattr(export, "figure_bytes", lambda fig, fmt: b"<svg/>")
        assert export.renderer(_small_figure(), "svg", setup, "three points")() == b"<svg/>"
        assert setup.failure is None  # a success clears the note
    finally:
        export._export_setup.clear()
