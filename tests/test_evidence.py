"""CORE evidence: relation matrices, the vectorised vote and shrinkage, fitting, explain, leakage."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from perturb_core.data.registry import DrugTable, LabelSet, load_labels
from perturb_core.errors import UnknownNameError, ValidationError
from perturb_core.evidence import (
    RELATION_SPECS,
    VotingOptions,
    _GeneAUROC,
    build_relations,
    core_index,
    default_relations,
    explain,
    fit_core_voting,
    gene_frequency,
    predict_core_voting,
)
from perturb_core.kg import KnowledgeGraph, load_graph
from perturb_core.metrics import macro_gene_auroc

A = 0.5  # default prior pseudo-count

# --------------------------------------------------------------------------- tiny fixtures


def tiny_graph() -> KnowledgeGraph:
    """Genes A..F (perturbations), G1..G3 (readouts); pathway P1 = {A, B, C}; A interacts D."""
    genes = ["A", "B", "C", "D", "E", "F", "G1", "G2", "G3"]
    nodes = pd.DataFrame(
        {
            "id": [f"gene:{g}" for g in genes] + ["pathway:P1", "go:GO:1"],
            "name": [*genes, "Pathway one", "process one"],
            "kind": ["gene"] * len(genes) + ["pathway", "go_term"],
            "detail": [""] * len(genes) + ["reactome", "biological_process"],
        }
    )
    edges = pd.DataFrame(
        {
            "src": ["gene:A", "gene:B", "gene:C", "gene:A", "gene:E", "gene:F", "gene:B"],
            "dst": ["pathway:P1", "pathway:P1", "pathway:P1", "gene:D", "go:GO:1", "go:GO:1", "gene:E"],
            "relation": ["in_pathway"] * 3 + ["interacts", "annotated_with", "annotated_with", "regulates"],
        }
    )
    return KnowledgeGraph.from_tables(nodes, edges)


TINY_ROWS = [
    # pert, gene, label, split
    ("B", "G1", 1, "train"),
    ("B", "G2", 0, "train"),
    ("C", "G1", 0, "train"),
    ("D", "G1", 1, "train"),
    ("D", "G2", 1, "train"),
    ("E", "G1", 0, "train"),
    ("E", "G2", 0, "train"),
    ("F", "G1", 1, "train"),
    ("A", "G1", 1, "test"),
    ("A", "G2", 0, "test"),
    ("A", "G3", 0, "test"),
]


def tiny_labels(rows: list[tuple[str, str, int, str]] | None = None, task: str = "de") -> LabelSet:
    df = pd.DataFrame(rows or TINY_ROWS, columns=["pert", "gene", "label", "split"])
    table = pd.DataFrame(
        {
            "pert": pd.Categorical(df["pert"], categories=list("ABCDEF")),
            "gene": pd.Categorical(df["gene"], categories=["G1", "G2", "G3"]),
            "label": df["label"].astype(np.int8),
            "split": pd.Categorical(df["split"], categories=["test", "train"]),
        }
    )
    return LabelSet("tiny", task, table, "TINY", "knockdown")  # type: ignore[arg-type]


#: fixed weights: only interacts and shared_pathway; no fitting
FIXED = (("interacts", 1.0), ("shared_pathway", 1.0))


def fixed(m: float = 1.0, u: float = 0.0) -> VotingOptions:
    return VotingOptions(weights=FIXED, shrinkage=m, unmeasured=u, n_folds=2, calibrate=False)


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# prior of the tiny set: G1 3/5 positive, G2 1/3, G3 unlabelled; global rate 4/8
F_G1 = (3 + A * 0.5) / (5 + A)
F_G2 = (1 + A * 0.5) / (3 + A)
F_G3 = (0 + A * 0.5) / (0 + A)


# --------------------------------------------------------------------------- relations


def test_relation_matrices_are_scaled_and_exclude_self() -> None:
    rs = build_relations(tiny_labels(), tiny_graph(), relations=["interacts", "shared_pathway"])
    pw = rs.relations["shared_pathway"].matrix.toarray()
    it = rs.relations["interacts"].matrix.toarray()
    # raw shared pathway: 1/|P1| = 1/3 between A, B, C; mean row sum over 6 perturbations = 1/3
    expected = np.zeros((6, 6))
    expected[np.ix_([0, 1, 2], [0, 1, 2])] = 1.0
    np.fill_diagonal(expected, 0)
    assert_allclose(pw, expected)
    # interacts A-D raw 1; mean row sum 2/6 -> entries 3
    assert it[0, 3] == it[3, 0] == pytest.approx(3.0)
    assert it.sum() == pytest.approx(6.0)
    for m in (pw, it):
        assert np.all(np.diag(m) == 0)
        assert m.sum(axis=1).mean() == pytest.approx(1.0)


def test_default_relations_exclude_leaky_and_absent_complexes() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    rels = default_relations(labels, graph)
    assert "regulates" not in rels and "shared_complex" not in rels
    assert "shared_go_process" in rels and "interacts" in rels
    assert "regulates" in default_relations(labels, graph, include_leaky=True)


@pytest.mark.parametrize(
    ("relations", "leaky", "error", "match"),
    [
        (["regulates"], False, ValidationError, "include_leaky=True"),
        (["shared_complex"], False, ValidationError, "CORUM"),
        (["shared_patway"], False, UnknownNameError, "shared_pathway"),
        (["shared_target"], False, UnknownNameError, "relation for knockdown"),
        ([], False, ValidationError, "empty"),
    ],
)
def test_bad_relations(relations: list[str], leaky: bool, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        build_relations(tiny_labels(), tiny_graph(), relations=relations, include_leaky=leaky)


def test_regulates_only_as_explicit_ablation() -> None:
    rs = build_relations(tiny_labels(), tiny_graph(), relations=["regulates"], include_leaky=True)
    assert rs.relations["regulates"].matrix[1, 4] > 0  # B regulates E
    assert RELATION_SPECS["regulates"].leaky


def test_drug_relations() -> None:
    names = ["Xdrug", "Ydrug", "Zdrug", "Wdrug"]
    ids = ["xdrug", "ydrug", "zdrug", "wdrug"]
    nodes = pd.DataFrame(
        {
            "id": [f"drug:{i}" for i in ids] + ["gene:T1", "gene:T2", "gene:T3", "gene:R", "mechanism:m1"],
            "name": [*names, "T1", "T2", "T3", "R", "Mech one"],
            "kind": ["drug"] * 4 + ["gene"] * 4 + ["mechanism"],
            "detail": [""] * 9,
        }
    )
    edges = pd.DataFrame(
        {
            "src": [
                "drug:xdrug",
                "drug:ydrug",
                "drug:zdrug",
                "drug:wdrug",
                "gene:T1",
                "drug:xdrug",
                "drug:zdrug",
            ],
            "dst": ["gene:T1", "gene:T1", "gene:T2", "gene:T3", "gene:T2", "mechanism:m1", "mechanism:m1"],
            "relation": ["targets"] * 4 + ["interacts", "has_mechanism", "has_mechanism"],
        }
    )
    graph = KnowledgeGraph.from_tables(nodes, edges)
    fp = np.zeros((4, 2048), dtype=bool)
    fp[0, :40] = fp[3, :40] = True  # X and W identical
    fp[1, 100:140] = True
    fp[2, 200:240] = True
    drugs = DrugTable(
        pd.DataFrame({"name": names}, index=pd.Index(ids, name="drug_id")), fp, np.ones(4, bool)
    )
    table = pd.DataFrame(
        {
            "pert": pd.Categorical(names, categories=names),
            "gene": pd.Categorical(["R"] * 4),
            "label": np.array([1, 0, 1, 0], dtype=np.int8),
            "split": pd.Categorical(["test", "train", "train", "train"]),
        }
    )
    labels = LabelSet("tahoe-tiny", "de", table, "TINY", "drug")  # type: ignore[arg-type]
    rs = build_relations(labels, graph, drugs=drugs)
    assert tuple(rs.relations) == (
        "shared_target",
        "shared_mechanism",
        "chemical_similarity",
        "adjacent_targets",
    )
    nz = {
        r: {tuple(sorted(p)) for p in zip(*m.matrix.nonzero(), strict=True)} for r, m in rs.relations.items()
    }
    assert nz["shared_target"] == {(0, 1)}
    assert nz["shared_mechanism"] == {(0, 2)}
    assert nz["chemical_similarity"] == {(0, 3)}
    assert nz["adjacent_targets"] == {(0, 2), (1, 2)}
    ex = explain(labels, graph, perturbation="xdrug", gene="R", index=core_index(labels, graph, drugs=drugs))
    paths = {it["perturbation"]: it["path"] for it in ex.negative + ex.positive}
    assert paths["Ydrug"] == ["drug:xdrug", "gene:T1", "drug:ydrug"]
    assert paths["Wdrug"] == ["drug:xdrug", "drug:wdrug"]
    assert ex.context["perturbation"]["targets"] == ["T1"]


# --------------------------------------------------------------------------- the vote


def test_vote_and_shrinkage_exact() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    out = predict_core_voting(labels, graph, options=fixed(m=1.0))
    out = out.set_index("gene")
    # (A, G1): B +1 (pathway, 1), D +1 (interacts, 3), C -1 (pathway, 1)
    assert out.at["G1", "pos"] == pytest.approx(4.0)
    assert out.at["G1", "neg"] == pytest.approx(1.0)
    assert out.at["G1", "vote"] == pytest.approx(0.8)
    assert out.at["G1", "prior"] == pytest.approx(F_G1)
    assert out.at["G1", "score"] == pytest.approx((4 + F_G1) / (5 + 1))
    # (A, G2): D +1 (3), B -1 (1); C unmeasured
    assert out.at["G2", "vote"] == pytest.approx(0.75)
    assert out.at["G2", "unmeasured"] == pytest.approx(1.0)
    assert out.at["G2", "score"] == pytest.approx((3 + F_G2) / (4 + 1))
    # (A, G3): no training outcome anywhere -> no vote, score = prior
    assert math.isnan(out.at["G3", "vote"])
    assert out.at["G3", "score"] == pytest.approx(F_G3)


@pytest.mark.parametrize("m", [0.0, 0.3, 1.0, 10.0])
def test_shrinkage_strength(m: float) -> None:
    out = predict_core_voting(tiny_labels(), tiny_graph(), options=fixed(m=m)).set_index("gene")
    assert out.at["G1", "score"] == pytest.approx((4 + m * F_G1) / (5 + m))


def test_unmeasured_weight_and_logit_prior() -> None:
    u, m = 0.5, 1.0
    out = predict_core_voting(tiny_labels(), tiny_graph(), options=fixed(m=m, u=u)).set_index("gene")
    # (A, G2): pos 3, neg 1, unmeasured C (1) -> tot 4.5
    assert out.at["G2", "tot"] == pytest.approx(4.5)
    assert out.at["G2", "vote"] == pytest.approx(3 / 4.5)
    # prior on the vote's scale: 5 evidence perturbations, G2 measured under 3, u counts the other 2
    base_u = 4 / (8 + u * (5 * 3 - 8))
    pi = (1 + A * base_u) / (3 + u * 2 + A)
    shrunk = (3 + m * pi) / (4.5 + m)
    assert out.at["G2", "score"] == pytest.approx(sigmoid(logit(F_G2) + logit(shrunk) - logit(pi)))
    assert out.at["G2", "prior"] == pytest.approx(F_G2)


def test_own_label_is_never_evidence() -> None:
    """Scoring a training pair: changing that pair's own label does not change its score."""
    labels, graph = tiny_labels(), tiny_graph()
    pairs = pd.DataFrame({"pert": ["B"], "gene": ["G1"]})
    s1 = predict_core_voting(labels, graph, pairs, options=fixed())
    rows = [(p, g, 1 - y if (p, g) == ("B", "G1") else y, s) for p, g, y, s in TINY_ROWS]
    s2 = predict_core_voting(tiny_labels(rows), graph, pairs, options=fixed())
    # only the gene prior moves (B's label is part of G1's training frequency); the vote does not
    assert s1["pos"].iat[0] == pytest.approx(s2["pos"].iat[0])
    assert s1["vote"].iat[0] == pytest.approx(s2["vote"].iat[0])


