"""Chemistry with RDKit: molecules from SMILES, Morgan fingerprints, similarity matrices, depictions.

Chemistry failures are values: an empty or unparsable SMILES gives ``None`` (or an invalid
fingerprint row), while an argument of the wrong type raises :class:`TypeError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
from numpy.typing import ArrayLike, NDArray
from rdkit import Chem, RDLogger, rdBase
from rdkit.Chem import rdFingerprintGenerator
from rdkit.Chem.Draw import rdMolDraw2D
from rdkit.Chem.MolStandardize import rdMolStandardize

from perturb_core.errors import ValidationError

__all__ = [
    "MAX_ATOMS",
    "MAX_SMILES_CHARS",
    "canonical_smiles",
    "collapse_salt_forms",
    "cosine_similarity_matrix",
    "depict_grid_svg",
    "depict_svg",
    "morgan_fingerprints",
    "parent_groups",
    "parent_key",
    "parent_mol",
    "parent_smiles",
    "rdkit_quiet",
    "tanimoto_matrix",
    "to_mol",
]

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>\s*")


@contextmanager
def rdkit_quiet() -> Iterator[None]:
    """Silence all of RDKit's log channels inside the block, then restore their previous state.

    Example:
        >>> with rdkit_quiet():
        ...     to_mol("not a smiles")  # no "SMILES Parse Error" on stderr
    """
    enabled = [
        line.split(":", 1)[0] for line in rdBase.LogStatus().splitlines() if line.strip().endswith(":enabled")
    ]
    RDLogger.DisableLog("rdApp.*")
    try:
        yield
    finally:
        for channel in enabled:
            RDLogger.EnableLog(channel)


def _largest_fragment(mol: Chem.Mol) -> Chem.Mol:
    """The parent of a salt or mixture: its largest organic fragment."""
    return rdMolStandardize.LargestFragmentChooser(preferOrganic=True).choose(mol)


MAX_SMILES_CHARS = 2_000
"""Longest SMILES :func:`to_mol` parses (after stripping whitespace); longer gives ``None``.

The longest SMILES in the drug table is 175 characters; RDKit crashes the process (segfault)
canonicalising a chain of ~20,000 atoms, so this cap keeps hostile input far from that.
"""
MAX_ATOMS = 1_000
"""Most atoms (heavy atoms as written) :func:`to_mol` accepts; more gives ``None``.

