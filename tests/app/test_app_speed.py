"""The per-rerun shortcuts of issue 11's second speed pass send exactly what Streamlit would have sent.

A frozen figure, an Arrow table made once and an SVG encoded once are handed to ``st.plotly_chart``,
``st.dataframe`` and ``st.image`` so that a rerun skips the conversion; these tests draw both forms
in a real script run and compare the messages. Speed itself is measured in ``bench/bench_app.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pyarrow as pa
from streamlit.testing.v1 import AppTest

from pages import _export as export
from pages import _loaders as load
from pages import _state as state


def _figure() -> go.Figure:
    rng = np.random.default_rng(0)
    fig = go.Figure(
        go.Scattergl(
            x=rng.normal(size=50),
            y=rng.normal(size=50),
            text=np.array([f"GENE{i}" for i in range(50)]),
            mode="markers",
            hovertemplate="%{text}<extra></extra>",
        )
    )
    fig.add_trace(go.Scatter(x=[-2.0, 2.0], y=[-2.0, float("nan")], mode="lines", name="y = x"))
    return fig.update_layout(title="fifty genes", template="plotly_white", height=320)


def _both_charts() -> None:
    import streamlit as st

    from pages import _export as export

    fig = st.session_state["fig"]
    frozen = export.frozen(st.session_state["fig2"])
    st.plotly_chart(fig, key="plain")
    st.plotly_chart(export.plotly_input(frozen), key="frozen")
    st.plotly_chart(export.plotly_input(frozen), key="frozen again")


def test_a_frozen_figure_sends_the_same_plotly_spec() -> None:
    at = AppTest.from_function(_both_charts)
    at.session_state["fig"] = _figure()
    at.session_state["fig2"] = _figure()
    at.run()
    assert not at.exception
    plain, frozen, again = (c.proto.spec for c in at.get("plotly_chart"))
    assert plain == frozen == again
    assert "GENE49" in plain and "fifty genes" in plain


def test_an_unfrozen_figure_is_passed_as_it_is() -> None:
    fig = _figure()
    assert export.plotly_input(fig) is fig
    export.frozen(fig)
    assert export.plotly_input(fig) is not fig
    assert export.plotly_input(fig).to_dict()["layout"]["title"]["text"] == "fifty genes"


def _both_tables() -> None:
    import streamlit as st

    from pages import _loaders as load

    df = st.session_state["df"]
    st.dataframe(df)
    st.dataframe(load.table_data(df))


def test_table_data_is_the_arrow_table_st_dataframe_makes() -> None:
    df = pd.DataFrame(
        {"predicted": ["A ✓", "B"], "Δ": [0.5, float("nan")], "n": [1, 2]},
        index=pd.Index([1, 2], name="rank"),
    )
    assert isinstance(load.table_data(df), pa.Table)
    at = AppTest.from_function(_both_tables)
    at.session_state["df"] = df
    at.run()
    assert not at.exception
    a, b = at.dataframe
    assert a.proto.arrow_data.data == b.proto.arrow_data.data
    pd.testing.assert_frame_equal(b.value, a.value)


def test_table_data_leaves_a_frame_pyarrow_cannot_convert_to_streamlit() -> None:
    mixed = pd.DataFrame({"x": [1, "a", 2.5]})
    assert load.table_data(mixed) is mixed


def _both_images() -> None:
    import streamlit as st

    from pages import _loaders as load

    svg = st.session_state["svg"]
    st.image(svg)
    st.image(load.svg_data_uri(svg))


def test_svg_data_uri_is_what_st_image_makes_of_svg_text() -> None:
    at = AppTest.from_function(_both_images)
    at.session_state["svg"] = "<?xml version='1.0'?>\n<svg version='1.1' width='20' height='10'><rect/></svg>"
    at.run()
    assert not at.exception
    a, b = (img.proto.imgs[0].url for img in at.get("imgs") or at.get("image"))
    assert a == b and a.startswith("data:image/svg+xml;base64,")


def test_settings_are_read_again_when_the_environment_changes(monkeypatch) -> None:
    monkeypatch.setenv("PERTURB_CORE_LLM_MODEL", "model-one")
    assert load.current_settings().llm_model == "model-one"
    assert state.operator_settings().llm_model == "model-one"
    monkeypatch.setenv("PERTURB_CORE_LLM_MODEL", "model-two")
    assert load.current_settings().llm_model == "model-two"
    assert state.operator_settings().llm_model == "model-two"
    assert load.current_settings() is load.current_settings()  # unchanged inputs: not read again


def test_compare_and_gene_views_hand_over_frozen_figures(real_data) -> None:
    from pages import _compare_views as cv
    from pages import _gene_views as gv

    query = cv.CompareQuery(
        "tahoe", "C32", "Trametinib", "kg_mechanism", "C32", "Binimetinib", "kg_mechanism", 10, "open-world"
    )
    scatters = cv.scatters(query)
    assert set(scatters) == {"left", "right"}
    assert cv.scatters(query) is scatters  # built once, shared
    heat = gv.response_heatmap("EGR1", "tahoe", False)
    for fig in (*scatters.values(), heat):
        assert getattr(fig, export.FROZEN_SPEC, None) is not None