def test_changing_test_labels_never_changes_predictions() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    flipped = [(p, g, 1 - y if s == "test" else y, s) for p, g, y, s in TINY_ROWS]
    opts = VotingOptions(n_folds=2)
    a = predict_core_voting(labels, graph, options=opts)
    b = predict_core_voting(tiny_labels(flipped), graph, options=opts)
    assert_allclose(a["score"], b["score"])
    assert core_index(labels, graph, options=opts).model == dataclasses.replace(
        core_index(tiny_labels(flipped), graph, options=opts).model
    )


def test_gene_frequency_exact() -> None:
    gf = gene_frequency(tiny_labels())
    assert gf["G1"] == pytest.approx(3 / 5)
    assert gf["G2"] == pytest.approx(1 / 3)
    assert gf["G3"] == pytest.approx(4 / 8)  # no training pair: the global rate


def test_fast_gene_auroc_matches_metrics() -> None:
    rng = np.random.default_rng(1)
    for _ in range(10):
        n = 500
        g = rng.integers(0, 40, n)
        y = (rng.random(n) < 0.3).astype(float)
        s = np.round(rng.random(n), 1)
        assert _GeneAUROC(y, g).mean(s) == pytest.approx(macro_gene_auroc(y, s, g).mean, abs=1e-12)


