"""Loaded datasets: signature datasets (AnnData of deltas), label sets, the drug table.

Every name lookup (dataset, cell line, drug, gene, perturbation) is case-, space- and
punctuation-insensitive; an unknown name raises :class:`UnknownNameError` listing the
closest known names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal, get_args

import anndata as ad
import numpy as np
import pandas as pd

from perturb_core.config import Settings, get_settings
from perturb_core.data.artifacts import (
    REBUILD,
    REIMPORT,
    check_drug_fingerprints,
    check_signatures,
    check_table,
)
from perturb_core.data.build import PERTURBQA_LINES, SIGNATURE_DATASETS
from perturb_core.data.names import DrugNameIndex, slug
from perturb_core.errors import (
    DataError,
    NotBuiltError,
    check_choice,
    name_key,
    unknown_name,
)
from perturb_core.memo import Memo
from perturb_core.spec import registry

__all__ = [
    "TASKS",
    "TASK_SPECS",
    "DatasetInfo",
    "DrugTable",
    "LabelSet",
    "SignatureDataset",
    "Task",
    "TaskSpec",
    "label_dataset_names",
    "list_datasets",
    "load_drugs",
    "load_labels",
    "load_signatures",
    "resolve_dataset",
]

Task = Literal["de", "dir"]
TASKS: tuple[Task, ...] = get_args(Task)
"""Label tasks: ``de`` (does the gene respond) and ``dir`` (up or down, among responding genes)."""


@dataclass(frozen=True)
class TaskSpec:
    """How one label task reads.

    Attributes:
        name: the task (a member of :data:`TASKS`).
        title: short name (``"DE"``).
        question: what a label answers about gene g.
        outcome: what g did under a perturbation with a positive and with a negative label.
        truth: how a label of 0 and of 1 reads.
    """

    name: Task
    title: str
    question: str
    outcome: tuple[str, str]
    truth: tuple[str, str]

    @property
    def label(self) -> str:
        """``"DE: does g respond at all?"``."""
        return f"{self.title}: {self.question}"


TASK_SPECS: Mapping[str, TaskSpec] = registry(
    TaskSpec("de", "DE", "does g respond at all?", ("responded", "no response"), ("not DE", "DE")),
    TaskSpec("dir", "Direction", "does g go up (among responders)?", ("up", "down"), ("down", "up")),
)
"""Task -> :class:`TaskSpec` (read-only), in the order of :data:`TASKS`."""
Kind = Literal["signatures", "labels"]


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset name with its kind, description and file."""

    name: str
    kind: Kind
    description: str
    path: Path
    user: bool = False


def _resolver(kind: str, names: list[str]) -> dict[str, str]:
    return {name_key(n): n for n in names}


