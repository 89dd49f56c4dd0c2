"""Perturbation reasoning explorer: the Streamlit router and the shared sidebar (no analysis logic).

Run with ``streamlit run app.py``. Every view is also reachable from Python
(``perturb_core``) and the command line (``python -m perturb_core``).
"""

from __future__ import annotations

import streamlit as st

from pages import _widgets as ui
from perturb_core.errors import PerturbCoreError

st.set_page_config(
    page_title="Perturbation reasoning explorer",
    page_icon=":material/hub:",
    layout="wide",
    initial_sidebar_state="expanded",
)

PAGES = {
    "Explore": [
        st.Page(ui.PAGES["overview"], title="Overview", icon=":material/home:", default=True),
        st.Page(
            ui.PAGES["retrieval"],
            title="Retrieval explorer",
            icon=":material/manage_search:",
            url_path="retrieval",
        ),
        st.Page(ui.PAGES["evidence"], title="Evidence graph", icon=":material/hub:", url_path="evidence"),
        st.Page(ui.PAGES["compare"], title="Compare", icon=":material/compare_arrows:", url_path="compare"),
        st.Page(ui.PAGES["gene"], title="Gene view", icon=":material/genetics:", url_path="gene"),
        st.Page(ui.PAGES["query"], title="Signature query", icon=":material/query_stats:", url_path="query"),
    ],
    "Measure": [
        st.Page(
            ui.PAGES["benchmarks"], title="Benchmarks", icon=":material/leaderboard:", url_path="benchmarks"
        ),
    ],
    "Manage": [
        st.Page(ui.PAGES["data"], title="Data", icon=":material/database:", url_path="data"),
        st.Page(ui.PAGES["settings"], title="Settings", icon=":material/settings:", url_path="settings"),
    ],
}

page = st.navigation(PAGES)
ui.sidebar()
with ui.routed_page():
    try:
        page.run()
    except PerturbCoreError as exc:  # a page forgot to guard a call: still no traceback
        st.error(str(exc), icon=":material/error:")
    except Exception as exc:  # the last line of defence; st.stop/st.rerun are not Exceptions
        ui.unexpected(exc, f"showing {page.title}")