def test_fit_prefers_the_informative_relation() -> None:
    """Synthetic: pathway clusters decide the outcome, interactions are random."""
    rng = np.random.default_rng(0)
    n_pert, n_gene, n_cluster = 60, 24, 4
    perts = [f"P{i}" for i in range(n_pert)]
    genes = [f"R{j}" for j in range(n_gene)]
    cluster = np.arange(n_pert) % n_cluster
    nodes = pd.DataFrame(
        {
            "id": [f"gene:{x}" for x in perts + genes] + [f"pathway:C{c}" for c in range(n_cluster)],
            "name": perts + genes + [f"C{c}" for c in range(n_cluster)],
            "kind": ["gene"] * (n_pert + n_gene) + ["pathway"] * n_cluster,
            "detail": [""] * (n_pert + n_gene + n_cluster),
        }
    )
    pairs = rng.integers(0, n_pert, size=(80, 2))
    edges = pd.DataFrame(
        {
            "src": [f"gene:{p}" for p in perts] + [f"gene:{perts[a]}" for a, b in pairs if a != b],
            "dst": [f"pathway:C{c}" for c in cluster] + [f"gene:{perts[b]}" for a, b in pairs if a != b],
            "relation": ["in_pathway"] * n_pert + ["interacts"] * int((pairs[:, 0] != pairs[:, 1]).sum()),
        }
    )
    graph = KnowledgeGraph.from_tables(nodes, edges)
    rows = []
    for i, p in enumerate(perts):
        for j in rng.choice(n_gene, 12, replace=False):
            prob = 0.9 if j % n_cluster == cluster[i] else 0.05
            rows.append((p, genes[j], int(rng.random() < prob), "test" if i >= 48 else "train"))
    df = pd.DataFrame(rows, columns=["pert", "gene", "label", "split"])
    table = df.assign(
        pert=pd.Categorical(df["pert"], categories=perts),
        gene=pd.Categorical(df["gene"], categories=genes),
        label=df["label"].astype(np.int8),
        split=pd.Categorical(df["split"]),
    )
    labels = LabelSet("synthetic", "de", table, "SYN", "knockdown")  # type: ignore[arg-type]
    model = fit_core_voting(labels, graph, relations=["interacts", "shared_pathway"])
    assert model.weight("shared_pathway") > model.weight("interacts")
    assert model.cv_macro_gene_auroc > 0.85
    assert model.cv_macro_gene_auroc >= model.cv_baseline
    test = predict_core_voting(labels, graph, relations=["interacts", "shared_pathway"])
    y = table.loc[table["split"] == "test", "label"].to_numpy()
    assert macro_gene_auroc(y, test["score"], test["gene"]).mean > 0.85
    # the final logistic calibration is monotone within a gene: per-gene AUROC is unchanged
    raw = predict_core_voting(
        labels, graph, relations=["interacts", "shared_pathway"], options=VotingOptions(calibrate=False)
    )
    assert macro_gene_auroc(y, raw["score"], raw["gene"]).mean == pytest.approx(
        macro_gene_auroc(y, test["score"], test["gene"]).mean
    )
    assert model.calibration[2] > 0


