"""AppTest smoke and interaction tests of every page, on the real data.

Each test runs ``app.py`` (router + shared sidebar) and switches to one page, as a user
would. Data, graph and derived tables are cached per process, so only the first test pays
for loading them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from perturb_core.testing.fake_openai import FAKE_API_KEY, FakeOpenAI

pytestmark = pytest.mark.realdata

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 90


@pytest.fixture(autouse=True)
def _router_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every AppTest run through app.py's ``st.navigation``, as the server does.

    AppTest re-detects Streamlit's legacy ``pages/``-folder mode before every run, in which a
    switched-to page file runs on its own (no router, no shared sidebar). A real server
    leaves that mode for good at its first ``st.navigation`` call; this does the same.
    """
    from streamlit.runtime.pages_manager import PagesManager

    init = PagesManager.__init__

    def init_v2(self, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init_v2)


def open_page(page: str, state: dict | None = None) -> AppTest:
    """Run the app, set session state, switch to ``pages/<page>.py`` and run it."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in (state or {}).items():
        at.session_state[k] = v
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    """No exception and no error box on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def texts(at: AppTest) -> str:
    """All markdown, captions, info and warnings as one string."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [i.value for i in at.info] + [w.value for w in at.warning] + [s.value for s in at.success]
    return "\n".join(map(str, parts))


# --------------------------------------------------------------------------- Overview, Data, Settings


def test_overview_lists_datasets_and_links(real_data) -> None:
    at = open_page("overview")
    assert at.title[0].value == "Perturbation reasoning explorer"
    assert len(at.dataframe) == 2  # signature and label datasets
    sig = at.dataframe[0].value
    assert {"tahoe", "sciplex", "openproblems"} <= set(sig["dataset"])
    assert int(sig.loc[sig["dataset"] == "tahoe", "cell lines"].iloc[0]) == 40
    labels = at.dataframe[1].value
    assert "perturbqa-k562" in set(labels["dataset"])
    assert len(at.metric) == 4
    assert not at.warning  # the data is built


def test_sidebar_choice_is_shared_across_pages(real_data) -> None:
    at = open_page("overview")
    at.selectbox(key="sig_dataset").select("sciplex").run()
    at.selectbox(key="label_dataset").select("tahoe-c32").run()
    at.switch_page("pages/data.py").run()
    assert_clean(at)
    assert at.session_state["sig_dataset"] == "sciplex"
    assert at.session_state["label_dataset"] == "tahoe-c32"
    assert any("sciplex" in t.label for t in at.tabs)
    assert at.metric[0].value == "3"  # sci-Plex 3 has three cell lines


def test_data_page_shows_every_tab(real_data) -> None:
    at = open_page("data")
    assert at.title[0].value == "Data"
    assert [t.label for t in at.tabs][1:] == ["Drugs", "Labels: perturbqa-k562", "Knowledge graph"]
    assert len(at.dataframe) >= 5  # per-line summary, drugs, labels, graph nodes and edges
    graph_edges = at.dataframe[-1].value
    assert "regulates" in set(graph_edges["relation"])
    assert not graph_edges.set_index("relation").loc["regulates", "used by default"]


def test_settings_never_shows_the_key(real_data, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_API_KEY)
    at = open_page("settings")
    assert at.title[0].value == "Settings"
    shown = texts(at) + "".join(str(t.value) for t in at.text_input)
    assert FAKE_API_KEY not in shown
    assert "environment (OPENAI_API_KEY)" in shown


def test_settings_test_connection_and_session_override(real_data) -> None:
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


def test_settings_rejects_a_bad_endpoint(real_data) -> None:
    at = open_page("settings")
    at.text_input[0].input("localhost:8000")
    next(b for b in at.button if b.label == "Apply for this session").click().run()
    assert not at.exception
    assert any("must start with http" in e.value for e in at.error)
    assert "llm_overrides" not in at.session_state


def test_settings_connection_failure_is_an_error_not_a_traceback(real_data) -> None:
    with FakeOpenAI(
        lambda req: (401, {"error": {"message": "bad key", "type": "auth", "param": None, "code": None}})
    ) as server:
        at = open_page(
            "settings", {"llm_overrides": {"llm_base_url": server.base_url, "llm_model": "fake-model"}}
        )
        next(b for b in at.button if b.label == "Test connection").click().run()
        assert not at.exception
        assert at.error and "OPENAI_API_KEY" in at.error[0].value


# --------------------------------------------------------------------------- Retrieval explorer


def _neighbours(at: AppTest):
    return next(d.value for d in at.dataframe if "justification" in d.value.columns)


def test_retrieval_default_query_renders_everything(real_data) -> None:
    at = open_page("retrieval")
    assert at.title[0].value == "Retrieval explorer"
    assert [m.label for m in at.metric][:6] == ["Pearson r", "Cosine", "MAE", "MSE", "Sign accuracy", "R²"]
    assert all(m.help for m in at.metric[:6])  # every tile carries its definition
    neigh = _neighbours(at)
    assert len(neigh) == 10
    assert {"rank", "name", "justification", "own_pearson", "loo_delta_pearson", "targets"} <= set(
        neigh.columns
    )
    assert len(at.get("plotly_chart")) == 1  # predicted vs observed
    assert len(at.get("image")) == 1  # RDKit structures of the query and its neighbours
    baselines = next(d.value for d in at.dataframe if "pearson" in d.value.columns)
    # all four baselines by default (PCA + ridge is answered from cached cross-products)
    assert {"cell_mean", "drug_mean", "chem_knn", "pca_ridge"} <= set(baselines.index)
    assert baselines.loc["pca_ridge", ["pearson", "mse"]].notna().all()
    assert not at.toggle  # no opt-in switch any more
    # top genes come from QueryExplanation.top_genes: 10 up, 10 down, ✓ = in both lists
    tops = [d.value for d in at.dataframe if "predicted Δ" in d.value.columns]
    assert len(tops) == 2 and all(len(t) == 10 for t in tops)
    up = tops[0]
    assert list(up["predicted Δ"]) == sorted(up["predicted Δ"], reverse=True)
    shared = sum(str(g).endswith(" ✓") for g in up["predicted"])
    assert any(f"{shared} of the top 10 up-regulated genes are in both lists" in c.value for c in at.caption)


def test_retrieval_choose_cell_line_drug_and_selector(real_data) -> None:
    at = open_page("retrieval")
    at.selectbox(key="lgr_cell_tahoe").select("NCI-H23").run()
    at.selectbox(key="lgr_drug_tahoe_NCI-H23").select("Trametinib").run()
    assert_clean(at)
    assert at.subheader[0].value == "Trametinib in NCI-H23"
    kg = _neighbours(at)
    assert "Trametinib" not in set(kg["name"])  # never its own neighbour
    at.selectbox(key="lgr_selector").select("chem_knn").run()
    assert_clean(at)
    chem = _neighbours(at)
    assert chem["similarity"].is_monotonic_decreasing  # chemistry ranks by Tanimoto
    assert "Tanimoto" in texts(at)
    at.slider(key="lgr_k").set_value(5).run()
    assert len(_neighbours(at)) == 5


def test_retrieval_llm_selector_without_endpoint_explains_the_fix(real_data) -> None:
    at = open_page("retrieval")
    at.selectbox(key="lgr_selector").select("llm").run()
    assert not at.exception
    assert at.warning and "OPENAI_BASE_URL" in at.warning[0].value
    assert not any(b.label.startswith("Ask the LLM") for b in at.button)


def test_retrieval_llm_selector_shows_prompt_answer_and_cache(real_data) -> None:
    answer = (
        "<Final Answer>\n1. Trametinib: MEK inhibitor acting on the same RTK/MAPK axis.\n"
        "2. Binimetinib: another MEK inhibitor.\n3. Wonderdrug: not a real candidate.\n</Final Answer>"
    )
    with FakeOpenAI(lambda req: answer) as server:
        state = {"llm_overrides": {"llm_base_url": server.base_url, "llm_model": "fake-model"}}
        at = open_page("retrieval", state)
        at.selectbox(key="lgr_selector").select("llm").run()
        assert not at.metric  # nothing is asked before the button
        assert server.n_requests == 0
        ask = next(b for b in at.button if b.label.startswith("Ask the LLM"))
        ask.click().run()
        assert_clean(at)
        assert server.n_requests == 1
        assert set(_neighbours(at)["name"][:2]) == {"Trametinib", "Binimetinib"}
        shown = {m.label: m.value for m in at.metric}
        assert shown["k used"] == "2 / 10"
        assert shown["Cache"] == "miss"
        assert any("Wonderdrug" in str(m.value) for m in at.markdown)  # filtered item
        assert any("<Final Answer>" in c.value for c in at.code)  # the raw answer
        next(b for b in at.button if b.label.startswith("Ask the LLM")).click().run()
        assert {m.label: m.value for m in at.metric}["Cache"] == "hit"
        assert server.n_requests == 1


# --------------------------------------------------------------------------- Benchmarks


def test_benchmarks_runs_a_small_lgr_regime(real_data) -> None:
    at = open_page("benchmarks")
    assert at.title[0].value == "Benchmarks"
    at.selectbox(key="bench_lgr_regime").select("unseen-drug")
    at.number_input(key="bench_lgr_maxq").set_value(20)
    at.multiselect(key="bench_lgr_methods").set_value(["drug_mean", "kg_mechanism", "random"])
    next(b for b in at.button if b.label == "Run on tahoe").click().run()
    assert_clean(at)
    table = next(d.value for d in at.dataframe if "Pearson r" in d.value.columns)
    assert list(table.index) == ["drug_mean", "kg_mechanism", "random"]
    assert all("[" in cell for cell in table["Pearson r"])  # mean [ci_low, ci_high]
    assert len(at.get("plotly_chart")) == 6  # one bar chart per metric
    assert len(at.get("download_button")) == 3  # summary CSV, all tables, JSON
    result = at.session_state["bench_lgr"]["dict"]
    assert result["methods"]["kg_mechanism"]["n_queries"] == 20


# --------------------------------------------------------------------------- Evidence graph


def _node_box(at: AppTest):
    return next(s for s in at.selectbox if s.key and s.key.startswith("core_node_"))


def test_evidence_graph_renders_vote_prior_and_label(real_data) -> None:
    at = open_page("evidence")
    assert at.title[0].value == "Evidence graph"
    assert len(at.get("plotly_chart")) == 2  # the graph and the vote-vs-prior bars
    shown = {m.label: m.value for m in at.metric}
    assert {"Evidence", "True label", "Final score", "Gene AUROC"} <= set(shown)
    assert 0.0 <= float(shown["Final score"]) <= 1.0
    items = next(d.value for d in at.dataframe if "side" in d.value.columns)
    assert set(items["side"]) <= {"positive", "negative", "unmeasured"}


def test_evidence_pick_a_node_shows_its_path(real_data) -> None:
    at = open_page("evidence")
    at.selectbox(key="core_pert_perturbqa-k562_de").select("AAMP").run()
    box = _node_box(at)
    evidence_node = next(
        o for o in box.options if "(unmeasured)" in o or "(positive)" in o or "(negative)" in o
    )
    node_id = "gene:" + evidence_node.split(" ")[0]
    box.select(node_id).run()
    assert_clean(at)
    assert any("●" in m.value and evidence_node.split(" ")[0] in m.value for m in at.markdown)
    assert any(c.value.startswith("AAMP →") for c in at.code)  # the relation path from the query


def test_evidence_switch_dataset_and_task(real_data) -> None:
    at = open_page("evidence", {"label_dataset": "tahoe-c32"})
    assert_clean(at)
    at.radio(key="core_task").set_value("dir").run()
    assert_clean(at)
    assert "Gene AUROC" in {m.label for m in at.metric}
    assert any(s.label.startswith("Perturbation p (drug)") for s in at.selectbox)


def test_evidence_core_reasoning_with_a_fake_llm(real_data) -> None:
    reply = "Probability: 0.72\nRationale: two related knock-downs changed this gene."
    with FakeOpenAI(lambda req: reply) as server:
        state = {"llm_overrides": {"llm_base_url": server.base_url, "llm_model": "fake-model"}}
        at = open_page("evidence", state)
        assert server.n_requests == 0  # never at the top level of a rerun
        next(b for b in at.button if b.label.startswith("Ask fake-model")).click().run()
        assert_clean(at)
        assert server.n_requests == 1
        assert {m.label: m.value for m in at.metric}["LLM probability"] == "0.720"
        assert any("two related knock-downs" in c.value for c in at.caption)


def test_evidence_llm_failure_is_an_error_with_the_fix(real_data) -> None:
    missing = (
        404,
        {"error": {"message": "model not found", "type": "invalid_request", "param": None, "code": None}},
    )
    with FakeOpenAI(lambda req: missing) as server:  # 404 is not retried: the test stays fast
        state = {"llm_overrides": {"llm_base_url": server.base_url, "llm_model": "fake-model"}}
        at = open_page("evidence", state)
        next(b for b in at.button if b.label.startswith("Ask fake-model")).click().run()
        assert not at.exception
        assert at.error and "falls back to CORE-Voting" in at.error[0].value


def test_benchmarks_runs_a_small_core_task(real_data) -> None:
    at = open_page("benchmarks")
    at.number_input(key="bench_core_maxp").set_value(1500)
    at.multiselect(key="bench_core_methods").set_value(["gene_frequency", "core_voting"])
    next(b for b in at.button if b.label == "Run on perturbqa-k562").click().run()
    assert_clean(at)
    table = next(d.value for d in at.dataframe if "AUROC" in d.value.columns)
    assert list(table.index) == ["gene_frequency", "core_voting"]
    assert all("[" in cell for cell in table["Per-gene AUROC (macro)"])
    keys = {c.proto.id for c in at.get("plotly_chart")}
    assert len(keys) == 8  # six metric bars, calibration curve, per-gene AUROC histogram
    result = at.session_state["bench_core"]["dict"]
    assert result["methods"]["gene_frequency"]["macro_gene_auroc"] == pytest.approx(0.5)
    assert 0 < result["methods"]["core_voting"]["n_pairs"] <= 1500


# --------------------------------------------------------------------------- links (query parameters)


def _open_with_query(page: str, params: dict[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_link_opens_a_retrieval_view_with_any_spelling(real_data) -> None:
    at = _open_with_query(
        "retrieval", {"cell_line": "nci h23", "drug": "TRAMETINIB", "selector": "chem_knn", "k": "5"}
    )
    assert not at.warning, [w.value for w in at.warning]
    assert at.subheader[0].value == "Trametinib in NCI-H23"
    assert len(_neighbours(at)) == 5


def test_a_link_with_an_unknown_name_warns_with_the_closest_names(real_data) -> None:
    at = _open_with_query(
        "evidence", {"dataset": "perturbqa-k562", "perturbation": "INTS11x", "gene": "LIMD2"}
    )
    assert_clean(at)
    assert any("Link parameter ignored" in w.value and "INTS11" in w.value for w in at.warning)


def test_a_link_opens_an_evidence_view(real_data) -> None:
    at = _open_with_query("evidence", {"dataset": "perturbqa-k562", "perturbation": "ints1", "gene": "limd2"})
    assert_clean(at)
    assert any(m.value.startswith("**INTS1 → LIMD2**") for m in at.markdown)


# --------------------------------------------------------------------------- no data yet


@pytest.mark.parametrize("page", ["overview", "retrieval", "evidence", "benchmarks", "data"])
def test_without_built_data_every_page_says_how_to_build_it(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERTURB_CORE_DATA_DIR", str(tmp_path / "empty"))
    at = open_page(page)
    assert at.warning and "python -m perturb_core data build" in at.warning[0].value
    if page == "overview":
        assert any(b.label == "Build the data now" for b in at.button)
