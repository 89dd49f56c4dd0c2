"""Connectivity-Map-style signature query: every stored signature scored against a user's up/down genes.

Score: the weighted connectivity score WTCS of CMap (Subramanian et al. 2017, Cell 171:1437,
"A next generation Connectivity Map", STAR Methods), built on the weighted Kolmogorov-Smirnov
enrichment score of GSEA (Subramanian et al. 2005, PNAS 102:15545; Lamb et al. 2006, Science
313:1929 used its unweighted form). For one signature (genes ranked from most up to most down,
``N`` genes) and a query set ``S`` with ``N_H`` of its genes in the list, walking down the list
the running sum rises by ``|z_j| / N_R`` at each query gene (``N_R`` = sum of ``|z|`` over the
query genes in the list; ``z`` = the signature value) and falls by ``1 / (N - N_H)`` at every
other gene; ES is its largest deviation from zero (signed). Then::

    WTCS = (ES_up - ES_down) / 2   if ES_up and ES_down have different signs, else 0

in [-1, 1]: positive = the drug moves the genes like the query (mimics it), negative = it
reverses it. With only an up list WTCS = ES_up; with only a down list WTCS = -ES_down. No
normalisation across cell lines or drugs (CMap's NCS/tau need its reference database).

The list of a signature is its full ranked list as stored (``layers["rank"]``: rank among the
``n_genes_tested`` genes of that signature, so genes outside the dataset's columns still count
as misses); datasets without a rank layer are ranked over their columns. Signature values of
the Tahoe datasets are rank scores (inverse-normal of the rank), not log fold changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from perturb_core.data.registry import DrugTable, SignatureDataset
from perturb_core.errors import ValidationError, check_int_range, name_key

__all__ = [
    "CONNECTIVITY_REFERENCE",
    "DEFAULT_RANKED_N",
    "ConnectivityResult",
    "GeneQuery",
    "connectivity",
    "enrichment_scores",
    "parse_gene_list",
    "parse_ranked_list",
    "resolve_genes",
    "wtcs",
]

CONNECTIVITY_REFERENCE = (
    "WTCS, the weighted connectivity score of CMap (Subramanian et al. 2017, Cell 171:1437): "
    "(ES_up - ES_down)/2 when the two weighted Kolmogorov-Smirnov enrichment scores (GSEA, Subramanian "
    "et al. 2005; Lamb et al. 2006) have opposite signs, else 0; +1 = mimics the query, -1 = reverses it"
)
DEFAULT_RANKED_N = 100
"""From a ranked list, the first and last this many genes become the up and down lists."""
_SPLIT = re.compile(r"[\s,;]+")
_CHUNK = 512


def parse_gene_list(text: str) -> list[str]:
    """Gene names from pasted text or a file: separated by newlines, tabs, spaces, commas or
    semicolons; ``#`` starts a comment; duplicates dropped keeping the first."""
    names = []
    for line in str(text).splitlines():
        names += [t for t in _SPLIT.split(line.split("#", 1)[0]) if t]
    return list(dict.fromkeys(names))