def test_direction_task_never_counts_unmeasured() -> None:
    labels, graph = tiny_labels(task="dir"), tiny_graph()
    model = fit_core_voting(labels, graph, options=VotingOptions(n_folds=2, unmeasured=0.5))
    assert model.unmeasured == 0.0 and model.task == "dir"


# --------------------------------------------------------------------------- explain


def test_explain_items_paths_and_graph() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    index = core_index(labels, graph, options=fixed())
    ex = explain(labels, graph, perturbation="a", gene="g1", index=index)
    d = ex.to_dict()
    assert (d["perturbation"], d["gene"], d["split"], d["label"]) == ("A", "G1", "test", 1)
    assert [it["perturbation"] for it in d["positive"]] == ["D", "B"]  # by relation weight
    assert [it["perturbation"] for it in d["negative"]] == ["C"]
    assert d["positive"][0]["relation"] == "interacts" and d["positive"][0]["path"] == ["gene:A", "gene:D"]
    assert d["positive"][1]["path"] == ["gene:A", "pathway:P1", "gene:B"]
    assert d["positive"][1]["path_names"] == ["A", "Pathway one", "B"]
    assert d["positive"][0]["weight"] == pytest.approx(3.0)
    assert d["vote"] == pytest.approx(0.8)
    batch = predict_core_voting(labels, graph, index=index).set_index("gene")
    assert d["score"] == pytest.approx(batch.at["G1", "score"])  # full support = batch score
    assert d["prior"] == pytest.approx(F_G1)
    assert d["gene_auroc"] is None  # one test perturbation for G1
    roles = {n["id"]: n["role"] for n in d["graph"]["nodes"]}
    assert roles == {
        "gene:A": "query",
        "gene:G1": "gene",
        "gene:D": "positive",
        "gene:B": "positive",
        "gene:C": "negative",
        "pathway:P1": "intermediate",
    }
    edges = {(e["source"], e["target"], e["relation"]) for e in d["graph"]["edges"]}
    assert ("gene:A", "gene:D", "interacts") in edges
    assert ("gene:C", "gene:G1", "no_response_in_training") in edges
    assert ("gene:D", "gene:G1", "responded_in_training") in edges
    assert d["relations_used"] == ["interacts", "shared_pathway"]


