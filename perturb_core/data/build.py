"""Build processed artifacts from the verified raw files (idempotent, atomic, with progress).

Each artifact records a stamp: the sha256 of its raw inputs, its parameters and the build
version. A rebuild is skipped when every artifact exists with a matching stamp. Files are
written under a temporary name and moved into place, so an interrupted build leaves either
the old artifact or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from perturb_core.config import Settings, get_settings
from perturb_core.data.drugs import build_drug_table, load_lincs
from perturb_core.data.fetch import fetch
from perturb_core.data.graph import build_graph_tables
from perturb_core.data.labels import read_perturbqa, tahoe_drug_labels
from perturb_core.data.manifest import load_manifest
from perturb_core.data.names import OPENPROBLEMS_CELL_TYPES, name_key
from perturb_core.data.rda import PROJECT_FIX, fit_fix
from perturb_core.data.signatures import signatures_to_anndata
from perturb_core.errors import DataError, NotBuiltError

__all__ = [
    "ARTIFACTS",
    "PERTURBQA_LINES",
    "SIGNATURE_DATASETS",
    "BuildStep",
    "build",
    "ensure_data",
    "is_built",
]

BUILD_VERSION = "3"  # 3: salt words in parentheses are no longer drug-name aliases
PERTURBQA_LINES = ("k562", "rpe1", "hepg2", "jurkat")


@dataclass(frozen=True)
class SignatureSpec:
    """How a signature dataset is made from a raw folder."""

    folder: str
    prefix: str
    min_fraction: float
    description: str


SIGNATURE_DATASETS: dict[str, SignatureSpec] = {
    "tahoe": SignatureSpec(
        "tahoe_signatures", "tahoe.", 0.25, "Tahoe-100M, 40 cancer cell lines x ~108 drugs (DESeq2 vs DMSO)"
    ),
    "sciplex": SignatureSpec("sciplex_signatures", "sciplex.", 0.0, "sci-Plex 3: A549, K562, MCF7"),
    "openproblems": SignatureSpec(
        "openproblems_signatures", "neurips2023.", 0.0, "Open Problems NeurIPS 2023 PBMC: B, NK, T, myeloid"
    ),
}

#: artifact name -> file names in the processed folder
ARTIFACTS: dict[str, tuple[str, ...]] = {
    **{ds: (f"{ds}.h5ad",) for ds in SIGNATURE_DATASETS},
    "drugs": ("drugs.parquet", "drug_fingerprints.npz"),
    "perturbqa": tuple(
        f"labels/perturbqa-{line}.{task}.parquet" for line in PERTURBQA_LINES for task in ("de", "dir")
    ),
    "tahoe_labels": ("labels/tahoe.parquet",),
    "graph": ("kg_nodes.parquet", "kg_edges.parquet"),
}

_INPUT_GROUPS: dict[str, tuple[str, ...]] = {
    "tahoe": ("tahoe_signatures/", "tahoe_metadata/gene_metadata", "tahoe_metadata/cell_line_metadata"),
    "sciplex": ("sciplex_signatures/", "tahoe_metadata/gene_metadata"),
    "openproblems": ("openproblems_signatures/", "tahoe_metadata/gene_metadata"),
    "drugs": (
        "tahoe_signatures/",
        "sciplex_signatures/",
        "openproblems_signatures/",
        "tahoe_metadata/drug_metadata",
        "kg/lincs",
        "kg/hetionet-v1.0-nodes",
    ),
    "perturbqa": ("perturbqa/",),
    "tahoe_labels": (
        "tahoe_signatures/",
        "tahoe_metadata/gene_metadata",
        "tahoe_metadata/cell_line_metadata",
    ),
    "graph": (
        "kg/",
        "tahoe_signatures/",
        "sciplex_signatures/",
        "openproblems_signatures/",
        "tahoe_metadata/drug_metadata",
        "perturbqa/",
    ),
}


@dataclass(frozen=True)
class BuildStep:
    """One artifact's outcome."""

    artifact: str
    status: str  # "built" | "up to date"
    seconds: float


def _stamp(artifact: str, settings: Settings) -> str:
    h = hashlib.sha256(f"{BUILD_VERSION}|{artifact}".encode())
    for e in load_manifest():
        if any(e.file.startswith(p) for p in _INPUT_GROUPS[artifact]):
            if "corum" in e.file and not settings.enable_corum:
                continue
            h.update(f"{e.file}:{e.sha256}".encode())
    if artifact == "graph":
        h.update(f"corum={settings.enable_corum}".encode())
    return h.hexdigest()[:16]


def _stamps_path(settings: Settings) -> Path:
    return settings.processed_dir / "build.json"


def _read_stamps(settings: Settings) -> dict[str, str]:
    try:
        return json.loads(_stamps_path(settings).read_text())
    except (OSError, ValueError):
        return {}