def parse_ranked_list(text: str, n: int = DEFAULT_RANKED_N) -> tuple[list[str], list[str]]:
    """Up and down lists from a ranked list: one gene per line, optionally ``GENE<sep>score``.

    With scores the genes are sorted by score (highest = most up); without, the order given is
    the ranking (first = most up). The first ``n`` genes are the up list and the last ``n`` the
    down list (each at most half the list, so they never overlap).

    Raises:
        ValidationError: a score that is not a number, or bad ``n``.
    """
    n = check_int_range("n", n, 1, 10_000, hint="genes taken from each end, e.g. 100")
    rows: list[tuple[str, float | None]] = []
    for i, line in enumerate(str(text).splitlines(), 1):
        parts = [t for t in _SPLIT.split(line.split("#", 1)[0]) if t]
        if not parts:
            continue
        score = None
        if len(parts) > 1:
            try:
                score = float(parts[1])
            except ValueError:
                if i == 1:  # a header line
                    continue
                raise ValidationError(
                    f"line {i} of the ranked list: score {parts[1]!r} is not a number; write 'GENE score' "
                    "or one gene per line"
                ) from None
        rows.append((parts[0], score))
    if rows and all(s is not None for _, s in rows):
        rows.sort(key=lambda r: -float(r[1]))  # type: ignore[arg-type]
    genes = list(dict.fromkeys(g for g, _ in rows))
    m = min(n, len(genes) // 2)
    return genes[:m], genes[len(genes) - m :] if m else []


@dataclass(frozen=True)
class GeneQuery:
    """A user's up/down genes resolved against a dataset.

    Attributes:
        up, down: dataset gene symbols (in the user's order).
        unknown_up, unknown_down: the user's names not measured in the dataset.
    """

    up: tuple[str, ...]
    down: tuple[str, ...]
    unknown_up: tuple[str, ...] = ()
    unknown_down: tuple[str, ...] = ()

    @property
    def unknown(self) -> list[str]:
        """Every unknown name (up first)."""
        return [*self.unknown_up, *self.unknown_down]


def _gene_lookup(ds: SignatureDataset) -> dict[str, str]:
    def build() -> dict[str, str]:
        out = {}
        if "gene_id" in ds.adata.var:
            for sym, gid in zip(ds.genes, ds.adata.var["gene_id"].astype(str), strict=True):
                out[name_key(gid.split(".")[0])] = str(sym)
        out.update({name_key(g): str(g) for g in ds.genes})
        return out

    return ds.memo.get("explore_gene_lookup", build)


def resolve_genes(ds: SignatureDataset, up: Iterable[str], down: Iterable[str] = ()) -> GeneQuery:
    """Resolve user gene names (symbol or Ensembl id, any case) against ``ds``'s genes.

    Raises:
        ValidationError: both lists empty; only unknown genes (the message lists them); a gene in both lists.
    """
    lookup = _gene_lookup(ds)
    res: dict[str, tuple[list[str], list[str]]] = {}
    for side, names in (("up", up), ("down", down)):
        hits, miss = [], []
        for nm in dict.fromkeys(str(x).strip() for x in names if str(x).strip()):
            hit = lookup.get(name_key(nm.split(".")[0] if nm.upper().startswith("ENS") else nm))
            (hits if hit else miss).append(hit or nm)
        res[side] = (list(dict.fromkeys(hits)), miss)
    if not any(res[s][0] or res[s][1] for s in res):
        raise ValidationError(
            "both gene lists are empty; give at least one gene (an up list, a down list or both)"
        )
    if not (res["up"][0] or res["down"][0]):
        unknown = [*res["up"][1], *res["down"][1]]
        shown = ", ".join(unknown[:20]) + (f" (and {len(unknown) - 20} more)" if len(unknown) > 20 else "")
        raise ValidationError(
            f"none of the {len(unknown)} genes is measured in dataset {ds.name!r}: {shown}; use HGNC symbols "
            "(e.g. DUSP6) or Ensembl ids (ENSG...)"
        )
    both = sorted(set(res["up"][0]) & set(res["down"][0]))
    if both:
        raise ValidationError(
            f"genes in both the up and the down list: {', '.join(both)}; keep each gene in one list"
        )
    return GeneQuery(tuple(res["up"][0]), tuple(res["down"][0]), tuple(res["up"][1]), tuple(res["down"][1]))


def enrichment_scores(
    positions: NDArray[np.floating], weights: NDArray[np.floating], n_genes: NDArray[np.integer]
) -> NDArray[np.float64]:
    """Weighted KS enrichment score per row (vectorised over rows).

    Args:
        positions: rows x query genes, 0-based position of each query gene in the row's ranked
            list (NaN = not in that list).
        weights: same shape, the hit weights ``|z|`` (ignored where ``positions`` is NaN).
        n_genes: per row, the length N of its ranked list.

    Returns:
        ES per row (0 where no query gene is in the list).
    """
    pos = np.asarray(positions, dtype=np.float64)
    w = np.where(np.isfinite(pos), np.abs(np.asarray(weights, dtype=np.float64)), 0.0)
    order = np.argsort(np.where(np.isfinite(pos), pos, np.inf), axis=1, kind="stable")
    pos = np.take_along_axis(pos, order, axis=1)
    w = np.take_along_axis(w, order, axis=1)
    valid = np.isfinite(pos)
    n_hit = valid.sum(axis=1)
    n_r = w.sum(axis=1)
    cum = np.cumsum(w, axis=1)
    j = np.arange(pos.shape[1])[None, :]
    n_miss = np.maximum(np.asarray(n_genes, dtype=np.float64) - n_hit, 1.0)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        wr = np.where(n_r[:, None] > 0, 1.0 / n_r[:, None], 0.0)
        if not np.all(n_r[n_hit > 0] > 0):  # all-zero weights: fall back to equal weights
            w = np.where(valid, 1.0, 0.0)
            cum = np.cumsum(w, axis=1)
            wr = np.where(n_hit[:, None] > 0, 1.0 / np.maximum(n_hit, 1)[:, None], 0.0)
        misses_before = np.where(valid, pos - j, 0.0) / n_miss
        after = np.where(valid, cum * wr - misses_before, 0.0)
        before = np.where(valid, (cum - w) * wr - misses_before, 0.0)
    hi = after.max(axis=1, initial=0.0)
    lo = before.min(axis=1, initial=0.0)
    return np.where(hi >= -lo, hi, lo)


def wtcs(es_up: NDArray[np.float64] | None, es_down: NDArray[np.float64] | None) -> NDArray[np.float64]:
    """CMap's weighted connectivity score from the up and down enrichment scores (either may be ``None``)."""
    if es_up is None and es_down is None:
        raise ValidationError("wtcs needs an up or a down enrichment score")
    if es_down is None:
        return np.asarray(es_up, dtype=np.float64)
    if es_up is None:
        return -np.asarray(es_down, dtype=np.float64)
    up, dn = np.asarray(es_up, dtype=np.float64), np.asarray(es_down, dtype=np.float64)
    return np.where(np.sign(up) != np.sign(dn), (up - dn) / 2.0, 0.0)


def _rank_matrix(ds: SignatureDataset) -> tuple[NDArray[np.integer], NDArray[np.integer]]:
    """(rows x genes 1-based ranks, 0 = not in the list; list length per row)."""

    def build() -> tuple[np.ndarray, np.ndarray]:
        a = ds.adata
        if "rank" in a.layers and "n_genes_tested" in a.obs:
            return np.asarray(a.layers["rank"]), a.obs["n_genes_tested"].to_numpy(dtype=np.int64)
        x = np.asarray(a.X, dtype=np.float64)
        order = np.argsort(np.where(np.isfinite(x), -x, np.inf), axis=1, kind="stable")
        ranks = np.empty(x.shape, dtype=np.int64)
        np.put_along_axis(ranks, order, np.arange(1, x.shape[1] + 1)[None, :].repeat(x.shape[0], 0), axis=1)
        ranks[~np.isfinite(x)] = 0
        return ranks, np.isfinite(x).sum(axis=1)

    return ds.memo.get("explore_rank_matrix", build)


@dataclass(frozen=True)
class ConnectivityResult:
    """Every (cell line, drug) signature scored against a query.

    Attributes:
        dataset: dataset name.
        cell_line: the line the query was restricted to (``None``: all lines).
        query: the resolved :class:`GeneQuery`.
        table: one row per signature, best (most positive) first: ``cell_line, drug, score``
            (WTCS), ``es_up, es_down, n_up, n_down`` (query genes in that signature's list),
            ``moa, targets`` (from the drug table, when given).
    """

    dataset: str
    cell_line: str | None
    query: GeneQuery
    table: pd.DataFrame = field(repr=False)

    def by_drug(self) -> pd.DataFrame:
        """Per drug over the lines scored: mean, min and max WTCS and the number of lines, best first."""
        g = self.table.groupby("drug", observed=True, sort=False)
        out = (
            g["score"]
            .agg(["mean", "min", "max", "count"])
            .rename(
                columns={"mean": "mean_score", "min": "min_score", "max": "max_score", "count": "n_lines"}
            )
        )
        meta = g[["moa", "targets"]].first()
        return out.join(meta).sort_values("mean_score", ascending=False).reset_index()

    def to_dict(self, limit: int | None = 50) -> dict[str, Any]:
        """The ``connectivity --json`` document (``limit`` best and worst rows each; ``None``: all)."""
        t = self.table
        rows = t if limit is None or len(t) <= 2 * limit else pd.concat([t.head(limit), t.tail(limit)])
        return {
            "dataset": self.dataset,
            "cell_line": self.cell_line,
            "score": "wtcs",
            "definition": CONNECTIVITY_REFERENCE,
            "units": "dimensionless, in [-1, 1]; signature values are rank scores (inverse-normal of the rank)",
            "up": list(self.query.up),
            "down": list(self.query.down),
            "unknown_genes": self.query.unknown,
            "n_signatures": len(t),
            "signatures": rows.to_dict(orient="records"),
            "by_drug": self.by_drug().head(limit or len(t)).to_dict(orient="records"),
        }


def connectivity(
    ds: SignatureDataset,
    up: Sequence[str] = (),
    down: Sequence[str] = (),
    *,
    cell_line: str | None = None,
    drugs: DrugTable | None = None,
) -> ConnectivityResult:
    """Rank every stored signature (in one cell line or all) by WTCS against up/down genes.

    Args:
        ds: the signature dataset.
        up: genes the user's signature raises (symbols or Ensembl ids, any case).
        down: genes it lowers.
        cell_line: restrict to one line (any spelling); ``None``: every line.
        drugs: drug table for MoA and targets (optional).

    Raises:
        ValidationError / UnknownNameError: see :func:`resolve_genes`; an unknown cell line.
    """
    query = resolve_genes(ds, up, down)
    obs = ds.adata.obs
    rows = np.arange(ds.adata.n_obs)
    line = None
    if cell_line is not None:
        line = ds.resolve_cell_line(cell_line)
        rows = np.flatnonzero(obs["cell_line"].astype(str).to_numpy() == line)
    ranks, n_genes = _rank_matrix(ds)
    x = ds.adata.X
    es: dict[str, np.ndarray | None] = {"up": None, "down": None}
    counts: dict[str, np.ndarray] = {}
    for side, genes in (("up", query.up), ("down", query.down)):
        counts[side] = np.zeros(len(rows), dtype=np.int64)
        if not genes:
            continue
        cols = ds.genes.get_indexer(list(genes))
        out = np.empty(len(rows))
        for start in range(0, len(rows), _CHUNK):
            r = rows[start : start + _CHUNK]
            rk = np.asarray(ranks[np.ix_(r, cols)], dtype=np.float64)
            pos = np.where(rk > 0, rk - 1.0, np.nan)
            z = np.asarray(x[np.ix_(r, cols)], dtype=np.float64)
            pos[~np.isfinite(z)] = np.nan
            out[start : start + len(r)] = enrichment_scores(pos, np.nan_to_num(z), n_genes[r])
            counts[side][start : start + len(r)] = np.isfinite(pos).sum(axis=1)
        es[side] = out
    score = wtcs(es["up"], es["down"])
    table = pd.DataFrame(
        {
            "cell_line": obs["cell_line"].astype(str).to_numpy()[rows],
            "drug": obs["drug"].astype(str).to_numpy()[rows],
            "score": score,
            "es_up": es["up"] if es["up"] is not None else np.nan,
            "es_down": es["down"] if es["down"] is not None else np.nan,
            "n_up": counts["up"],
            "n_down": counts["down"],
        }
    )
    moa = targets = None
    if drugs is not None and "drug_id" in obs:
        ids = obs["drug_id"].astype(str).to_numpy()[rows]
        pos = drugs.rows(list(ids))
        t = drugs.table
        moa = [str(t["moa_fine"].iat[i]) if i >= 0 and t["moa_fine"].iat[i] else "" for i in pos]
        targets = [", ".join(t["targets"].iat[i]) if i >= 0 else "" for i in pos]
    table["moa"] = moa if moa is not None else ""
    table["targets"] = targets if targets is not None else ""
    table = table.sort_values(["score", "drug"], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )
    return ConnectivityResult(ds.name, line, query, table)
