"""Mechanism tags and transcriptional programs of drugs, from their targets and mechanism text.

A drug gets *mechanism tags* (``"EGFR/ERBB inhibition"``, ``"HDAC inhibition"``, ...) from a
dictionary of rules (:data:`TAG_RULES`): each rule names target-gene patterns (HGNC symbols,
regular expressions) and keywords of the mechanism text (``moa_fine``, e.g. ``"EGFR/ERBB
inhibitor"``). Each tag belongs to at most one of the five transcriptional programs of the
LGR paper (:data:`PROGRAMS`); tags outside them (receptor ligands, ion channels, ...) still
describe the drug and still count as shared mechanism in retrieval.

How tags are assigned (:func:`mechanism_tags`):

1. Tags whose keywords match the mechanism text come first (the curated mechanism wins).
2. Tags from the target genes are added when the text gave no tag, or when they refine a
   program the text already named (cytarabine: "DNA synthesis/repair inhibitor" plus its
   POLA1 target gives "DNA polymerase / nucleoside analogue"; its BCR entry, a DrugBank
   artefact, is ignored because RTK/MAPK is not a program of its mechanism).
3. ADME genes (cytochromes P450, ABC and drug-uptake transporters, UGT/SULT/GST
   conjugating enzymes, PXR/CAR) are never mechanism targets (:func:`is_adme_gene`).

Example:
    >>> mechanism_tags(["EGFR", "ERBB2"], "EGFR/ERBB inhibitor")
    ('EGFR/ERBB inhibition',)
    >>> programs_of(("EGFR/ERBB inhibition", "HDAC inhibition"))
    ('RTK/MAPK signalling', 'epigenetic or proteostasis stress')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from perturb_core.config import Settings
from perturb_core.errors import ValidationError, check_choice

__all__ = [
    "PROGRAMS",
    "TAG_RULES",
    "DrugMechanism",
    "Program",
    "TagRule",
    "annotate_drugs",
    "drug_mechanism",
    "is_adme_gene",
    "mechanism_tags",
    "mechanism_targets",
    "programs_of",
    "tag_coverage",
]

Program = Literal[
    "RTK/MAPK signalling",
    "PI3K-AKT-mTOR",
    "cell cycle",
    "DNA damage and replication stress",
    "epigenetic or proteostasis stress",
]

PROGRAMS: tuple[str, ...] = (
    "RTK/MAPK signalling",
    "PI3K-AKT-mTOR",
    "cell cycle",
    "DNA damage and replication stress",
    "epigenetic or proteostasis stress",
)
"""The five transcriptional programs of the LGR paper, in display order."""

_RTK, _PI3K, _CYCLE, _DNA, _EPI = PROGRAMS


@dataclass(frozen=True)
class TagRule:
    """One mechanism tag: the target genes and mechanism-text keywords that imply it.

    Attributes:
        tag: the tag's display name, e.g. ``"CDK4/6 inhibition"``.
        program: one of :data:`PROGRAMS`, or ``None`` for tags outside the five programs.
        genes: regular expression matched in full against upper-case HGNC symbols
            (``""`` = no gene implies the tag).
        keywords: regular expressions searched (case-insensitively) in the mechanism text.
    """

    tag: str
    program: str | None
    genes: str = ""
    keywords: tuple[str, ...] = ()


TAG_RULES: tuple[TagRule, ...] = (
    # --- RTK/MAPK signalling
    TagRule("EGFR/ERBB inhibition", _RTK, r"EGFR|ERBB[234]", (r"\begfr\b", r"\berbb", r"\bher2\b")),
    TagRule("ALK/ROS1 inhibition", _RTK, r"ALK|ROS1", (r"\balk inhibitor", r"\bros1\b")),
    TagRule("TRK inhibition", _RTK, r"NTRK[123]", (r"\btrk inhibitor", r"tropomyosin")),
    TagRule(
        "VEGFR/PDGFR/KIT multi-kinase inhibition",
        _RTK,
        r"KDR|FLT[14]|PDGFR[AB]|KIT|TEK|RET|CSF1R",
        (r"\bvegfr", r"\bpdgfr", r"multi-tk", r"\bkit inhibitor", r"angiogenesis"),
    ),
    TagRule("FGFR inhibition", _RTK, r"FGFR[1-4]", (r"\bfgfr",)),
    TagRule("MET/AXL/FLT3 inhibition", _RTK, r"MET|AXL|FLT3|MERTK", (r"c-met", r"\baxl\b", r"\bflt3\b")),
    TagRule(
        "BCR-ABL/SRC inhibition",
        _RTK,
        r"ABL[12]|SRC|LCK|LYN|FYN|YES1|HCK",
        (r"\babl kinase", r"bcr-abl", r"\bsrc inhibitor"),
    ),
    TagRule("tyrosine kinase inhibition", _RTK, "", (r"\btk inhibitor", r"tyrosine kinase inhibitor")),
    TagRule("RAF inhibition", _RTK, r"BRAF|RAF1|ARAF", (r"\braf inhibitor",)),
    TagRule(
        "MEK/ERK inhibition",
        _RTK,
        r"MAP2K[12]|MAPK[13]",
        (r"\bmek inhibitor", r"mitogen-activated protein kinase kinase", r"\berk inhibitor"),
    ),
    TagRule("JAK/STAT inhibition", _RTK, r"JAK[123]|TYK2|STAT[35]", (r"\bjak\b", r"\bjak/stat\b")),
    TagRule("BTK/SYK inhibition", _RTK, r"BTK|SYK", (r"\bbtk\b", r"\bsyk\b")),
    TagRule("IGF1R/insulin receptor inhibition", _RTK, r"IGF1R|INSR", (r"\bigf-1", r"\bigf1r")),
    TagRule("FAK inhibition", _RTK, r"PTK2", (r"focal adhesion kinase",)),
    TagRule("PKC inhibition", _RTK, r"PRKC[ABDEGHIQZ]", (r"\bpkc\b", r"protein kinase c\b")),
    TagRule("JNK/p38 MAPK inhibition", _RTK, r"MAPK(8|9|10|11|12|14)", (r"\bjnk\b", r"\bp38\b")),
    TagRule("RSK inhibition", _RTK, r"RPS6KA[1-6]", (r"\brsk\b",)),
    TagRule("RAS farnesylation inhibition", _RTK, r"FNT[AB]", (r"farnesyltransferase",)),
    TagRule(
        "TGF-beta/BMP receptor inhibition", _RTK, r"TGFBR[12]|ACVR1[BC]?|BMPR1[AB]|BMPR2", (r"tgf.beta",)
    ),
    # --- PI3K-AKT-mTOR
    TagRule("mTOR inhibition", _PI3K, r"MTOR", (r"\bmtor\b",)),
    TagRule("PI3K inhibition", _PI3K, r"PIK3C[ABDG]|PIK3R1", (r"\bpi3k\b",)),
    TagRule("AKT inhibition", _PI3K, r"AKT[123]", (r"\bakt\b",)),
    # --- cell cycle
    TagRule("CDK4/6 inhibition", _CYCLE, r"CDK[46]", (r"\bcdk4/6\b", r"\bcdk4\b", r"\bcdk6\b")),
    TagRule("CDK inhibition", _CYCLE, r"CDK[12579]|CDK1[23]", (r"\bcdk inhibitor",)),
    TagRule("Aurora kinase inhibition", _CYCLE, r"AURK[ABC]", (r"\baurora",)),
    TagRule("PLK inhibition", _CYCLE, r"PLK[1-4]", (r"\bplk\b",)),
    TagRule("microtubule disruption", _CYCLE, r"TUB[ABDEG][0-9A-Z]*", (r"microtubule", r"tubulin")),
    TagRule("kinesin (KSP) inhibition", _CYCLE, r"KIF11", (r"\bkinesin",)),
    # --- DNA damage and replication stress
    TagRule("topoisomerase I inhibition", _DNA, r"TOP1|TOP1MT", (r"topoisomerase i\b", r"camptothecin")),
    TagRule("topoisomerase II inhibition", _DNA, r"TOP2[AB]", (r"topoisomerase ii\b", r"anthracycline")),
    TagRule(
        "nucleotide synthesis inhibition",
        _DNA,
        r"TYMS|DHFR|RRM[12]|GART|ATIC|IMPDH[12]|DHODH|PPAT",
        (r"antimetabolite", r"thymidylate", r"dihydrofolate", r"ribonucleotide reductase", r"antifolate"),
    ),
    TagRule(
        "DNA polymerase / nucleoside analogue",
        _DNA,
        r"POL[ABDE][0-9A-Z]*|DCK|DCTD",
        (r"dna polymerase", r"nucleoside analog"),
    ),
    TagRule(
        "DNA synthesis/repair inhibition",
        _DNA,
        "",
        (r"dna synthesis", r"dna repair", r"alkylat", r"dna crosslink", r"intercalat"),
    ),
    TagRule("PARP inhibition", _DNA, r"PARP[12]", (r"\bparp\b",)),
    TagRule(
        "DNA damage checkpoint inhibition",
        _DNA,
        r"ATR|ATM|CHEK[12]|WEE1|PRKDC",
        (r"\batr inhibitor", r"\batm inhibitor", r"\bchk1\b", r"\bwee1\b", r"\bdna-pk\b"),
    ),
    # --- epigenetic or proteostasis stress
    TagRule("HDAC inhibition", _EPI, r"HDAC[0-9]+", (r"\bhdac\b", r"histone deacetylase")),
    TagRule(
        "DNA methyltransferase inhibition", _EPI, r"DNMT(1|3A|3B)", (r"dna methyltransferase", r"\bdnmt\b")
    ),
    TagRule("BET bromodomain inhibition", _EPI, r"BRD[234]|BRDT", (r"bromodomain", r"\bbet inhibitor")),
    TagRule(
        "histone methylation inhibition",
        _EPI,
        r"EZH[12]|DOT1L|KDM[0-9A-Z]+|PRMT[0-9]",
        (r"histone methyltransferase", r"\bezh2\b", r"demethylase"),
    ),
    TagRule("sirtuin modulation", _EPI, r"SIRT[1-7]", (r"\bsirt\b", r"sirtuin")),
    TagRule("proteasome inhibition", _EPI, r"PSM[AB][0-9]+", (r"proteasome",)),
    TagRule("HSP90 inhibition", _EPI, r"HSP90[A-Z0-9]+", (r"\bhsp inhibitor", r"\bhsp90\b", r"heat shock")),
    TagRule(
        "protein synthesis inhibition",
        _EPI,
        r"RPL[0-9]+[A-Z]?|EEF1A1|EEF2|EIF4[AE][0-9]?",
        (r"(?<!bacterial )protein synthesis",),
    ),
    TagRule("nuclear export (XPO1) inhibition", _EPI, r"XPO1", (r"exportin", r"nuclear export")),
    TagRule("CBP/p300 bromodomain inhibition", _EPI, r"CREBBP|EP300", (r"\bcbp\b", r"\bp300\b")),
    TagRule("cereblon modulation (IMiD)", _EPI, r"CRBN|IKZF[13]", (r"cereblon", r"immunomodulat")),
    TagRule("oxidative stress induction", _EPI, "", (r"oxidative stress", r"\bros inducer", r"\ber stress")),
    # --- outside the five programs
    TagRule(
        "apoptosis induction / BCL-2 family",
        None,
        r"BCL2|BCL2L1|MCL1|BIRC5|XIAP",
        (r"\bbcl", r"apoptosis", r"survivin"),
    ),
    TagRule(
        "steroid hormone receptor ligand",
        None,
        r"NR3C[12]|PGR|AR|ESR[12]",
        (r"glucocorticoid", r"progesterone", r"androgen", r"estrogen"),
    ),
    TagRule("retinoid receptor ligand", None, r"RAR[ABG]|RXR[ABG]", (r"retinoi",)),
    TagRule("PPAR ligand", None, r"PPAR[ADG]", (r"\bppar",)),
    TagRule("adrenergic receptor ligand", None, r"ADR[AB][0-9][A-Z]?", (r"adrenoceptor", r"adrenergic")),
    TagRule("dopamine receptor ligand", None, r"DRD[1-5]", (r"dopamine receptor",)),
    TagRule(
        "serotonin receptor/transporter ligand", None, r"HTR[0-9][A-Z]?|SLC6A4", (r"serotonin", r"\bsert\b")
    ),
    TagRule("histamine receptor ligand", None, r"HRH[1-4]", (r"histamine",)),
    TagRule("muscarinic receptor ligand", None, r"CHRM[1-5]", (r"muscarinic",)),
    TagRule("adenosine receptor ligand", None, r"ADORA[0-9A-Z]+", (r"adenosine receptor",)),
    TagRule("opioid receptor ligand", None, r"OPR[MDK]1", (r"opioid",)),
    TagRule(
        "prostanoid receptor ligand", None, r"PTGER[1-4]|PTGFR|PTGIR|PTGDR", (r"prostanoid", r"prostaglandin")
    ),
    TagRule("cannabinoid receptor ligand", None, r"CNR[12]", (r"cannabinoid",)),
    TagRule(
        "peptide hormone receptor ligand",
        None,
        r"GNRHR|SSTR[1-5]|CCK[AB]R|PRLR|GHRHR|EDNR[AB]",
        (r"gonadotropin", r"somatostatin", r"gastrin", r"endothelin"),
    ),
    TagRule("cyclooxygenase inhibition", None, r"PTGS[12]", (r"cyclooxygenase", r"\bcox\b")),
    TagRule(
        "ion channel modulation",
        None,
        r"SCN[0-9]+A|KCN[A-Z0-9]+|CACNA[0-9A-Z]+|TRP[ACMV][0-9]*|ATP1A[0-9]|CLCN[0-9A-Z]+",
        (
            r"channel blocker",
            r"local anesthetic",
            r"kir6",
            r"sulfonylurea",
            r"sodium channel",
            r"potassium channel",
            r"calcium channel",
            r"membrane integrity",
        ),
    ),
    TagRule("calmodulin antagonism", None, r"CALM[123]", (r"calmodulin",)),
    TagRule("HMG-CoA reductase inhibition (statin)", None, r"HMGCR", (r"\bhmgcr\b", r"hmg-coa")),
    TagRule("renin inhibition", None, r"REN", (r"\brenin\b",)),
    TagRule("HIV protease inhibition", None, "", (r"\bhiv\b",)),
    TagRule(
        "antibacterial",
        None,
        "",
        (r"bacterial", r"enoyl-acyl-carrier", r"antibiotic", r"penicillin", r"beta-lactam"),
    ),
    TagRule("glucose transport inhibition", None, r"SLC5A[12]|SLC2A[0-9]+", (r"glucose transporter",)),
    TagRule("COMT inhibition", None, r"COMT", (r"catechol o.methyltransferase",)),
    TagRule("glutamate signalling inhibition", None, r"GRI[AKN][0-9A-Z]+|GRM[0-9]", (r"glutamate",)),
    TagRule("loop diuretic (NKCC)", None, r"SLC12A[12]", (r"diuretic",)),
    TagRule("folate receptor ligand", None, r"FOLR[0-9]", (r"folate receptor",)),
    TagRule("cytokine inhibition", None, r"IL[0-9]+[A-Z]?|TNF", (r"interleukin", r"\btnf\b")),
    TagRule("LDL receptor activation", None, r"LDLR", (r"ldl receptor",)),
    TagRule("aldehyde dehydrogenase inhibition", None, r"ALDH[0-9A-Z]+", (r"aldehyde dehydrogenase",)),
    TagRule("ROCK inhibition", None, r"ROCK[12]", (r"\brock\b", r"rho kinase")),
    TagRule("IDO1 inhibition", None, r"IDO1", (r"indoleamine",)),
    TagRule("carbonic anhydrase inhibition", None, r"CA[0-9]+", (r"carbonic anhydrase",)),
    TagRule("GSK3 inhibition", None, r"GSK3[AB]", (r"\bgsk3\b",)),
    TagRule("HIF inhibition", None, r"HIF1A|EPAS1", (r"\bhif\b",)),
    TagRule("NAMPT inhibition", None, r"NAMPT", (r"phosphoribosyltransferase",)),
    TagRule(
        "cAMP/cGMP signalling modulation",
        None,
        r"ADCY[0-9]|GUCY1[AB][0-9]|PDE[0-9]+[A-Z]?",
        (r"adenylyl cyclase", r"guanylate cyclase", r"phosphodiesterase"),
    ),
    TagRule("vitamin D receptor ligand", None, r"VDR", (r"vitamin d",)),
    TagRule("DPP4 inhibition", None, r"DPP4", (r"dipeptidyl peptidase",)),
    TagRule(
        "aminopeptidase inhibition", None, r"ANPEP|NPEPPS|LAP3", (r"aminopeptidase", r"^peptidase inhibitor")
    ),
    TagRule(
        "monoamine transporter/oxidase inhibition",
        None,
        r"SLC6A[23]|MAO[AB]",
        (r"dopamine uptake", r"monoamine"),
    ),
    TagRule(
        "sterol synthesis (CYP51) inhibition",
        None,
        r"CYP51A1",
        (r"imidazoline", r"antifungal", r"ergosterol"),
    ),
    TagRule("LRRK2 inhibition", None, r"LRRK2", ()),
    TagRule("vitamin B6 metabolism", None, r"PDXK|PNPO|PDXP", (r"vitamin b6", r"pyridox")),
    TagRule("purine metabolism", None, r"NT5E|URAD|ADA|XDH", ()),
)
"""The tag dictionary, in display order (programs first, then other mechanism classes)."""

_ADME = re.compile(
    r"CYP(?!51)[0-9][0-9A-Z]*|ABC[A-G][0-9]+|UGT[0-9][0-9A-Z]*|SULT[0-9][0-9A-Z]*|GST[A-Z][0-9]*|NR1I[23]|"
    r"FMO[0-9]|ALB|ORM[12]|NAT[12]|SLCO[0-9][A-Z0-9]*|SLC22A[0-9]+|SLC47A[0-9]"
)
_GENE_RULES = tuple((rule, re.compile(rule.genes)) for rule in TAG_RULES if rule.genes)
_TEXT_RULES = tuple(
    (rule, tuple(re.compile(k, re.IGNORECASE) for k in rule.keywords)) for rule in TAG_RULES if rule.keywords
)
_RULE_ORDER = {rule.tag: i for i, rule in enumerate(TAG_RULES)}
_PROGRAM_OF = {rule.tag: rule.program for rule in TAG_RULES}
_UNCLEAR = {"", "unclear", "none", "nan", "unknown"}


def is_adme_gene(symbol: str) -> bool:
    """Whether a gene is an ADME gene (metabolism, transport, conjugation), not a mechanism target.

    Args:
        symbol: HGNC symbol (any case).

    Returns:
        True for cytochromes P450, ABC transporters, UGT/SULT/GST enzymes, PXR/CAR (NR1I2/3),
        FMOs, albumin, orosomucoids, NAT1/2 and drug-uptake SLCs (SLCO*, SLC22A*, SLC47A*).
    """
    return bool(_ADME.fullmatch(str(symbol).upper()))


def mechanism_targets(targets: Iterable[str]) -> list[str]:
    """The targets that speak to the mechanism: upper-cased, unique, ADME genes removed, order kept."""
    out: list[str] = []
    for t in targets:
        s = str(t).strip().upper()
        if s and s not in out and not is_adme_gene(s):
            out.append(s)
    return out


def _moa_text(moa: object) -> str:
    text = "" if moa is None or (isinstance(moa, float) and moa != moa) else str(moa).strip()
    return "" if text.lower() in _UNCLEAR else text


def _tag_evidence(targets: Iterable[str], moa: object) -> dict[str, str]:
    """Tag -> where it came from (``"mechanism: ..."`` or ``"targets: A, B"``), in display order."""
    text = _moa_text(moa)
    from_text = {rule.tag for rule, pats in _TEXT_RULES if text and any(p.search(text) for p in pats)}
    by_gene: dict[str, list[str]] = {}
    for gene in mechanism_targets(targets):
        for rule, pat in _GENE_RULES:
            if pat.fullmatch(gene):
                by_gene.setdefault(rule.tag, []).append(gene)
    text_programs = {_PROGRAM_OF[t] for t in from_text} - {None}
    evidence: dict[str, str] = {t: f"mechanism: {text}" for t in from_text}
    for tag, genes in by_gene.items():
        program = _PROGRAM_OF[tag]
        if not from_text or tag in from_text or (program is not None and program in text_programs):
            note = f"targets: {', '.join(genes)}"
            evidence[tag] = f"{evidence[tag]}; {note}" if tag in evidence else note
    return dict(sorted(evidence.items(), key=lambda kv: _RULE_ORDER[kv[0]]))


def mechanism_tags(targets: Iterable[str], moa: object) -> tuple[str, ...]:
    """Mechanism tags of one drug (see the module docstring for the rules).

    Args:
        targets: target gene symbols (ADME genes are ignored).
        moa: mechanism text such as ``"EGFR/ERBB inhibitor"``; ``None``/``"unclear"`` = none.

    Returns:
        Tags in :data:`TAG_RULES` order; empty when nothing is known.
    """
    return tuple(_tag_evidence(targets, moa))


def programs_of(tags: Iterable[str]) -> tuple[str, ...]:
    """The programs (subset of :data:`PROGRAMS`, in that order) that ``tags`` belong to.

    Raises:
        ValidationError: an unknown tag (valid tags are those of :data:`TAG_RULES`).
    """
    found = {_PROGRAM_OF[check_choice("mechanism tag", t, _PROGRAM_OF)] for t in tags}
    return tuple(p for p in PROGRAMS if p in found)


@dataclass(frozen=True)
class DrugMechanism:
    """What is known about one drug's mechanism.

    Attributes:
        drug_id: id in the drug table (``slug`` of the name).
        name: display name.
        targets: all targets as listed by the source.
        mechanism_targets: targets without ADME genes (those used in retrieval).
        moa: mechanism text (``None`` when unclear).
        direction: ``"inhibitor/antagonist"``, ``"activator/agonist"`` or ``"unclear"``.
        tags: mechanism tags.
        programs: programs of the tags.
        evidence: tag -> where it came from (mechanism text or target genes).
    """

    drug_id: str
    name: str
    targets: tuple[str, ...]
    mechanism_targets: tuple[str, ...]
    moa: str | None
    direction: str
    tags: tuple[str, ...]
    programs: tuple[str, ...]
    evidence: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "drug_id": self.drug_id,
            "name": self.name,
            "targets": list(self.targets),
            "mechanism_targets": list(self.mechanism_targets),
            "moa": self.moa,
            "direction": self.direction,
            "tags": list(self.tags),
            "programs": list(self.programs),
            "evidence": dict(self.evidence),
        }


def _table(drugs: Any) -> pd.DataFrame:
    table = getattr(drugs, "table", drugs)
    if not isinstance(table, pd.DataFrame):
        raise ValidationError(f"drugs must be a DrugTable or DataFrame; got {type(drugs).__name__}")
    missing = {"name", "targets", "moa_fine"} - set(table.columns)
    if missing:
        raise ValidationError(
            f"the drug table lacks column(s) {sorted(missing)}; rebuild it with `data build`"
        )
    return table


def annotate_drugs(drugs: Any) -> pd.DataFrame:
    """Mechanism annotation of every drug of a drug table.

    Args:
        drugs: a :class:`~perturb_core.data.registry.DrugTable` or its ``table`` (indexed by
            drug id; columns name, targets (list), moa_fine, optionally moa_broad).

    Returns:
        DataFrame indexed like the table with columns name, targets, mechanism_targets, moa,
        direction, tags, programs (tuples) and evidence (dict tag -> source).
    """
    table = _table(drugs)
    broad = table["moa_broad"] if "moa_broad" in table.columns else pd.Series("unclear", index=table.index)
    rows = []
    for targets, moa, direction in zip(table["targets"], table["moa_fine"], broad, strict=True):
        tlist = (
            [] if targets is None or (isinstance(targets, float) and targets != targets) else list(targets)
        )
        evidence = _tag_evidence(tlist, moa)
        tags = tuple(evidence)
        rows.append(
            {
                "targets": tuple(str(t) for t in tlist),
                "mechanism_targets": tuple(mechanism_targets(tlist)),
                "moa": _moa_text(moa) or None,
                "direction": str(direction) if isinstance(direction, str) and direction else "unclear",
                "tags": tags,
                "programs": programs_of(tags),
                "evidence": evidence,
            }
        )
    out = pd.DataFrame(rows, index=table.index)
    out.insert(0, "name", table["name"].astype(str))
    return out


def drug_mechanism(drug: str, *, settings: Settings | None = None) -> DrugMechanism:
    """Mechanism annotation of one drug by any spelling of its name.

    Raises:
        UnknownNameError: unknown drug (with the closest names).
        NotBuiltError: the drug table is not built.
    """
    from perturb_core.data.registry import load_drugs

    table = load_drugs(settings)
    drug_id = table.resolve(drug)
    row = annotate_drugs(table.table.loc[[drug_id]]).iloc[0]
    return DrugMechanism(
        drug_id=drug_id,
        name=row["name"],
        targets=row["targets"],
        mechanism_targets=row["mechanism_targets"],
        moa=row["moa"],
        direction=row["direction"],
        tags=row["tags"],
        programs=row["programs"],
        evidence=tuple(row["evidence"].items()),
    )


def tag_coverage(annotated: pd.DataFrame, drug_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """How many drugs got tags and programs.

    Args:
        annotated: output of :func:`annotate_drugs`.
        drug_ids: restrict to these ids (e.g. the drugs of one dataset).

    Returns:
        ``{"n_drugs", "with_tags", "with_programs", "with_targets", "with_moa", "tag_fraction",
        "program_fraction", "per_program": {program: n}, "per_tag": {tag: n},
        "untagged": [names], "untagged_with_information": [names]}``; the last lists untagged
        drugs that do have targets or a mechanism text (the dictionary's blind spots).
    """
    sub = annotated if drug_ids is None else annotated.loc[list(drug_ids)]
    n = len(sub)
    has_tags = sub["tags"].map(bool)
    has_prog = sub["programs"].map(bool)
    has_info = sub["mechanism_targets"].map(bool) | sub["moa"].notna()
    per_tag: dict[str, int] = {}
    for tags in sub["tags"]:
        for t in tags:
            per_tag[t] = per_tag.get(t, 0) + 1
    return {
        "n_drugs": n,
        "with_tags": int(has_tags.sum()),
        "with_programs": int(has_prog.sum()),
        "with_targets": int(sub["mechanism_targets"].map(bool).sum()),
        "with_moa": int(sub["moa"].notna().sum()),
        "tag_fraction": float(has_tags.mean()) if n else float("nan"),
        "program_fraction": float(has_prog.mean()) if n else float("nan"),
        "per_program": {p: int(sub["programs"].map(lambda ps, p=p: p in ps).sum()) for p in PROGRAMS},
        "per_tag": dict(sorted(per_tag.items(), key=lambda kv: _RULE_ORDER[kv[0]])),
        "untagged": sorted(sub.loc[~has_tags, "name"], key=str.lower),
        "untagged_with_information": sorted(sub.loc[~has_tags & has_info, "name"], key=str.lower),
    }
