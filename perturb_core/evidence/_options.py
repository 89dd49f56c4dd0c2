"""CORE-Voting's options (how relations are built and the model is fitted) and the fitted model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perturb_core.errors import ValidationError

__all__ = ["CoreVoting", "VotingOptions"]


@dataclass(frozen=True)
class VotingOptions:
    """How relation matrices are built and CORE-Voting is fitted.

    Attributes:
        n_folds: cross-validation folds over training perturbations.
        seed: seed of the fold assignment.
        n_rounds: passes of coordinate ascent over weights, shrinkage and unmeasured weight.
        weight_grid: candidate relation weights (0 switches a relation off).
        shrinkage_grid: candidate shrinkage strengths ``m`` (in units of relation mass).
        unmeasured_grid: candidate weights ``u`` of an unmeasured related perturbation as a
            negative vote (direction task: always 0).
        shrinkage: fix ``m`` instead of fitting it (0 = no shrinkage).
        unmeasured: fix ``u`` instead of fitting it (0 = strict CORE evidence).
        weights: fix the relation weights instead of fitting them.
        prior_pseudocount: pseudo-count ``a`` pulling a gene's rate toward the global rate.
        max_term_size: shared pathways / GO terms with more genes are ignored.
        chem_threshold: minimum Tanimoto similarity of a chemical-similarity relation.
        calibrate: fit the final logistic calibration of (prior, lift) on out-of-fold pairs.
    """

    n_folds: int = 5
    seed: int = 0
    n_rounds: int = 1
    weight_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
    shrinkage_grid: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0)
    unmeasured_grid: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)
    shrinkage: float | None = None
    unmeasured: float | None = None
    weights: tuple[tuple[str, float], ...] | None = None
    prior_pseudocount: float = 0.5
    max_term_size: int = 2000
    chem_threshold: float = 0.3
    calibrate: bool = True

    def __post_init__(self) -> None:
        if self.n_folds < 2:
            raise ValidationError(f"n_folds = {self.n_folds} must be >= 2 (cross-validation inside train)")
        if self.n_rounds < 1:
            raise ValidationError(f"n_rounds = {self.n_rounds} must be >= 1")
        for name in ("weight_grid", "shrinkage_grid", "unmeasured_grid"):
            grid = getattr(self, name)
            if not grid or min(grid) < 0:
                raise ValidationError(f"{name} = {grid!r} must be a non-empty tuple of values >= 0")
        for name in ("shrinkage", "unmeasured"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ValidationError(f"{name} = {v!r} must be >= 0 (or None to fit it)")
        if self.prior_pseudocount <= 0:
            raise ValidationError(f"prior_pseudocount = {self.prior_pseudocount} must be > 0")
        if not 0 < self.chem_threshold <= 1:
            raise ValidationError(f"chem_threshold = {self.chem_threshold} must be in (0, 1]")


@dataclass(frozen=True)
class CoreVoting:
    """A fitted CORE-Voting model (frozen): relation weights, shrinkage and unmeasured weight.

    Attributes:
        dataset: label dataset it was fitted on.
        task: ``de`` or ``dir``.
        relations: relations considered, in order.
        weights: fitted weight of each relation (same order; 0 = not used).
        shrinkage: shrinkage strength ``m``.
        unmeasured: weight ``u`` of an unmeasured related training perturbation as a negative vote.
        prior_pseudocount: pseudo-count ``a`` of the gene prior.
        cv_macro_gene_auroc: cross-validated objective at the fitted values (mean over folds).
        cv_baseline: the same objective with all weights 1, ``m`` = 1 and ``u`` = 0 (start point).
        n_folds: folds used.
        seed: fold seed.
        calibration: ``(c0, c1, c2)`` of ``score = sigmoid(c0 + c1 logit f + c2 lift)``, fitted by
            logistic regression on out-of-fold training pairs (identity ``(0, 1, 1)`` when off).
        crossline_top_k: neighbours per perturbation kept in the ``co_response`` relation
            (chosen by CV; 0 = all; ``None``: single-line model).
        crossline_lines: the other lines whose TRAINING labels built ``co_response``.
    """

    dataset: str
    task: str
    relations: tuple[str, ...]
    weights: tuple[float, ...]
    shrinkage: float
    unmeasured: float
    prior_pseudocount: float
    cv_macro_gene_auroc: float
    cv_baseline: float
    n_folds: int
    seed: int
    calibration: tuple[float, float, float] = (0.0, 1.0, 1.0)
    crossline_top_k: int | None = None
    crossline_lines: tuple[str, ...] = ()

    @property
    def relations_used(self) -> tuple[str, ...]:
        """Relations with a non-zero weight."""
        return tuple(r for r, w in zip(self.relations, self.weights, strict=True) if w > 0)

    def weight(self, relation: str) -> float:
        """The fitted weight of ``relation`` (0 if not considered)."""
        return dict(zip(self.relations, self.weights, strict=True)).get(relation, 0.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "dataset": self.dataset,
            "task": self.task,
            "weights": dict(zip(self.relations, self.weights, strict=True)),
            "shrinkage": self.shrinkage,
            "unmeasured_weight": self.unmeasured,
            "prior_pseudocount": self.prior_pseudocount,
            "cv_macro_gene_auroc": self.cv_macro_gene_auroc,
            "cv_baseline": self.cv_baseline,
            "n_folds": self.n_folds,
            "seed": self.seed,
            "calibration": {
                "intercept": self.calibration[0],
                "prior": self.calibration[1],
                "lift": self.calibration[2],
            },
            **(
                {"crossline_top_k": self.crossline_top_k, "crossline_lines": list(self.crossline_lines)}
                if self.crossline_top_k is not None
                else {}
            ),
        }