The largest drug in the drug table has 95 heavy atoms.
"""


def to_mol(smiles: str, *, largest_fragment: bool = False) -> Chem.Mol | None:
    """Parse a SMILES string into a sanitised RDKit molecule.

    Hostile input is refused before RDKit canonicalises it: a SMILES longer than
    :data:`MAX_SMILES_CHARS` (2,000) characters is never passed to RDKit, and a molecule of
    more than :data:`MAX_ATOMS` (1,000) atoms is dropped; both give ``None``, as an
    unparsable SMILES does (RDKit segfaults on e.g. ``"C" * 20000``).

    Args:
        smiles: the SMILES; surrounding whitespace is ignored.
        largest_fragment: keep only the parent of a salt or mixture (its largest organic
            fragment, e.g. aspirin from its sodium salt), as fingerprints do.

    Returns:
        The molecule, or ``None`` when ``smiles`` is empty, too long (over
        :data:`MAX_SMILES_CHARS` characters), too large (over :data:`MAX_ATOMS` atoms), or
        RDKit cannot parse or sanitise it (RDKit's error log is silenced).

    Raises:
        TypeError: ``smiles`` is not a string (e.g. ``None`` or a float NaN from pandas).
    """
    if not isinstance(smiles, str):
        raise TypeError(f"smiles must be a str; got {type(smiles).__name__} {smiles!r}")
    text = smiles.strip()
    if not text or len(text) > MAX_SMILES_CHARS:
        return None
    with rdkit_quiet():
        mol = Chem.MolFromSmiles(text)
        if mol is not None and mol.GetNumAtoms() > MAX_ATOMS:
            return None
        if mol is not None and largest_fragment:
            mol = _largest_fragment(mol)
    return mol


def canonical_smiles(smiles: str, *, largest_fragment: bool = False) -> str | None:
    """RDKit canonical isomeric SMILES of ``smiles``.

    Args:
        smiles: the SMILES.
        largest_fragment: canonicalise only the parent of a salt or mixture.

    Returns:
        The canonical SMILES, or ``None`` when ``smiles`` is empty or unparsable.

    Raises:
        TypeError: ``smiles`` is not a string.
    """
    mol = to_mol(smiles, largest_fragment=largest_fragment)
    return None if mol is None else Chem.MolToSmiles(mol)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def morgan_fingerprints(
    smiles: Sequence[str | None],
    *,
    radius: int = 2,
    n_bits: int = 2048,
    largest_fragment: bool = True,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Morgan (ECFP-like) bit fingerprints of many SMILES, via ``rdFingerprintGenerator``.

    Each distinct SMILES is parsed once. By default salts and mixtures are reduced to their
    parent (largest organic fragment), so a hydrochloride and its free base share a fingerprint.

    Args:
        smiles: SMILES strings; ``None`` or a float NaN marks a missing structure.
        radius: Morgan radius (2 gives ECFP4-like bits).
        n_bits: fingerprint length.
        largest_fragment: fingerprint only the parent of a salt or mixture.

    Returns:
        ``(fingerprints, valid)``: a boolean (N, n_bits) matrix and a boolean (N,) vector.
        Rows of missing, empty or unparsable SMILES are all False and have ``valid`` False.

    Raises:
        ValidationError: ``radius`` < 0 or ``n_bits`` < 1.
        TypeError: an entry is neither a string nor missing.
    """
    if isinstance(radius, bool) or not isinstance(radius, int | np.integer) or radius < 0:
        raise ValidationError(f"radius must be a non-negative integer (2 = ECFP4-like); got {radius!r}")
    if isinstance(n_bits, bool) or not isinstance(n_bits, int | np.integer) or n_bits < 1:
        raise ValidationError(f"n_bits must be a positive integer, e.g. 2048; got {n_bits!r}")
    if isinstance(smiles, str):
        raise TypeError("smiles must be a sequence of SMILES strings, not one string; wrap it in a list")
    items = list(smiles)
    fps = np.zeros((len(items), int(n_bits)), dtype=np.bool_)
    valid = np.zeros(len(items), dtype=np.bool_)
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=int(radius), fpSize=int(n_bits))
    seen: dict[str, NDArray[np.bool_] | None] = {}
    for i, item in enumerate(items):
        if _is_missing(item):
            continue
        if item not in seen:
            mol = to_mol(item, largest_fragment=largest_fragment)
            seen[item] = None if mol is None else generator.GetFingerprintAsNumPy(mol).astype(np.bool_)
        bits = seen[item]
        if bits is not None:
            fps[i] = bits
            valid[i] = True
    return fps, valid