@dataclass(frozen=True)
class SignatureDataset:
    """A validated signature dataset: ``adata.X`` holds deltas (NaN = gene not measured).

    ``obs`` has ``cell_line``, ``cell_line_id``, ``drug``, ``drug_id``; one row per pair.
    Treat ``adata`` as read-only (it is shared between callers). ``memo`` holds state derived
    from the dataset by method code (e.g. the LGR index), so it lives as long as the dataset.
    """

    name: str
    adata: ad.AnnData
    memo: Memo = field(default_factory=Memo, init=False, repr=False, compare=False)
    _rows: dict[tuple[str, str], int] = field(default_factory=dict, repr=False, compare=False)
    _cell_keys: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _drug_index: dict[str, DrugNameIndex] = field(default_factory=dict, repr=False, compare=False)
    _gene_keys: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        obs = self.adata.obs
        cells = obs["cell_line"].astype(str).to_numpy()
        drugs = obs["drug"].astype(str).to_numpy()
        self._rows.update({(c, d): i for i, (c, d) in enumerate(zip(cells, drugs, strict=True))})
        self._cell_keys.update(_resolver("cell line", list(pd.unique(cells))))
        self._drug_index["all"] = DrugNameIndex(list(pd.unique(drugs)))
        self._gene_keys.update(_resolver("gene", list(self.adata.var_names)))

    @property
    def units(self) -> str:
        """What a delta is measured in (``uns["units"]``; the built-in datasets hold inverse-normal rank scores)."""
        return str(self.adata.uns.get("units", "inverse-normal rank score"))

    @property
    def cell_lines(self) -> list[str]:
        """Cell line display names, sorted case-insensitively."""
        return sorted(set(self.adata.obs["cell_line"].astype(str)), key=str.lower)

    @property
    def genes(self) -> pd.Index:
        """Gene symbols (columns of X)."""
        return self.adata.var_names

    def drugs(self, cell_line: str | None = None) -> list[str]:
        """Drugs measured in ``cell_line`` (all drugs when ``None``), sorted."""
        obs = self.adata.obs
        if cell_line is not None:
            obs = obs[obs["cell_line"] == self.resolve_cell_line(cell_line)]
        return sorted(set(obs["drug"].astype(str)), key=str.lower)

    def resolve_cell_line(self, name: str) -> str:
        """Display name of a cell line given any spelling (``'nci h23'`` -> ``'NCI-H23'``)."""
        hit = self._cell_keys.get(name_key(name))
        if hit is None:
            raise unknown_name(f"cell line in dataset {self.name!r}", name, self.cell_lines)
        return hit

    def resolve_drug(self, name: str) -> str:
        """Display name of a drug given any spelling (salt words and aliases ignored)."""
        return self._drug_index["all"].resolve(name, kind=f"drug in dataset {self.name!r}")

    def resolve_gene(self, name: str) -> str:
        """Gene symbol given any case."""
        hit = self._gene_keys.get(name_key(name))
        if hit is None:
            raise unknown_name(f"gene in dataset {self.name!r}", name, list(self.genes))
        return hit

    def row(self, cell_line: str, drug: str) -> int:
        """Row index of the (cell line, drug) signature.

        Raises:
            UnknownNameError: either name is unknown, or the drug was not profiled there.
        """
        c, d = self.resolve_cell_line(cell_line), self.resolve_drug(drug)
        if (c, d) not in self._rows:
            raise unknown_name(f"drug profiled in {c}", drug, self.drugs(c))
        return self._rows[(c, d)]

    def delta(self, cell_line: str, drug: str) -> np.ndarray:
        """The delta vector (float32, NaN = not measured) of one pair."""
        return np.asarray(self.adata.X[self.row(cell_line, drug)])


