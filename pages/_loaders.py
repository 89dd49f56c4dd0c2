"""Cached loaders: datasets, label sets, the drug table and the knowledge graph once per server
process (``st.cache_resource``, read-only and shared), and the derived tables the pages show
(``st.cache_resource`` too when every rerun reads them, so a rerun does not unpickle a copy;
``st.cache_data`` for the rest).
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import streamlit as st

from perturb_core.config import Settings, get_settings, repo_root
from perturb_core.errors import PerturbCoreError

# --------------------------------------------------------------------------- settings


def _stamp(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        st_ = os.stat(path)
    except OSError:
        return None
    return st_.st_mtime_ns, st_.st_size


def settings_inputs() -> tuple:
    """Everything :func:`perturb_core.config.get_settings` reads: the ``PERTURB_CORE_*`` and ``OPENAI_*``
    environment, the working folder (relative paths) and the config file's and secrets files' stamps.

    Cheap (no file is read), so a rerun can tell whether the settings may have changed.
    """
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(("PERTURB_CORE", "OPENAI_"))))
    config = os.environ.get("PERTURB_CORE_CONFIG") or _default_config()
    return env, os.getcwd(), _stamp(config), tuple((p, _stamp(p)) for p in _secrets_files())


@functools.lru_cache(maxsize=1)
def _default_config() -> str:
    return str(repo_root() / "perturb_core.toml")


def _secrets_files() -> tuple[str, ...]:
    try:
        return tuple(str(p) for p in st.get_option("secrets.files") or [])
    except (RuntimeError, TypeError):  # an option Streamlit does not define
        return ()


def current_settings() -> Settings:
    """``get_settings()``, read again only when :func:`settings_inputs` change (not on every rerun:
    parsing the config file and resolving its paths took ~1 ms, several times per rerun)."""
    return _settings_for(settings_inputs())


@functools.lru_cache(maxsize=16)
def _settings_for(inputs: tuple) -> Settings:
    return get_settings()


def table_data(frame: pd.DataFrame) -> pa.Table | pd.DataFrame:
    """``frame`` as the Arrow table ``st.dataframe`` would make of it (pyarrow's own conversion).

    For tables built once per server: ``st.dataframe`` then sends it without converting the frame
    again on every rerun. A frame pyarrow cannot convert as it is comes back unchanged (Streamlit
    applies its own fixes to it).
    """
    try:
        return pa.Table.from_pandas(frame)
    except (pa.ArrowException, TypeError, ValueError):
        return frame


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
    return _dataset_names(str(current_settings().data_dir))


@st.cache_resource(ttl=30, show_spinner=False)
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


@st.cache_resource(show_spinner=False)
def cell_line_names() -> dict[str, str]:
    """Label-dataset id of a Tahoe cell line -> its name as the signatures spell it (``c32`` -> ``C32``)."""
    from perturb_core.data.names import slug

    try:
        return {slug(c): c for c in signatures("tahoe").cell_lines}
    except PerturbCoreError:
        return {}


def dataset_choices() -> tuple[list[str], list[str], dict[str, str]]:
    """:func:`dataset_names` and how the sidebar shows each label dataset
    (``pages._state.label_dataset_label``), in one cached call (listed once per 30 s per server)."""
    return _dataset_choices(str(current_settings().data_dir))


@st.cache_resource(ttl=30, show_spinner=False)
def _dataset_choices(data_dir: str) -> tuple[list[str], list[str], dict[str, str]]:
    from pages._state import label_dataset_label

    sig, lab = _dataset_names(data_dir)
    return sig, lab, {n: label_dataset_label(n) for n in lab}


def datasets_changed() -> None:
    """Forget the dataset listings (after an import in this server: the new name shows at once)."""
    _dataset_names.clear()
    _dataset_choices.clear()
    data_info.clear()
    dataset_tables.clear()


def clear_caches() -> None:
    """Forget every cached dataset, graph and derived table (after a rebuild)."""
    st.cache_resource.clear()
    st.cache_data.clear()


def data_built() -> bool:
    """Whether every processed artifact exists and is up to date (checked at most every 15 s per data folder)."""
    return _data_built(str(current_settings().data_dir))


@st.cache_resource(ttl=15, show_spinner=False)
def _data_built(data_dir: str) -> bool:
    from perturb_core.data.build import is_built

    try:
        return is_built(get_settings())
    except PerturbCoreError:
        return False


# --------------------------------------------------------------------------- derived tables


@st.cache_resource(show_spinner=False)
def dataset_tables() -> tuple[pa.Table, pa.Table]:
    """The Overview's tables of signature and label datasets (from :func:`data_info`), as Arrow tables
    built once per server, not on every rerun."""
    ds = data_info()["datasets"]
    sig_rows = [
        {
            "dataset": name,
            "description": d.get("description", ""),
            "cell lines": d["cell_lines"],
            "drugs": d["drugs"],
            "signatures": d["signatures"],
            "genes": d["genes"],
            "measured genes (%)": 100 * d["measured_fraction"],
        }
        for name, d in ds.items()
        if d.get("kind") == "signatures" and "signatures" in d
    ]
    lab_rows = [
        {
            "dataset": name,
            "cell line": d.get("cell_line", ""),
            "kind": "CRISPRi knock-down" if name.startswith("perturbqa-") else "drug",
            "perturbations": d["de"]["train"]["perturbations"] + d["de"]["test"]["perturbations"],
            "train pairs": d["de"]["train"]["pairs"],
            "test pairs": d["de"]["test"]["pairs"],
            "DE positive rate (train)": d["de"]["train"]["positive_rate"],
        }
        for name, d in ds.items()
        if d.get("kind") == "labels" and "de" in d
    ]
    return pa.Table.from_pandas(pd.DataFrame(sig_rows)), pa.Table.from_pandas(pd.DataFrame(lab_rows))


@st.cache_resource(show_spinner="Counting datasets…")
def data_info() -> dict:
    """``perturb_core.data.info.data_info()`` (counts of every dataset, drugs, graph; shared, read-only)."""
    from perturb_core.data.info import data_info as _info

    return _info(get_settings())


@st.cache_resource(max_entries=512, show_spinner=False)
def structure_svg(smiles: str, legend: str = "", width: int = 260, height: int = 200) -> str | None:
    """One molecule drawn as SVG (``None`` if the SMILES does not parse)."""
    from perturb_core.chem import depict_svg

    return depict_svg(smiles, size=(width, height), legend=legend)


@st.cache_resource(max_entries=128, show_spinner=False)
def structures_svg(smiles: tuple[str, ...], legends: tuple[str, ...]) -> str:
    """Grid drawing of a query and its neighbours."""
    from perturb_core.chem import depict_grid_svg

    return depict_grid_svg(list(smiles), list(legends), mols_per_row=6, sub_img_size=(200, 170))


@st.cache_resource(max_entries=64, show_spinner=False)
def cell_lines(dataset: str) -> list[str]:
    """The cell lines of a signature dataset (``SignatureDataset.cell_lines``, listed once per server)."""
    return signatures(dataset).cell_lines


@st.cache_resource(max_entries=1024, show_spinner=False)
def drugs_in(dataset: str, cell_line: str) -> list[str]:
    """Drugs measured in one cell line (``SignatureDataset.drugs``, listed once per server)."""
    return signatures(dataset).drugs(cell_line)


@st.cache_resource(max_entries=256, show_spinner=False)
def perturbations(dataset: str, task: str) -> list[str]:
    """All perturbations of a label set (``LabelSet.perturbations``, listed once per server)."""
    return labels(dataset, task).perturbations


@st.cache_resource(max_entries=128, show_spinner=False)
def structures_image(smiles: tuple[str, ...], legends: tuple[str, ...]) -> str:
    """:func:`structures_svg` as the ``data:`` URI ``st.image`` makes of SVG text, encoded once per
    server: ``st.image`` passes a URI through, instead of base64-encoding ~300 kB on every rerun."""
    return svg_data_uri(structures_svg(smiles, legends))


def svg_data_uri(svg: str) -> str:
    """SVG text as the ``data:`` URI ``st.image`` makes of it (with ``xmlns``, which an ``<img>`` needs)."""
    import base64

    if "xmlns" not in svg:
        svg = svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def drug_smiles(name: str) -> str | None:
    """SMILES of a drug from the drug table (``None`` when unknown)."""
    table = drugs()
    try:
        smi = table.table.at[table.resolve(name), "smiles"]
    except (KeyError, PerturbCoreError):
        return None
    return smi if isinstance(smi, str) and smi else None


@st.cache_resource(max_entries=1024, show_spinner=False)
def gene_options(dataset: str, task: str, perturbation: str) -> pd.DataFrame:
    """Genes with a label under this perturbation: test pairs first, positives first."""
    t = labels(dataset, task).table
    sub = t[t["pert"] == perturbation][["gene", "label", "split"]].astype({"gene": str, "split": str})
    return sub.sort_values(["split", "label", "gene"], ascending=[True, False, True]).reset_index(drop=True)


@st.cache_resource(max_entries=256, show_spinner=False)
def gene_picker(
    dataset: str, task: str, perturbation: str, words: tuple[str, str]
) -> tuple[list[str], dict[str, str]]:
    """The gene picker of a perturbation: its options (:func:`gene_options` order) and their labels
    (:func:`gene_labels`), in one cached call per rerun (shared, read-only)."""
    return list(gene_options(dataset, task, perturbation)["gene"]), gene_labels(
        dataset, task, perturbation, words
    )


@st.cache_resource(max_entries=256, show_spinner=False)
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
