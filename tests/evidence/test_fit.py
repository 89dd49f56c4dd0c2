"""Fitting CORE-Voting: the fast per-gene AUROC, the informative relation wins, direction task, fixed weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perturb_core.data.registry import LabelSet
from perturb_core.errors import UnknownNameError
from perturb_core.evidence import VotingOptions, fit_core_voting, predict_core_voting
from perturb_core.evidence._fit import _GeneAUROC
from perturb_core.kg import KnowledgeGraph
from perturb_core.metrics import macro_gene_auroc
from perturb_core.testing.graphs import FIXED, tiny_graph, tiny_labels


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


def test_fixed_weights_are_used_as_given() -> None:
    model = fit_core_voting(tiny_labels(), tiny_graph(), options=VotingOptions(weights=FIXED, n_folds=2))
    assert model.weight("interacts") == 1.0 and model.weight("shared_pathway") == 1.0
    assert model.relations_used == ("interacts", "shared_pathway")


def test_fixed_weights_on_an_unused_relation() -> None:
    options = VotingOptions(weights=(("regulates", 1.0),), n_folds=2)
    with pytest.raises(
        UnknownNameError, match=r"^unknown relation in weights 'regulates'; valid: interacts, "
    ):
        fit_core_voting(
            tiny_labels(), tiny_graph(), relations=["interacts", "shared_pathway"], options=options
        )