def test_explain_budget_and_unmeasured() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    index = core_index(labels, graph, options=fixed(m=1.0))
    ex = explain(labels, graph, perturbation="A", gene="G1", budget=1, index=index)
    assert [it["perturbation"] for it in ex.positive] == ["D"] and not ex.negative
    assert ex.vote == pytest.approx(1.0)
    assert ex.score == pytest.approx((3 + F_G1) / (3 + 1))
    ex2 = explain(labels, graph, perturbation="A", gene="G2", index=index)
    assert [it["perturbation"] for it in ex2.unmeasured] == ["C"] and ex2.n_unmeasured == 1
    assert ex2.unmeasured[0]["label"] is None
    with pytest.raises(ValidationError, match="budget"):
        explain(labels, graph, perturbation="A", gene="G1", budget=0, index=index)


def test_explain_no_evidence_says_so() -> None:
    labels, graph = tiny_labels(), tiny_graph()
    ex = explain(labels, graph, perturbation="A", gene="G3", index=core_index(labels, graph, options=fixed()))
    assert ex.vote is None and ex.score == pytest.approx(F_G3)
    assert "prior" in ex.note and ex.to_dict()["vote"] is None


@pytest.mark.parametrize(("pert", "gene", "match"), [("AA", "G1", "closest known: A"), ("A", "G9", "G1")])
def test_explain_unknown_names(pert: str, gene: str, match: str) -> None:
    labels, graph = tiny_labels(), tiny_graph()
    with pytest.raises(UnknownNameError, match=match):
        explain(labels, graph, perturbation=pert, gene=gene, index=core_index(labels, graph, options=fixed()))


