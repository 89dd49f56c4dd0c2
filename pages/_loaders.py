"""Cached loaders: datasets, label sets, the drug table and the knowledge graph once per server
process (``st.cache_resource``, read-only and shared), and the derived tables the pages show
(``st.cache_data``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from perturb_core.config import get_settings
from perturb_core.errors import PerturbCoreError

# --------------------------------------------------------------------------- shared resources


@st.cache_resource(show_spinner="Loading signatures (once per server process)…")
def signatures(name: str):  # -> SignatureDataset
    """A signature dataset, loaded once per server process."""
    from perturb_core.data.registry import load_signatures

    return load_signatures(name, get_settings())


@st.cache_resource(show_spinner="Loading labels…")
def labels(name: str, task: str = "de"):  # -> LabelSet
    """A label set, loaded once per server process."""
    from perturb_core.data.registry import load_labels

    return load_labels(name, task, get_settings())  # type: ignore[arg-type]


@st.cache_resource(show_spinner="Loading the drug table…")
def drugs():  # -> DrugTable
    """The drug table with fingerprints."""
    from perturb_core.data.registry import load_drugs

    return load_drugs(get_settings())


@st.cache_resource(show_spinner="Loading the knowledge graph (once per server process)…")
def graph():  # -> KnowledgeGraph
    """The knowledge graph."""
    from perturb_core.kg import load_graph

    return load_graph(get_settings())


def dataset_names() -> tuple[list[str], list[str]]:
    """(signature datasets, label datasets), listed once per 30 s for every session (a listing reads
    the import registry and the label files: ~1 s, too slow for every rerun of every session)."""
    return _dataset_names(str(get_settings().data_dir))


@st.cache_data(ttl=30, show_spinner=False)
def _dataset_names(data_dir: str) -> tuple[list[str], list[str]]:
    from perturb_core.data.registry import label_dataset_names, list_datasets

    settings = get_settings()
    try:
        sig = [d.name for d in list_datasets(settings) if d.kind == "signatures"]
    except PerturbCoreError:
        sig = []
    try:
        lab = label_dataset_names(settings)
    except PerturbCoreError:
        lab = []
    return sig, lab


@st.cache_data(show_spinner=False)
def cell_line_names() -> dict[str, str]:
    """Label-dataset id of a Tahoe cell line -> its name as the signatures spell it (``c32`` -> ``C32``)."""
    from perturb_core.data.names import slug

    try:
        return {slug(c): c for c in signatures("tahoe").cell_lines}
    except PerturbCoreError:
        return {}


def datasets_changed() -> None:
    """Forget the dataset listings (after an import in this server: the new name shows at once)."""
    _dataset_names.clear()
    data_info.clear()


def clear_caches() -> None:
    """Forget every cached dataset, graph and derived table (after a rebuild)."""
    st.cache_resource.clear()
    st.cache_data.clear()


def data_built() -> bool:
    """Whether every processed artifact exists and is up to date (checked at most every 15 s per data folder)."""
    return _data_built(str(get_settings().data_dir))


@st.cache_data(ttl=15, show_spinner=False)
def _data_built(data_dir: str) -> bool:
    from perturb_core.data.build import is_built

    try:
        return is_built(get_settings())
    except PerturbCoreError:
        return False


# --------------------------------------------------------------------------- derived tables


@st.cache_data(show_spinner="Counting datasets…")
def data_info() -> dict:
    """``perturb_core.data.info.data_info()`` (counts of every dataset, drugs, graph)."""
    from perturb_core.data.info import data_info as _info

    return _info(get_settings())


@st.cache_data(max_entries=512, show_spinner=False)
def structure_svg(smiles: str, legend: str = "", width: int = 260, height: int = 200) -> str | None:
    """One molecule drawn as SVG (``None`` if the SMILES does not parse)."""
    from perturb_core.chem import depict_svg

    return depict_svg(smiles, size=(width, height), legend=legend)


@st.cache_data(max_entries=128, show_spinner=False)
def structures_svg(smiles: tuple[str, ...], legends: tuple[str, ...]) -> str:
    """Grid drawing of a query and its neighbours."""
    from perturb_core.chem import depict_grid_svg

    return depict_grid_svg(list(smiles), list(legends), mols_per_row=6, sub_img_size=(200, 170))


def drug_smiles(name: str) -> str | None:
    """SMILES of a drug from the drug table (``None`` when unknown)."""
    table = drugs()
    try:
        smi = table.table.at[table.resolve(name), "smiles"]
    except (KeyError, PerturbCoreError):
        return None
    return smi if isinstance(smi, str) and smi else None


@st.cache_data(show_spinner=False)
def gene_options(dataset: str, task: str, perturbation: str) -> pd.DataFrame:
    """Genes with a label under this perturbation: test pairs first, positives first."""
    t = labels(dataset, task).table
    sub = t[t["pert"] == perturbation][["gene", "label", "split"]].astype({"gene": str, "split": str})
    return sub.sort_values(["split", "label", "gene"], ascending=[True, False, True]).reset_index(drop=True)


@st.cache_data(max_entries=256, show_spinner=False)
def gene_labels(dataset: str, task: str, perturbation: str, words: tuple[str, str]) -> dict[str, str]:
    """Gene -> its label in the gene picker: ``LIMD2  (responded, test)``."""
    opts = gene_options(dataset, task, perturbation)
    return {
        g: f"{g}  ({words[0] if y else words[1]}, {sp})"
        for g, y, sp in zip(opts["gene"], opts["label"], opts["split"], strict=True)
    }


@st.cache_data(show_spinner=False)
def signature_summary(name: str) -> pd.DataFrame:
    """Per cell line: drugs profiled and median measured genes."""
    ds = signatures(name)
    obs = ds.adata.obs
    measured = np.isfinite(np.asarray(ds.adata.X)).sum(axis=1)
    df = pd.DataFrame({"cell line": obs["cell_line"].astype(str).to_numpy(), "measured": measured})
    out = df.groupby("cell line").agg(
        drugs=("measured", "size"), median_measured_genes=("measured", "median")
    )
    return out.reset_index().sort_values("cell line", key=lambda s: s.str.lower())


@st.cache_data(show_spinner=False)
def label_summary(name: str) -> pd.DataFrame:
    """Pairs, perturbations, genes and positive rate per task (of the core's TASKS) and split."""
    from perturb_core.data.registry import TASKS

    rows = []
    for task in TASKS:
        t = labels(name, task).table
        for split, part in t.groupby("split", observed=True):
            rows.append(
                {
                    "task": task,
                    "split": split,
                    "pairs": len(part),
                    "perturbations": part["pert"].nunique(),
                    "genes": part["gene"].nunique(),
                    "positive rate": float(part["label"].mean()),
                }
            )
    return pd.DataFrame(rows)


@st.cache_data(show_spinner=False)
def drug_table(dataset: str) -> pd.DataFrame:
    """The drug table restricted to one signature dataset, for display."""
    t = drugs().table
    known = set(signatures(dataset).drugs())
    t = t[t["name"].isin(known)] if known else t
    return pd.DataFrame(
        {
            "drug": t["name"],
            "targets": t["targets"].map(", ".join),
            "mechanism": t["moa_fine"],
            "class": t["moa_broad"],
            "structure": t["has_fingerprint"],
            "source": t["source"],
            "DrugBank": t["hetionet_id"],
            "smiles": t["smiles"],
        }
    ).sort_values("drug", key=lambda s: s.str.lower())


#: Where a drug's targets and mechanism come from, as the drug table's ``source`` says.
ANNOTATION_SOURCES = {
    "tahoe_metadata": "Tahoe-100M drug metadata table",
    "lincs": "LINCS compound annotations",
    "unmatched": "none matched (no targets or mechanism)",
}


@st.cache_data(max_entries=256, show_spinner=False)
def drug_annotations(names: tuple[str, ...]) -> pd.DataFrame:
    """Targets, mechanism and the source table of each drug's annotation (drugs not in the table: unknown)."""
    table = drugs()
    rows = []
    for name in names:
        try:
            r = table.table.loc[table.resolve(name)]
        except (KeyError, PerturbCoreError):
            rows.append(
                {"drug": name, "targets": "", "mechanism": "", "annotation from": "not in the drug table"}
            )
            continue
        rows.append(
            {
                "drug": name,
                "targets": ", ".join(r["targets"]),
                "mechanism": r["moa_fine"] or "",
                "annotation from": ANNOTATION_SOURCES.get(str(r["source"]), str(r["source"])),
            }
        )
    return pd.DataFrame(rows)