def _fingerprint_matrices(
    a: ArrayLike, b: ArrayLike | None, *, binary: bool
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Validate one or two (rows, bits) matrices and return them as float32."""
    mats = []
    for name, x in (("a", a), ("b", a if b is None else b)):
        arr = np.asarray(x)
        if arr.ndim != 2:
            raise ValidationError(f"{name} must be a 2-D (molecules, bits) matrix; got shape {arr.shape}")
        if arr.dtype != np.bool_:
            if not np.issubdtype(arr.dtype, np.number):
                raise ValidationError(f"{name} must be boolean or numeric; got dtype {arr.dtype}")
            if binary and not np.isin(arr, (0, 1)).all():
                raise ValidationError(
                    f"{name} must be a binary fingerprint (bool or 0/1); "
                    "use cosine_similarity_matrix for count or real-valued vectors"
                )
            if not np.isfinite(arr).all():
                raise ValidationError(f"{name} has non-finite values; fingerprints must be finite")
        mats.append(arr.astype(np.float32))
    fa, fb = mats
    if fa.shape[1] != fb.shape[1]:
        raise ValidationError(
            f"a has shape {fa.shape} but b has shape {fb.shape}; both need the same number of bits"
        )
    return fa, fb


def tanimoto_matrix(a: ArrayLike, b: ArrayLike | None = None) -> NDArray[np.float32]:
    """Tanimoto (Jaccard) similarity of every pair of binary fingerprints, by matrix products.

    T(x, y) = |x ∧ y| / (|x| + |y| − |x ∧ y|); 0 where both fingerprints are empty.

    Args:
        a: fingerprints, boolean (or 0/1) of shape (N, B).
        b: fingerprints of shape (M, B); ``None`` compares ``a`` with itself.

    Returns:
        float32 similarity matrix of shape (N, M).

    Raises:
        ValidationError: not 2-D, not binary, or different numbers of bits.
    """
    fa, fb = _fingerprint_matrices(a, b, binary=True)
    common = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - common
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, common / union, np.float32(0.0)).astype(np.float32)


def cosine_similarity_matrix(a: ArrayLike, b: ArrayLike | None = None) -> NDArray[np.float32]:
    """Cosine similarity of every pair of fingerprint (or other feature) vectors.

    cos(x, y) = x·y / (‖x‖‖y‖); 0 where either vector is all zero. For binary fingerprints
    this is |x ∧ y| / √(|x||y|), the similarity of the LGR chemistry kNN baseline.

    Args:
        a: vectors of shape (N, B), boolean or numeric.
        b: vectors of shape (M, B); ``None`` compares ``a`` with itself.

    Returns:
        float32 similarity matrix of shape (N, M).

    Raises:
        ValidationError: not 2-D, not numeric or finite, or different numbers of columns.
    """
    fa, fb = _fingerprint_matrices(a, b, binary=False)
    dot = fa @ fb.T
    # norms multiplied before the square root: exact for binary fingerprints (self-similarity 1)
    norm = np.sqrt((fa * fa).sum(1)[:, None] * (fb * fb).sum(1)[None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        sim = np.where(norm > 0, dot / norm, np.float32(0.0))
    return np.clip(sim, -1.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- salt forms and parents


def parent_mol(mol: Chem.Mol) -> Chem.Mol | None:
    """The parent compound of a salt or mixture: RDKit's standardiser, then neutralised.

    ``rdMolStandardize.FragmentParent`` (cleanup, then the largest organic fragment: counter-ions
    such as chloride, mesylate or citrate go) followed by ``Uncharger`` (acids and bases back to
    their neutral form where a neutral form exists). ``None`` when RDKit cannot standardise it.
    """
    with rdkit_quiet():
        try:
            frag = rdMolStandardize.FragmentParent(mol)
            return rdMolStandardize.Uncharger().uncharge(frag)
        except (RuntimeError, ValueError):  # RDKit raises these for molecules it cannot sanitise
            return None


def parent_smiles(smiles: str) -> str | None:
    """Canonical SMILES of the parent compound (:func:`parent_mol`); ``None`` if unparsable.

    Example:
        >>> parent_smiles("CC(=O)Oc1ccccc1C(=O)[O-].[Na+]")
        'CC(=O)Oc1ccccc1C(=O)O'
    """
    mol = to_mol(smiles)
    mol = None if mol is None else parent_mol(mol)
    return None if mol is None else Chem.MolToSmiles(mol)


def parent_key(smiles: str | None) -> str | None:
    """The standard InChIKey of the parent compound: one key per parent structure, shared by its salt forms.

    Almonertinib hydrochloride and Almonertinib mesylate get the same key; so do Tofacitinib and
    Tofacitinib citrate. Stereo-isomers keep different keys (the InChIKey encodes stereo).

    Returns:
        The 27-character InChIKey, or ``None`` for a missing, empty or unparsable SMILES.
    """
    if _is_missing(smiles):
        return None
    mol = to_mol(str(smiles))
    mol = None if mol is None else parent_mol(mol)
    if mol is None:
        return None
    with rdkit_quiet():
        key = Chem.MolToInchiKey(mol)
    return key or None


def parent_groups(
    smiles_by_name: Mapping[str, str | None], *, min_size: int = 2
) -> dict[str, tuple[str, ...]]:
    """Names that share one parent structure (salt forms, vehicles), grouped by :func:`parent_key`.

    Args:
        smiles_by_name: drug name -> SMILES (``None``/NaN: no structure, never grouped).
        min_size: smallest group returned (2: only parents with several forms).

    Returns:
        parent InChIKey -> the names of its forms (sorted case-insensitively), groups ordered by
        their first name.
    """
    groups: dict[str, list[str]] = {}
    for name, smi in smiles_by_name.items():
        key = parent_key(smi)
        if key is not None:
            groups.setdefault(key, []).append(str(name))
    out = {k: tuple(sorted(v, key=str.lower)) for k, v in groups.items() if len(v) >= min_size}
    return dict(sorted(out.items(), key=lambda kv: kv[1][0].lower()))


def collapse_salt_forms(
    names: Sequence[str], smiles_by_name: Mapping[str, str | None]
) -> list[tuple[str, tuple[str, ...]]]:
    """Collapse a ranked list of drugs so each parent structure appears once, at its best rank.

    For a neighbour list: ``Almonertinib hydrochloride`` at rank 2 and ``Almonertinib mesylate``
    at rank 5 become one row ``("Almonertinib hydrochloride", ("Almonertinib mesylate",))``.
    Names without a structure are never merged.

    Args:
        names: drug names in rank order.
        smiles_by_name: drug name -> SMILES (names not in it have no structure).

    Returns:
        ``[(kept name, other forms merged into it), ...]`` in rank order.
    """
    kept: list[tuple[str, list[str]]] = []
    where: dict[str, int] = {}
    for name in names:
        key = parent_key(smiles_by_name.get(name))
        if key is not None and key in where:
            kept[where[key]][1].append(name)
            continue
        if key is not None:
            where[key] = len(kept)
        kept.append((name, []))
    return [(n, tuple(others)) for n, others in kept]


def _svg_text(drawer: rdMolDraw2D.MolDraw2DSVG) -> str:
    drawer.FinishDrawing()
    return _XML_DECLARATION.sub("", drawer.GetDrawingText())


def depict_svg(
    smiles: str, *, size: tuple[int, int] = (260, 200), legend: str = "", parent: bool = True
) -> str | None:
    """2-D depiction of a molecule as SVG text, ready to embed in HTML.

    Args:
        smiles: the SMILES.
        size: (width, height) in pixels.
        legend: text drawn under the molecule.
        parent: draw the parent compound (:func:`parent_mol`: no counter-ions, neutralised), so
            a hydrochloride and a mesylate salt draw the same; ``False`` draws every fragment.

    Returns:
        SVG markup starting with ``<svg``, or ``None`` when ``smiles`` is empty or unparsable.

    Raises:
        TypeError: ``smiles`` is not a string.
        ValidationError: a size is not a positive integer.
    """
    width, height = _check_size(size, "size")
    mol = to_mol(smiles)
    if mol is not None and parent:
        mol = parent_mol(mol)
    if mol is None:
        return None
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    with rdkit_quiet():
        rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol, legend=legend)
    return _svg_text(drawer)


def depict_grid_svg(
    smiles_list: Sequence[str],
    legends: Sequence[str] | None = None,
    mols_per_row: int = 4,
    sub_img_size: tuple[int, int] = (220, 180),
    parent: bool = True,
) -> str:
    """Grid of 2-D depictions as one SVG; an unparsable SMILES leaves an empty, labelled cell.

    Args:
        smiles_list: the SMILES to draw, in reading order.
        legends: one caption per molecule (default: none).
        mols_per_row: molecules per grid row.
        sub_img_size: (width, height) of one cell in pixels.
        parent: draw each parent compound without counter-ions (see :func:`depict_svg`).

    Returns:
        SVG markup starting with ``<svg``.

    Raises:
        TypeError: an entry of ``smiles_list`` is not a string.
        ValidationError: empty list, legends of another length, or bad sizes.
    """
    if isinstance(smiles_list, str):
        raise TypeError("smiles_list must be a sequence of SMILES strings, not one string; wrap it in a list")
    items = list(smiles_list)
    if not items:
        raise ValidationError("smiles_list is empty; pass at least one SMILES to draw")
    labels = [""] * len(items) if legends is None else [str(x) for x in legends]
    if len(labels) != len(items):
        raise ValidationError(
            f"legends has {len(labels)} entries but smiles_list has {len(items)}; pass one legend per SMILES"
        )
    if isinstance(mols_per_row, bool) or not isinstance(mols_per_row, int) or mols_per_row < 1:
        raise ValidationError(f"mols_per_row must be a positive integer; got {mols_per_row!r}")
    width, height = _check_size(sub_img_size, "sub_img_size")
    mols = []
    for smi, label in zip(items, labels, strict=True):
        mol = to_mol(smi)
        if mol is not None and parent:
            mol = parent_mol(mol)
        if mol is None:
            mols.append(Chem.Mol())
            labels[len(mols) - 1] = f"{label} (invalid SMILES)".strip()
        else:
            mols.append(mol)
    per_row = min(mols_per_row, len(mols))
    rows = -(-len(mols) // per_row)
    drawer = rdMolDraw2D.MolDraw2DSVG(per_row * width, rows * height, width, height)
    with rdkit_quiet():
        drawer.DrawMolecules(mols, legends=labels)
    return _svg_text(drawer)


def _check_size(size: tuple[int, int], name: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be (width, height) in pixels; got {size!r}") from exc
    if width < 1 or height < 1:
        raise ValidationError(f"{name} must be positive (width, height) in pixels; got {size!r}")
    return width, height