# --------------------------------------------------------------------------- real data

LINES = ("k562", "rpe1", "hepg2", "jurkat")


@pytest.mark.realdata
def test_real_gene_frequency_is_half_per_gene_and_voting_beats_it(real_data: object) -> None:
    graph = load_graph(real_data)  # type: ignore[arg-type]
    for line in LINES:
        labels = load_labels(f"perturbqa-{line}", "de", real_data)  # type: ignore[arg-type]
        test = labels.table[labels.table["split"] == "test"]
        y, genes = test["label"].to_numpy(), test["gene"].astype(str).to_numpy()
        gf = gene_frequency(labels).reindex(genes).to_numpy()
        assert macro_gene_auroc(y, gf, genes).mean == pytest.approx(0.5, abs=1e-9)
        scores = core_index(labels, graph).test_scores()
        per_gene = macro_gene_auroc(y, scores["score"].to_numpy(), genes).mean
        assert per_gene >= 0.62, (line, per_gene)


@pytest.mark.realdata
def test_real_leakage_test_labels_never_change_predictions(real_data: object) -> None:
    graph = load_graph(real_data)  # type: ignore[arg-type]
    labels = load_labels("perturbqa-hepg2", "de", real_data)  # type: ignore[arg-type]
    t = labels.table.copy()
    test = (t["split"] == "test").to_numpy()
    t.loc[test, "label"] = (1 - t.loc[test, "label"]).astype(np.int8)
    flipped = dataclasses.replace(labels, table=t)
    a, b = core_index(labels, graph), core_index(flipped, graph)
    assert a is not b and a.model == b.model
    assert_allclose(a.test_scores()["score"], b.test_scores()["score"])


@pytest.mark.realdata
def test_real_explain_is_fast_and_matches_batch(real_data: object) -> None:
    graph = load_graph(real_data)  # type: ignore[arg-type]
    labels = load_labels("perturbqa-k562", "de", real_data)  # type: ignore[arg-type]
    index = core_index(labels, graph)
    ts = index.test_scores()
    row = ts[ts["label"] == 1].iloc[0]
    explain(labels, graph, perturbation=row["pert"], gene=row["gene"], index=index)  # warm caches
    start = time.perf_counter()
    ex = explain(labels, graph, perturbation=row["pert"], gene=row["gene"], index=index)
    assert time.perf_counter() - start < 0.1
    assert ex.score == pytest.approx(row["score"])
    assert ex.label == 1 and ex.split == "test"
    assert ex.n_positive + ex.n_negative > 0