def _write_json_atomic(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        json.dump(obj, fh, indent=1)
    os.replace(tmp, path)


def _atomic_path(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    return final.with_name(f".{final.name}.{os.getpid()}.tmp")


def is_built(settings: Settings | None = None) -> bool:
    """Whether every artifact exists with an up-to-date stamp."""
    settings = settings or get_settings()
    stamps = _read_stamps(settings)
    return all(
        stamps.get(a) == _stamp(a, settings) and all((settings.processed_dir / f).exists() for f in files)
        for a, files in ARTIFACTS.items()
    )


def _require_raw(settings: Settings, rel: str) -> Path:
    p = settings.raw_dir / rel
    if not p.exists():
        raise NotBuiltError(
            f"raw file {rel} is missing from {settings.raw_dir}; run `python -m perturb_core data fetch`"
        )
    return p


def _signature_files(settings: Settings, spec: SignatureSpec) -> dict[str, Path]:
    folder = settings.raw_dir / spec.folder
    paths = sorted(folder.glob(f"{spec.prefix}*.rda"))
    if not paths:
        raise NotBuiltError(f"no signature files in {folder}; run `python -m perturb_core data fetch`")
    display: dict[str, str] = {}
    meta = settings.raw_dir / "tahoe_metadata" / "cell_line_metadata.parquet"
    if spec.folder == "tahoe_signatures" and meta.exists():
        names = pd.read_parquet(meta, columns=["cell_name"])["cell_name"].unique()
        display = {name_key(n): n for n in names}
    out: dict[str, Path] = {}
    for p in paths:
        stem = p.name[len(spec.prefix) : -len(".rda")]
        if spec.folder == "openproblems_signatures":
            name = OPENPROBLEMS_CELL_TYPES.get(stem, stem)
        elif spec.folder == "sciplex_signatures":
            name = stem.upper()
        else:
            name = display.get(name_key(stem), stem)
        out[name] = p
    return out


def _gene_symbols(settings: Settings) -> dict[str, str]:
    gm = pd.read_parquet(_require_raw(settings, "tahoe_metadata/gene_metadata.parquet"))
    gm = gm.dropna(subset=["ensembl_id", "gene_symbol"])
    return dict(zip(gm["ensembl_id"], gm["gene_symbol"], strict=True))


Progress = Callable[[str, int, int, str], None]


def build(
    *,
    settings: Settings | None = None,
    force: bool = False,
    progress: Progress | None = None,
    workers: int | None = None,
) -> list[BuildStep]:
    """Build every artifact that is missing or out of date.

    Args:
        settings: paths; default from :func:`get_settings`.
        force: rebuild everything.
        progress: ``progress(artifact, done, total, message)``.
        workers: parallel readers of signature files (default: all cores).

    Raises:
        NotBuiltError: raw files are missing (run ``data fetch``).
        DataError: a raw file is malformed.
    """
    import anndata as ad

    from perturb_core.chem import canonical_smiles, morgan_fingerprints

    settings = settings or get_settings()
    out_dir = settings.processed_dir
    stamps = _read_stamps(settings)
    steps: list[BuildStep] = []
    cache: dict[str, ad.AnnData] = {}

    def todo(artifact: str) -> bool:
        fresh = stamps.get(artifact) == _stamp(artifact, settings) and all(
            (out_dir / f).exists() for f in ARTIFACTS[artifact]
        )
        return force or not fresh

    def done(artifact: str, t0: float, built: bool) -> None:
        if built:
            stamps[artifact] = _stamp(artifact, settings)
            _write_json_atomic(_stamps_path(settings), stamps)
        steps.append(BuildStep(artifact, "built" if built else "up to date", time.perf_counter() - t0))

    def report(artifact: str, i: int, n: int, msg: str) -> None:
        if progress is not None:
            progress(artifact, i, n, msg)

    def signatures(ds: str) -> ad.AnnData:
        if ds not in cache:
            path = out_dir / f"{ds}.h5ad"
            cache[ds] = ad.read_h5ad(path) if path.exists() and not todo(ds) else _build_signatures(ds)
        return cache[ds]

    def _build_signatures(ds: str) -> ad.AnnData:
        spec = SIGNATURE_DATASETS[ds]
        files = _signature_files(settings, spec)
        try:  # the project's own files: a verified copy fixes them, re-saving from R does not apply
            adata = signatures_to_anndata(
                files,
                dataset=ds,
                gene_symbols=_gene_symbols(settings),
                min_fraction=spec.min_fraction,
                workers=workers,
                progress=lambda i, n, name: report(ds, i, n, f"read {name}"),
                provenance={
                    "description": spec.description,
                    "sha256": {
                        Path(e.file).name: e.sha256 for e in load_manifest() if e.file.startswith(spec.folder)
                    },
                    "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                },
            )
        except DataError as exc:
            raise fit_fix(exc, PROJECT_FIX) from exc
        tmp = _atomic_path(out_dir / f"{ds}.h5ad")
        adata.write_h5ad(tmp)
        os.replace(tmp, out_dir / f"{ds}.h5ad")
        return adata

    for ds in SIGNATURE_DATASETS:
        t0 = time.perf_counter()
        built = todo(ds)
        if built:
            cache.pop(ds, None)
            signatures(ds)
            report(
                ds,
                len(_signature_files(settings, SIGNATURE_DATASETS[ds])),
                len(_signature_files(settings, SIGNATURE_DATASETS[ds])),
                "done",
            )
        done(ds, t0, built)

    # drug table + fingerprints
    t0 = time.perf_counter()
    if built := todo("drugs"):
        report("drugs", 0, 1, "matching drug names")
        by_ds = {ds: list(signatures(ds).obs["drug"].cat.categories) for ds in SIGNATURE_DATASETS}
        het = pd.read_csv(_require_raw(settings, "kg/hetionet-v1.0-nodes.tsv"), sep="\t", dtype=str)
        drugs = build_drug_table(
            by_ds,
            tahoe_metadata=pd.read_parquet(_require_raw(settings, "tahoe_metadata/drug_metadata.parquet")),
            lincs=load_lincs(_require_raw(settings, "kg/lincs_pert_info2.rda")),
            hetionet_compounds=het[het["kind"] == "Compound"],
        )
        drugs["smiles"] = [canonical_smiles(s) if isinstance(s, str) else None for s in drugs["smiles"]]
        fps, valid = morgan_fingerprints(list(drugs["smiles"]), radius=2, n_bits=2048)
        drugs["has_fingerprint"] = valid
        tmp = _atomic_path(out_dir / "drugs.parquet")
        drugs.to_parquet(tmp)
        os.replace(tmp, out_dir / "drugs.parquet")
        tmp = _atomic_path(out_dir / "drug_fingerprints.npz")
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh, drug_id=np.asarray(drugs.index, dtype=str), bits=np.packbits(fps, axis=1), valid=valid
            )
        os.replace(tmp, out_dir / "drug_fingerprints.npz")
        report("drugs", 1, 1, "done")
    done("drugs", t0, built)

    # labels
    t0 = time.perf_counter()
    if built := todo("perturbqa"):
        files = ARTIFACTS["perturbqa"]
        for i, rel in enumerate(files, 1):
            line, task = Path(rel).name.removeprefix("perturbqa-").split(".")[:2]
            df = read_perturbqa(_require_raw(settings, f"perturbqa/{line}-{task}.csv"))
            tmp = _atomic_path(out_dir / rel)
            df.to_parquet(tmp)
            os.replace(tmp, out_dir / rel)
            report("perturbqa", i, len(files), f"{line} {task}")
    done("perturbqa", t0, built)
    t0 = time.perf_counter()
    if built := todo("tahoe_labels"):
        report("tahoe_labels", 0, 1, "deriving drug DE labels")
        labels = tahoe_drug_labels(signatures("tahoe"))
        tmp = _atomic_path(out_dir / "labels/tahoe.parquet")
        labels.to_parquet(tmp)
        os.replace(tmp, out_dir / "labels/tahoe.parquet")
        report("tahoe_labels", 1, 1, "done")
    done("tahoe_labels", t0, built)

    # knowledge graph
    t0 = time.perf_counter()
    if built := todo("graph"):
        report("graph", 0, 1, "joining sources")
        drugs = pd.read_parquet(out_dir / "drugs.parquet")
        pq_genes: set[str] = set()
        for rel in ARTIFACTS["perturbqa"]:
            df = pd.read_parquet(out_dir / rel, columns=["pert", "gene"])
            pq_genes.update(df["pert"].cat.categories)
            pq_genes.update(df["gene"].cat.categories)
        nodes, edges, dropped = build_graph_tables(
            settings.raw_dir / "kg", drugs, extra_genes=sorted(pq_genes), enable_corum=settings.enable_corum
        )
        for df, name in ((nodes, "kg_nodes.parquet"), (edges, "kg_edges.parquet")):
            for c in df.columns:
                if c not in ("id", "src", "dst", "name"):
                    df[c] = df[c].astype("category")
            tmp = _atomic_path(out_dir / name)
            df.to_parquet(tmp)
            os.replace(tmp, out_dir / name)
        _write_json_atomic(out_dir / "kg_dropped.json", dropped)
        report("graph", 1, 1, "done")
    done("graph", t0, built)
    return steps


def ensure_data(
    *,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> list[BuildStep]:
    """Fetch (from the mirror or URLs) and build whatever is missing; a no-op when built."""
    settings = settings or get_settings()
    if is_built(settings):
        return []
    fetch(settings=settings, progress=lambda i, n, f: progress("fetch", i, n, f) if progress else None)
    return build(settings=settings, progress=progress)


def require_built(settings: Settings | None = None) -> Settings:
    """Raise :class:`NotBuiltError` with the fix when artifacts are missing."""
    settings = settings or get_settings()
    if not (settings.processed_dir / "build.json").exists():
        raise NotBuiltError(
            f"no processed data in {settings.processed_dir}; run `python -m perturb_core data fetch` "
            "then `python -m perturb_core data build` (or start the app, which builds it)"
        )
    return settings