@dataclass(frozen=True)
class LabelSet:
    """Gene-level outcome labels of one dataset and task.

    ``table`` has ``pert``, ``gene``, ``label`` (0/1), ``split`` (train/test), categoricals.
    ``memo`` holds state derived from the labels by method code (e.g. CORE indexes).
    """

    name: str
    task: Task
    table: pd.DataFrame
    cell_line: str
    perturbation_kind: Literal["knockdown", "drug"]
    memo: Memo = field(default_factory=Memo, init=False, repr=False, compare=False)

    @property
    def perturbations(self) -> list[str]:
        """All perturbations (train and test)."""
        return sorted(self.table["pert"].cat.categories, key=str.lower)

    @property
    def genes(self) -> list[str]:
        """All genes with a label."""
        return sorted(self.table["gene"].cat.categories, key=str.lower)

    @cached_property
    def _drug_index(self) -> DrugNameIndex:
        return DrugNameIndex(self.perturbations)

    @cached_property
    def _pert_keys(self) -> dict[str, str]:
        return {name_key(v): v for v in self.table["pert"].cat.categories}

    @cached_property
    def _gene_keys(self) -> dict[str, str]:
        return {name_key(v): v for v in self.table["gene"].cat.categories}

    def resolve_perturbation(self, name: str) -> str:
        """Perturbation name given any spelling."""
        kind = f"perturbation in {self.name!r}"
        if self.perturbation_kind == "drug":
            return self._drug_index.resolve(name, kind=kind)
        hit = self._pert_keys.get(name_key(name))
        if hit is None:
            raise unknown_name(kind, name, self.perturbations)
        return hit

    def pair_codes(self, perts: Sequence[str], genes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Category codes of (perturbation, gene) names given in any spelling.

        Exact names are looked up in one vectorised pass; only the others go through
        :meth:`resolve_perturbation` / :meth:`resolve_gene` (which raise for unknown names).
        """
        out = []
        for col, names, resolve in (
            ("pert", perts, self.resolve_perturbation),
            ("gene", genes, self.resolve_gene),
        ):
            cats = pd.Index(self.table[col].cat.categories)
            names = pd.Index([str(n) for n in names])
            codes = cats.get_indexer(names)
            for bad in pd.unique(names[codes < 0]):
                codes[names == bad] = cats.get_loc(resolve(bad))
            out.append(codes.astype(np.intp))
        return out[0], out[1]

    def resolve_gene(self, name: str) -> str:
        """Gene name given any case."""
        hit = self._gene_keys.get(name_key(name))
        if hit is None:
            raise unknown_name(f"gene in {self.name!r}", name, self.genes)
        return hit


@dataclass(frozen=True)
class DrugTable:
    """Every drug of every dataset: ``table`` indexed by ``drug_id`` (name, smiles, targets,
    moa_fine, moa_broad, source, ...) and Morgan fingerprints (radius 2, 2048 bits)."""

    table: pd.DataFrame
    fingerprints: np.ndarray  # bool (n_drugs, 2048), rows aligned with table
    valid: np.ndarray  # bool (n_drugs,), False where no structure is known

    @cached_property
    def _name_index(self) -> DrugNameIndex:
        return DrugNameIndex(list(self.table["name"]))

    def resolve(self, name: str) -> str:
        """Drug id for any spelling of a drug name or id."""
        if name in self.table.index:
            return name
        display = self._name_index.resolve(name, kind="drug")
        return str(self.table.index[self.table["name"] == display][0])

    def rows(self, drug_ids: list[str]) -> np.ndarray:
        """Row positions of drug ids (-1 for unknown)."""
        return self.table.index.get_indexer(drug_ids)


def _settings(settings: Settings | None) -> Settings:
    return settings or get_settings()


def _user_dir(settings: Settings) -> Path:
    return settings.data_dir / "user"


def _user_registry(settings: Settings) -> dict[str, dict]:
    """Imported datasets: name -> {file, description} (``<data dir>/user/datasets.json``)."""
    path = _user_dir(settings) / "datasets.json"
    fix = "delete it and re-import your datasets with `python -m perturb_core data import`"
    try:
        reg = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (ValueError, OSError) as exc:
        raise DataError(f"{path} is corrupt ({exc}); {fix}") from exc
    if not isinstance(reg, dict) or not all(
        isinstance(m, dict) and isinstance(m.get("file"), str) for m in reg.values()
    ):
        raise DataError(
            f"{path} is not a registry of imported datasets (name -> {{file, description}}); {fix}"
        )
    return reg


def _user_file(settings: Settings, name: str, meta: dict) -> Path:
    """The file of an imported dataset, confined to ``<data dir>/user/`` (no absolute paths, no ``..``)."""
    folder = _user_dir(settings).resolve()
    path = (folder / meta["file"]).resolve()
    if path.parent != folder or not path.name.endswith(".h5ad"):
        raise DataError(
            f"imported dataset {name!r} points at {meta['file']!r}, outside the user data folder; "
            "remove it from user/datasets.json and re-import it with `python -m perturb_core data import`"
        )
    return path


def label_dataset_names(settings: Settings | None = None) -> list[str]:
    """``perturbqa-<line>`` and ``tahoe-<cell line id>`` label dataset names."""
    settings = _settings(settings)
    names = [f"perturbqa-{line}" for line in PERTURBQA_LINES]
    tl = settings.processed_dir / "labels" / "tahoe.parquet"
    if tl.exists():
        lines = _tahoe_lines(tl, tl.stat().st_mtime)
        names += [f"tahoe-{slug(c)}" for c in sorted(lines, key=str.lower)]
    return names


def list_datasets(settings: Settings | None = None) -> list[DatasetInfo]:
    """All datasets: built-in signature and label datasets plus user imports."""
    settings = _settings(settings)
    p = settings.processed_dir
    out = [
        DatasetInfo(name, "signatures", spec.description, p / f"{name}.h5ad")
        for name, spec in SIGNATURE_DATASETS.items()
    ]
    for name in label_dataset_names(settings):
        if name.startswith("perturbqa-"):
            line = name.removeprefix("perturbqa-")
            desc = f"PerturbQA CRISPRi knock-down labels, {line.upper()} (DE, direction; given split)"
            path = p / "labels" / f"{name}.de.parquet"
        else:
            desc = "Tahoe drug DE labels derived from ranked signatures (seeded drug split)"
            path = p / "labels" / "tahoe.parquet"
        out.append(DatasetInfo(name, "labels", desc, path))
    for name, meta in _user_registry(settings).items():
        path = _user_file(settings, name, meta)
        out.append(DatasetInfo(name, "signatures", str(meta.get("description", "user dataset")), path, True))
    return out


def resolve_dataset(name: str, kind: Kind | None = None, settings: Settings | None = None) -> DatasetInfo:
    """Find a dataset by any spelling of its name.

    Raises:
        UnknownNameError: unknown name (with the closest names of that kind).
    """
    infos = [d for d in list_datasets(settings) if kind is None or d.kind == kind]
    for d in infos:
        if name_key(d.name) == name_key(name):
            return d
    what = f"{kind} dataset" if kind else "dataset"
    raise unknown_name(what, name, [d.name for d in infos])


_TAHOE_LABELS = {
    "cell_line": "category",
    "pert": "category",
    "gene": "category",
    "de": "int",
    "direction": "int",
    "split": "category",
}
_PERTURBQA_LABELS = {"pert": "category", "gene": "category", "label": "int", "split": "category"}
_SPLITS = frozenset({"train", "test"})
_DRUG_TABLE = {
    "name": "text",
    "smiles": "any",
    "targets": "list",
    "moa_fine": "any",
    "moa_broad": "any",
    "source": "text",
    "has_fingerprint": "bool",
}


@lru_cache(maxsize=4)
def _tahoe_lines(path: Path, mtime: float) -> list[str]:
    table = check_table(_read_parquet(path, mtime), path, _TAHOE_LABELS, values={"split": _SPLITS})
    return list(table["cell_line"].cat.categories)


@lru_cache(maxsize=8)
def _read_h5ad(path: Path, mtime: float) -> ad.AnnData:
    del mtime
    try:
        return ad.read_h5ad(path)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise DataError(f"{path} is unreadable ({exc}); {REBUILD}") from exc


def load_signatures(name: str = "tahoe", settings: Settings | None = None) -> SignatureDataset:
    """Load a signature dataset (``tahoe``, ``sciplex``, ``openproblems`` or an import).

    Cached per process; reloaded when the file changes.

    Raises:
        NotBuiltError: not built yet (the message gives the command).
        UnknownNameError: unknown dataset name.
    """
    info = resolve_dataset(name, "signatures", settings)
    if not info.path.exists():
        raise NotBuiltError(
            f"dataset {info.name!r} is not built ({info.path} missing); run `python -m perturb_core data fetch` "
            "then `python -m perturb_core data build`"
        )
    return _signature_dataset(info.name, info.path, info.path.stat().st_mtime, info.user)


@lru_cache(maxsize=8)
def _signature_dataset(name: str, path: Path, mtime: float, user: bool = False) -> SignatureDataset:
    fix = REIMPORT if user else REBUILD
    adata = check_signatures(_read_h5ad(path, mtime), path, dataset=None if user else name, fix=fix)
    return SignatureDataset(name, adata)


@lru_cache(maxsize=16)
def _read_parquet(path: Path, mtime: float) -> pd.DataFrame:
    del mtime
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise DataError(f"{path} is unreadable ({exc}); {REBUILD}") from exc


def load_labels(name: str, task: Task = "de", settings: Settings | None = None) -> LabelSet:
    """Load a label dataset (``perturbqa-k562`` ... or ``tahoe-c32`` ...) for a task.

    Raises:
        ValidationError: task is not ``de`` or ``dir``.
        NotBuiltError / UnknownNameError: as for :func:`load_signatures`.
    """
    task = check_choice("task", task, TASKS)
    settings = _settings(settings)
    info = resolve_dataset(name, "labels", settings)
    if not info.path.exists():
        raise NotBuiltError(f"labels {info.name!r} are not built; run `python -m perturb_core data build`")
    if info.name.startswith("perturbqa-"):
        path = settings.processed_dir / "labels" / f"{info.name}.{task}.parquet"
    else:
        path = info.path
    return _label_set(info.name, task, path, path.stat().st_mtime)


@lru_cache(maxsize=16)
def _label_set(name: str, task: Task, path: Path, mtime: float) -> LabelSet:
    """The label set of one file and task (one object per file version, so derived state is reused)."""
    if name.startswith("perturbqa-"):
        table = check_table(_read_parquet(path, mtime), path, _PERTURBQA_LABELS, values={"split": _SPLITS})
        return LabelSet(name, task, table, name.removeprefix("perturbqa-").upper(), "knockdown")
    _tahoe_lines(path, mtime)  # validates the table
    return _tahoe_labels(name, task, _read_parquet(path, mtime))


def _tahoe_labels(name: str, task: Task, full: pd.DataFrame) -> LabelSet:
    line_id = name.removeprefix("tahoe-")
    cats = full["cell_line"].cat.categories
    line = next(c for c in cats if slug(c) == line_id)
    sub = full[full["cell_line"] == line]
    if task == "de":
        t = pd.DataFrame(
            {"pert": sub["pert"], "gene": sub["gene"], "label": sub["de"], "split": sub["split"]}
        )
    else:
        sub = sub[sub["de"] == 1]
        t = pd.DataFrame(
            {"pert": sub["pert"], "gene": sub["gene"], "label": sub["direction"], "split": sub["split"]}
        )
    t = t.reset_index(drop=True)
    for c in ("pert", "gene", "split"):
        t[c] = t[c].cat.remove_unused_categories()
    return LabelSet(name, task, t, line, "drug")


def load_drugs(settings: Settings | None = None) -> DrugTable:
    """Load the drug table with fingerprints.

    Raises:
        NotBuiltError: not built yet.
    """
    settings = _settings(settings)
    path = settings.processed_dir / "drugs.parquet"
    fp = settings.processed_dir / "drug_fingerprints.npz"
    if not (path.exists() and fp.exists()):
        raise NotBuiltError("the drug table is not built; run `python -m perturb_core data build`")
    return _drug_table(path, fp, path.stat().st_mtime)


@lru_cache(maxsize=2)
def _drug_table(path: Path, fp: Path, mtime: float) -> DrugTable:
    table = check_table(_read_parquet(path, mtime), path, _DRUG_TABLE).copy()
    table["targets"] = table["targets"].map(lambda t: [] if t is None else list(t))
    try:
        with np.load(fp, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{fp} is unreadable ({exc}); {REBUILD}") from exc
    ids, packed, valid = check_drug_fingerprints(arrays, fp, len(table))
    bits = np.unpackbits(packed, axis=1).astype(bool)[:, :2048]
    if list(ids) != list(table.index):
        raise DataError(
            f"{fp} does not match {path}; rebuild with `python -m perturb_core data build --force`"
        )
    return DrugTable(table, bits, valid)
