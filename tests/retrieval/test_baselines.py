"""LGR baselines (perturb_core.retrieval.baselines) against hand-computed values on a tiny tensor."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pytest
from numpy.testing import assert_allclose
from numpy.typing import NDArray

import perturb_core.retrieval._ridge as ridge_module
from perturb_core.config import Settings
from perturb_core.errors import UnknownNameError, ValidationError
from perturb_core.retrieval.baselines import (
    BASELINE_DEFINITIONS,
    BASELINE_LABELS,
    BASELINES,
    BaselineData,
    RidgeReference,
    cell_mean,
    check_baseline,
    chem_knn,
    drug_mean,
    pca_ridge,
    predict_baseline,
)
from perturb_core.spec import MethodSpec

NAN = np.nan

# 2 cell lines x 3 drugs x 2 genes
DELTAS = np.array(
    [
        [[1.0, 2.0], [3.0, NAN], [5.0, 6.0]],
        [[7.0, 8.0], [9.0, 10.0], [NAN, NAN]],  # (1, 2) not profiled
    ],
    dtype=np.float32,
)
PRESENT = ~np.isnan(DELTAS).all(2)
FPS = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1]], dtype=bool)


def data(train: np.ndarray | None = None, loo: bool = False, valid: np.ndarray | None = None) -> BaselineData:
    return BaselineData(
        deltas=DELTAS,
        train=PRESENT.copy() if train is None else train,
        fingerprints=FPS,
        fp_valid=np.ones(3, bool) if valid is None else valid,
        leave_one_out=loo,
    )


def test_cell_mean_hand_values() -> None:
    train = PRESENT.copy()
    train[:, 0] = False  # drug 0 held out (unseen drug)
    res = cell_mean(data(train), np.array([0, 1]), np.array([0, 0]))
    # line 0 training drugs 1, 2: gene0 (3+5)/2, gene1 6 (drug 1 gene 1 missing); line 1: drug 1 only
    assert_allclose(res.prediction, [[4.0, 6.0], [9.0, 10.0]])
    assert res.fallback == (None, None)
    # unseen line: the global training mean
    train = PRESENT.copy()
    train[1] = False
    res = cell_mean(data(train), np.array([1]), np.array([0]))
    assert_allclose(res.prediction, [[3.0, 4.0]])
    assert res.fallback[0].startswith("cell line has no training pair")


def test_cell_mean_leave_one_out_excludes_the_query() -> None:
    res = cell_mean(data(loo=True), np.array([0, 1]), np.array([0, 1]))
    # (0,0) left out: drugs 1,2 of line 0 -> [4, 6]; (1,1) left out: drug 0 of line 1 -> [7, 8]
    assert_allclose(res.prediction, [[4.0, 6.0], [7.0, 8.0]])


def test_drug_mean_hand_values_and_fallback() -> None:
    train = PRESENT.copy()
    train[1] = False  # line 1 held out
    res = drug_mean(data(train), np.array([1, 1]), np.array([0, 1]))
    assert_allclose(res.prediction, [[1.0, 2.0], [3.0, NAN]])
    # leave-one-out: drug 2 is only profiled in line 0 -> falls back to the cell mean
    res = drug_mean(data(loo=True), np.array([0, 0]), np.array([0, 2]))
    assert_allclose(res.prediction[0], [7.0, 8.0])
    assert_allclose(res.prediction[1], [2.0, 2.0])  # cell mean of line 0 without drug 2
    assert res.fallback[0] is None and res.fallback[1].startswith("drug has no training pair")


def test_chem_knn_mean_of_neighbours_drug_means() -> None:
    # cosine: drug0 vs drug1 = 2/sqrt(6) = 0.816, drug0 vs drug2 = 0
    res = chem_knn(data(), np.array([0]), np.array([0]), k=1)
    assert list(res.neighbours[0]) == [1]
    assert_allclose(res.prediction, [[6.0, 10.0]])  # drug 1's mean over both lines
    res = chem_knn(data(), np.array([0]), np.array([0]), k=2)
    # mean of drug means: drug1 [6, 10], drug2 [5, 6] -> [5.5, 8]
    assert_allclose(res.prediction, [[5.5, 8.0]])
    assert res.k_used[0] == 2
    # no structure for the query -> cell mean, recorded
    res = chem_knn(data(valid=np.array([False, True, True])), np.array([0]), np.array([0]), k=2)
    assert res.fallback[0].startswith("no structure") and res.k_used[0] == 0


def test_pca_ridge_shapes_and_leave_one_out() -> None:
    rng = np.random.default_rng(0)
    deltas = rng.normal(size=(3, 6, 8)).astype(np.float32)
    fps = rng.random((6, 16)) > 0.5
    d = BaselineData(deltas, np.ones((3, 6), bool), fps, np.ones(6, bool), leave_one_out=True)
    cells, drugs = np.array([0, 1, 2]), np.array([0, 3, 5])
    pred = pca_ridge(d, cells, drugs, seed=0).prediction
    assert pred.shape == (3, 8) and np.isfinite(pred).all()
    # the query's own delta never reaches its prediction
    changed = deltas.copy()
    changed[0, 0] += 100.0
    d2 = BaselineData(changed, np.ones((3, 6), bool), fps, np.ones(6, bool), leave_one_out=True)
    assert_allclose(
        pca_ridge(d2, np.array([0]), np.array([0])).prediction,
        pca_ridge(d, np.array([0]), np.array([0])).prediction,
    )


def test_ridge_moments_and_downdate_hand_values() -> None:
    d = data(loo=True)
    mom = d.ridge_moments
    # training rows (0,0) [1,2], (0,1) [3,-], (0,2) [5,6], (1,0) [7,8], (1,1) [9,10]
    # gene means 5 and 6.5; centred rows [-4,-4.5] [-2,0] [0,-.5] [2,1.5] [4,3.5] (0 where missing)
    assert_allclose(mom.mean, [5.0, 6.5])
    assert_allclose(mom.cov, [[40.0, 35.0], [35.0, 35.0]])
    assert_allclose(mom.overlap, [[5.0, 4.0], [4.0, 4.0]])
    # cross[g, h] = sum of centred g over the rows where h is measured: gene 1 lacks (0,1)
    assert_allclose(mom.cross, [[0.0, -4.0 + 0.0 + 2.0 + 4.0], [0.0, 0.0]])
    # without (0,0): means 6 and 8; centred [-3,0] [-1,-2] [1,0] [3,2]
    cov, mean = ridge_module._downdated_covariance(mom, mom.row_of[0, [0]], np.arange(2))
    assert_allclose(mean, [6.0, 8.0])
    assert_allclose(cov, [[20.0, 8.0], [8.0, 8.0]], atol=1e-5)


def ridge_problem(
    seed: int = 0, n_genes: int = 70
) -> tuple[NDArray[np.float32], NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
    """6 lines x 20 drugs x n genes with missing genes, 3 unprofiled pairs and 2 drugs without structure.

    Large enough for the cached-moments path (kept rows >= genes > 50 components + 10).
    """
    rng = np.random.default_rng(seed)
    line = rng.normal(size=(6, 1, n_genes))
    drug = rng.normal(size=(1, 20, n_genes))
    deltas = (line + drug + 0.5 * rng.normal(size=(6, 20, n_genes))).astype(np.float32)
    deltas[rng.random(deltas.shape) < 0.2] = np.nan
    present = np.ones((6, 20), dtype=bool)
    present[[0, 3, 5], [4, 9, 17]] = False
    deltas[~present] = np.nan
    fps = rng.random((20, 64)) > 0.7
    valid = np.ones(20, dtype=bool)
    valid[[2, 11]] = False
    return deltas, present, fps, valid


@pytest.mark.parametrize(("dtype", "atol"), [(np.float64, 1e-9), (np.float32, 2e-4)])
def test_pca_ridge_leave_one_out_equals_a_fresh_fit_without_the_pair(
    monkeypatch: pytest.MonkeyPatch, dtype: type, atol: float
) -> None:
    monkeypatch.setattr(ridge_module, "_PCA_DTYPE", dtype)
    deltas, present, fps, valid = ridge_problem()
    loo = BaselineData(deltas, present, fps, valid, leave_one_out=True)
    cells, drugs = np.array([1, 2, 4]), np.array([3, 11, 0])  # 3 queries -> 3 folds of one pair each
    fast = pca_ridge(loo, cells, drugs, seed=3).prediction
    assert "ridge_moments" in vars(loo)  # answered from the cached cross-products
    for q, (c, d) in enumerate(zip(cells, drugs, strict=True)):
        train = present.copy()
        train[c, d] = False
        fresh = BaselineData(deltas, train, fps, valid)  # refits PCA + ridge from the data
        expected = pca_ridge(fresh, np.array([c]), np.array([d]), seed=3).prediction[0]
        assert "ridge_moments" not in vars(fresh)
        assert_allclose(fast[q], expected, atol=atol, rtol=0)


@pytest.mark.parametrize("regime", ["unseen-drug", "unseen-cell-line", "open-world"])
@pytest.mark.parametrize(("dtype", "atol"), [(np.float64, 1e-9), (np.float32, 2e-4)])
def test_pca_ridge_from_a_shared_reference_equals_a_fresh_fit(
    monkeypatch: pytest.MonkeyPatch, regime: str, dtype: type, atol: float
) -> None:
    monkeypatch.setattr(ridge_module, "_PCA_DTYPE", dtype)
    deltas, present, fps, valid = ridge_problem(seed=2, n_genes=80)
    rows = np.full(present.shape, -1)
    rows[present] = np.arange(present.sum())
    # every profiled pair on 80 genes; each split evaluates 70 of them, in its own order
    reference = RidgeReference(values=deltas[present], rows=rows, gene_ids=np.arange(80))
    genes = np.random.default_rng(5).permutation(80)[:70]
    train = present.copy()
    cells, drugs = {
        "unseen-drug": (np.array([0, 2, 5]), np.array([7, 7, 7])),
        "unseen-cell-line": (np.array([4, 4]), np.array([0, 11])),  # drug 11 has no structure
        "open-world": (np.array([1]), np.array([3])),
    }[regime]
    if regime == "unseen-drug":
        train[:, 7] = False
    if regime == "unseen-cell-line":
        train[4] = False
    split = BaselineData(
        deltas[:, :, genes], train, fps, valid, regime == "open-world", reference=reference, gene_ids=genes
    )
    fast = pca_ridge(split, cells, drugs, seed=1).prediction
    assert "moments" in vars(reference) and "ridge_moments" not in vars(split)
    fit_train = train.copy()
    fit_train[cells, drugs] = False  # only changes the open world (leave the query out)
    fresh = BaselineData(deltas[:, :, genes], fit_train, fps, valid)
    assert_allclose(fast, pca_ridge(fresh, cells, drugs, seed=1).prediction, atol=atol, rtol=0)


def test_reference_needs_gene_ids() -> None:
    deltas, present, fps, valid = ridge_problem()
    rows = np.where(present, 0, -1)
    reference = RidgeReference(values=deltas[present], rows=rows, gene_ids=np.arange(70))
    with pytest.raises(ValidationError, match="a reference needs gene_ids with one entry per gene"):
        BaselineData(deltas, present, fps, valid, reference=reference)


def test_pca_ridge_fast_path_never_sees_the_query(monkeypatch: pytest.MonkeyPatch) -> None:
    # double precision, so that removing a changed row leaves no single-precision rounding behind
    monkeypatch.setattr(ridge_module, "_PCA_DTYPE", np.float64)
    deltas, present, fps, valid = ridge_problem(seed=1)
    before = pca_ridge(
        BaselineData(deltas, present, fps, valid, True), np.array([2]), np.array([5])
    ).prediction
    changed = deltas.copy()
    changed[2, 5] = -changed[2, 5] + 50.0  # the query's own response
    after = pca_ridge(
        BaselineData(changed, present, fps, valid, True), np.array([2]), np.array([5])
    ).prediction
    assert_allclose(after, before, atol=1e-9)
    changed = deltas.copy()
    changed[2, 6] += 50.0  # another training pair: the model changes
    other = pca_ridge(
        BaselineData(changed, present, fps, valid, True), np.array([2]), np.array([5])
    ).prediction
    assert np.abs(other - before).max() > 0.1


@pytest.mark.realdata
def test_pca_ridge_real_query_matches_a_fresh_fit(real_data: Settings) -> None:
    from perturb_core.retrieval import lgr_index, query_split, split_data

    index = lgr_index("tahoe", settings=real_data)
    sd = split_data(index, query_split("tahoe", "open-world", "C32", "Trametinib"))
    c, d = np.array([index.cell_index("C32")]), np.array([index.drug_index("Trametinib")])
    fast = pca_ridge(sd.baseline_data, c, d).prediction[0]
    train = sd.split.train.copy()
    train[c, d] = False
    fresh = BaselineData(sd.deltas, train, index.fingerprints, index.fp_valid)
    expected = pca_ridge(fresh, c, d).prediction[0]
    # single-precision PCA in both: the data-matrix path rounds its gene means in float32
    assert_allclose(fast, expected, atol=1e-3, rtol=0)
    truth = sd.deltas[c[0], d[0]].astype(np.float64)
    ok = np.isfinite(truth)
    assert abs(np.corrcoef(fast[ok], truth[ok])[0, 1] - np.corrcoef(expected[ok], truth[ok])[0, 1]) < 1e-5


def test_registry_and_errors() -> None:
    assert (
        set(BASELINES)
        == set(BASELINE_LABELS)
        == {
            "cell_mean",
            "drug_mean",
            "chem_knn",
            "pca_ridge",
            "pool_mean",
            "additive",
        }
    )
    res = predict_baseline("drug_mean", data(), np.array([0]), np.array([0]))
    assert res.method == "drug_mean"
    with pytest.raises(UnknownNameError, match="valid: cell_mean, drug_mean, chem_knn, pca_ridge"):
        predict_baseline("mean", data(), np.array([0]), np.array([0]))
    with pytest.raises(ValidationError, match="out of range"):
        cell_mean(data(), np.array([5]), np.array([0]))
    with pytest.raises(ValidationError, match="train has shape"):
        BaselineData(DELTAS, np.ones((3, 3), bool), FPS, np.ones(3, bool))


def test_baselines_are_one_spec_each_and_the_label_maps_are_read_only_views() -> None:
    assert tuple(BASELINES) == ("cell_mean", "drug_mean", "chem_knn", "pca_ridge", "pool_mean", "additive")
    for name, spec in BASELINES.items():
        assert isinstance(spec, MethodSpec) and spec.name == name and not spec.needs_llm
        assert BASELINE_LABELS[name] == spec.label and BASELINE_DEFINITIONS[name] == spec.definition
    assert BASELINES["chem_knn"].fn is chem_knn and BASELINES["pca_ridge"].fn is pca_ridge
    for view in (BASELINES, BASELINE_LABELS, BASELINE_DEFINITIONS):
        assert isinstance(view, MappingProxyType)
        with pytest.raises(TypeError):
            view["mine"] = "x"  # type: ignore[index]
    assert check_baseline("Drug-Mean") == "drug_mean"
    assert predict_baseline("CELL_MEAN", data(), np.array([0]), np.array([0])).method == "cell_mean"
    with pytest.raises(
        UnknownNameError,
        match="^unknown baseline 'mean'; valid: cell_mean, drug_mean, chem_knn, pca_ridge, pool_mean, additive$",
    ):
        check_baseline("mean")
