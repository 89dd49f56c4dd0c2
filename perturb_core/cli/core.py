"""``python -m perturb_core core {evaluate,explain,methods}`` (contract in DESIGN.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from perturb_core.cli import print_json
from perturb_core.cli.lgr import _FORMAT_HELP, llm_settings, print_estimate, print_llm_stats
from perturb_core.config import ANSWER_FORMATS
from perturb_core.errors import ValidationError, name_key


def _method_list(text: str, dataset: str = "") -> list[str]:
    """Expand ``all`` / ``non-llm`` and resolve every name (closest names on a typo).

    The groups hold the cross-line methods only for PerturbQA lines (the only ones with
    cross-line evidence); named explicitly elsewhere, they fail with a clear message.
    """
    from perturb_core.evaluate.core import CORE_METHODS, CORE_NON_LLM_METHODS, resolve_method

    def keep(m: str) -> bool:
        return not m.endswith("_crossline") or name_key(dataset).startswith("perturbqa")

    groups = {
        "all": [m for m in CORE_METHODS if keep(m)],
        "nonllm": [m for m in CORE_NON_LLM_METHODS if keep(m)],
    }
    out: list[str] = []
    for m in (x.strip() for x in text.split(",")):
        if not m:
            continue
        for x in groups.get(name_key(m)) or [resolve_method(m)]:
            if x not in out:
                out.append(x)
    if not out:
        raise ValidationError("--methods is empty; e.g. --methods gene_frequency,core_voting")
    return out


def _fmt(v: Any, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _evaluate(args: argparse.Namespace) -> int:
    from perturb_core.data.registry import load_labels
    from perturb_core.evaluate.core import evaluate_core
    from perturb_core.kg import load_graph

    methods = _method_list(args.methods, args.dataset)
    settings = llm_settings(args)
    labels = load_labels(args.dataset, args.task, settings)
    graph = load_graph(settings)
    bars: list[tqdm] = []

    def progress(done: int, total: int) -> None:
        if args.quiet:
            return
        if not bars:
            bars.append(
                tqdm(total=total, unit="step", desc=f"core {labels.name} {labels.task}", file=sys.stderr)
            )
        bars[0].total = total
        bars[0].n = done
        bars[0].refresh()

    result = evaluate_core(
        labels,
        graph,
        methods=methods,
        n_boot=args.n_boot,
        seed=args.seed,
        progress=progress,
        settings=settings,
        max_pairs=args.max_pairs,
        budget=args.budget,
        limit=args.limit,
        on_estimate=print_estimate,
    )
    for bar in bars:
        bar.close()
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        result.per_pair.to_csv(out, index=False)
        print(f"per-pair rows written to {out}", file=sys.stderr)
    doc = result.to_dict()
    if args.json:
        print_json(doc)
        return 0
    first = next(iter(doc["methods"].values()))
    print(
        f"{doc['dataset']} task {doc['task']}: {first['n_pairs']:,} test pairs"
        + (f" (sample of {doc['n_test_pairs']:,}, max_pairs {doc['max_pairs']})" if doc["max_pairs"] else "")
        + f", true positive rate {_fmt(first['true_positive_rate'])}; 95% bootstrap intervals"
    )
    print(
        f"{'method':<28}{'AUROC':>22}{'per-gene AUROC':>22}{'genes':>7}{'AUPRC':>8}{'pred+ rate':>11}{'Brier':>8}"
    )
    for m, v in doc["methods"].items():
        cells = []
        for metric in ("auroc", "macro_gene_auroc"):
            lo, hi = doc["ci"][m][metric]
            cells.append(f"{_fmt(v[metric])} [{_fmt(lo)}, {_fmt(hi)}]".rjust(22))
        n_fallback = doc["llm_calls"].get(m, {}).get("n_fallback")
        extra = f"  ({n_fallback} fallbacks)" if n_fallback else ""
        print(
            f"{m:<28}{''.join(cells)}{v['n_genes_macro']:>7}{_fmt(v['auprc']):>8}"
            f"{_fmt(v['predicted_positive_rate']):>11}{_fmt(doc['brier'][m]):>8}{extra}"
        )
    if doc["subset"]:
        print(f"note: the pairs are {doc['subset']}: the same subset for every method")
    print_llm_stats(doc)
    return 0


_EXPLAIN_METHODS = (
    "core_voting",
    "core_voting_crossline",
    "core_learned",
    "core_learned_crossline",
    "core_reasoning",
)


def _explain(args: argparse.Namespace) -> int:
    from perturb_core.data.registry import load_labels
    from perturb_core.errors import check_choice
    from perturb_core.evidence import (
        CROSSLINE_RELATION,
        CROSSLINE_SAME,
        core_index,
        core_learned,
        crossline_labels,
        explain,
        learned_index,
    )
    from perturb_core.kg import load_graph

    method = check_choice("method of core explain", args.method, _EXPLAIN_METHODS)
    settings = llm_settings(args)
    labels = load_labels(args.dataset, args.task, settings)
    graph = load_graph(settings)
    xl = crossline_labels(labels, settings) if method.endswith("_crossline") else None
    learned = method.startswith("core_learned")
    index = learned_index(labels, graph, crossline=xl) if learned else core_index(labels, graph, crossline=xl)
    ex = explain(
        labels, graph, perturbation=args.perturbation, gene=args.gene, budget=args.budget, index=index
    )
    doc = {"method": method, **ex.to_dict()}
    if xl is not None:
        items = [
            it
            for side in ("positive", "negative")
            for it in doc[side]
            if {CROSSLINE_RELATION, CROSSLINE_SAME} & set(it["relations"])
        ]
        sources = [r for r in (CROSSLINE_RELATION, CROSSLINE_SAME) if r in index.model.relations_used]
        doc["crossline"] = {
            "lines": [o.name for o in xl],
            "relation": CROSSLINE_RELATION,
            "sources": sources,
            "items": items,
        }
    if learned:
        model = core_learned(index)
        pc, gc = labels.pair_codes([ex.perturbation], [ex.gene])
        contrib = model.contributions(int(pc[0]), int(gc[0]))
        doc["voting_score"] = doc["score"]
        doc["score"] = float(model.score(pc, gc)["score"].iat[0])
        doc["gene_auroc"], doc["gene_auroc_n"] = model.gene_auroc(int(gc[0]))
        doc["features"] = [
            {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
            for row in contrib.to_dict(orient="records")
        ]
        doc["model"] = model.to_dict()
        doc["note"] = (
            f"{method}: a boosted model over the evidence features; each feature's contribution is the change "
            "in log-odds when it is set to its training median. The items below are the CORE-Voting evidence."
        )
    if method == "core_reasoning":
        doc.update(_reasoning_doc(labels, graph, ex, index, settings, args.budget))
    if args.json:
        print_json(doc)
        return 0
    truth = "unlabelled" if doc["label"] is None else f"label {doc['label']} ({doc['split']})"
    print(
        f"{doc['perturbation']} -> {doc['gene']} in {doc['cell_line']} ({doc['dataset']}, {doc['task']}): {truth}"
    )
    gf = doc["gene_frequency"]
    print(
        f"score {_fmt(doc['score'])}  vote {_fmt(doc['vote'])}  prior {_fmt(doc['prior'])} "
        f"({gf['n_responded']}/{gf['n_measured']} training perturbations)  "
        f"gene AUROC {_fmt(doc['gene_auroc'])} over {doc['gene_auroc_n']} test pairs"
    )
    print(doc["note"])
    for side in ("positive", "negative"):
        print(f"{side} evidence ({doc[f'n_{side}']}):")
        for it in doc[side][: args.show]:
            path = " -> ".join(it["path_names"])
            print(f"  {it['perturbation']:<16} w={it['weight']:.3g}  {it['relation']}: {path}")
        if doc[f"n_{side}"] > args.show:
            print(f"  ... {doc[f'n_{side}'] - args.show} more (use --json for all)")
    print(f"unmeasured related perturbations: {doc['n_unmeasured']}")
    for f in doc.get("features", [])[: args.show]:
        print(f"  {f['feature']:<48} value {_fmt(f['value'])}  contribution {f['contribution']:+.3f}")
    if doc.get("llm"):
        llm = doc["llm"]
        origin = "FALLBACK to CORE-Voting (not an LLM answer)" if llm["fallback"] else "the LLM's probability"
        print(
            f"core_reasoning: score {_fmt(doc['score'])} = {origin}; model {llm['model']}, answer format "
            f"{llm['answer_format_used']}, cache_hit={llm['cache_hit']}, {llm['elapsed_s']:.2f} s"
        )
        if llm["error"]:
            print(f"  why no probability: {llm['error']}")
        if llm["rationale"]:
            print(f"  rationale: {llm['rationale']}")
    return 0


def _reasoning_doc(labels: Any, graph: Any, ex: Any, index: Any, settings: Any, budget: int | None) -> dict:
    """The ``llm`` section of ``core explain --method core_reasoning``: one CORE-Reasoning call."""
    import pandas as pd

    from perturb_core.evidence import DEFAULT_BUDGET, core_reasoning
    from perturb_core.llm import LLM

    row = core_reasoning(
        labels,
        graph,
        pd.DataFrame({"pert": [ex.perturbation], "gene": [ex.gene]}),
        llm=LLM.from_settings(settings),
        budget=DEFAULT_BUDGET if budget is None else budget,
        index=index,
    ).iloc[0]
    fallback = bool(row["fallback"])
    return {
        "voting_score": ex.to_dict()["score"],
        "score": float(row["score"]),
        "note": (
            "core_reasoning: the LLM's probability given this evidence (the items below); "
            + ("its answer was unusable, so the score is the CORE-Voting FALLBACK" if fallback else "")
        ).rstrip("; "),
        "llm": {
            "model": settings.llm_model,
            "probability": None if pd.isna(row["probability"]) else float(row["probability"]),
            "fallback": fallback,
            "error": row["error"],
            "rationale": row["rationale"],
            "raw_answer": row["raw"],
            "cache_hit": bool(row["cache_hit"]),
            "prompt_hash": row["prompt_hash"],
            "prompt": row["prompt"],
            "answer_format_used": row["answer_format_used"],
            "format_note": row["format_note"],
            "prompt_tokens": None if pd.isna(row["prompt_tokens"]) else int(row["prompt_tokens"]),
            "completion_tokens": None if pd.isna(row["completion_tokens"]) else int(row["completion_tokens"]),
            "elapsed_s": round(float(row["elapsed_s"]), 4),
        },
    }


def _methods(args: argparse.Namespace) -> int:
    from perturb_core.evaluate.core import CORE_METHODS
    from perturb_core.evidence import (
        CROSSLINE_LABEL,
        CROSSLINE_RELATION,
        CROSSLINE_SAME,
        CROSSLINE_SAME_LABEL,
        RELATION_SPECS,
    )

    doc = {
        "methods": {
            m: {"label": s.label, "definition": s.definition, "needs_llm": s.needs_llm}
            for m, s in CORE_METHODS.items()
        },
        "relations": {
            **{
                r: {"kind": s.kind, "label": s.label, "description": s.description, "leaky": s.leaky}
                for r, s in RELATION_SPECS.items()
            },
            CROSSLINE_RELATION: {
                "kind": "knockdown",
                "label": CROSSLINE_LABEL,
                "description": "p and p' respond alike in the other PerturbQA lines' TRAINING labels "
                "(cross-line methods only)",
                "leaky": False,
            },
            CROSSLINE_SAME: {
                "kind": "knockdown",
                "label": CROSSLINE_SAME_LABEL,
                "description": "p itself in the other PerturbQA lines' TRAINING labels: did g respond "
                "to p there (core_voting_crossline only)",
                "leaky": False,
            },
        },
    }
    if args.json:
        print_json(doc)
        return 0
    print("methods (core evaluate --methods):")
    for m, v in doc["methods"].items():
        print(f"  {m:<28} {v['label']}")
    print("relations (knockdown / drug):")
    for r, v in doc["relations"].items():
        print(f"  {r:<22} {v['kind']:<10} {v['description']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``core`` command group."""
    p = sub.add_parser("core", help="CORE: evidence voting / reasoning on gene response labels")
    csub = p.add_subparsers(dest="command", required=True)

    e = csub.add_parser("evaluate", help="evaluate methods on a label set's test split")
    e.add_argument("--dataset", required=True, help="perturbqa-k562, perturbqa-rpe1, ..., tahoe-c32, ...")
    e.add_argument("--task", default="de", choices=("de", "dir"), help="de: responds or not; dir: up or down")
    e.add_argument(
        "--methods",
        default="gene_frequency,core_voting",
        help="comma-separated methods, or 'all' / 'non-llm'; see `core methods`",
    )
    e.add_argument("--max-pairs", type=int, default=None, help="evaluate a seeded sample of whole genes")
    e.add_argument("--seed", type=int, default=0, help="sample, random-method and bootstrap seed (default 0)")
    e.add_argument("--n-boot", type=int, default=200, help="bootstrap replicates (default 200)")
    e.add_argument("--budget", type=int, default=20, help="evidence items per CORE-Reasoning prompt")
    e.add_argument(
        "--limit",
        type=int,
        default=None,
        help="a seeded random subset of N test pairs (after --max-pairs), the same for every method",
    )
    e.add_argument("--answer-format", choices=ANSWER_FORMATS, default=None, help=_FORMAT_HELP)
    e.add_argument("--out", default=None, help="write per-pair rows to this CSV")
    e.add_argument("--json", action="store_true", help="machine-readable output (contract in DESIGN.md)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=_evaluate)

    x = csub.add_parser("explain", help="the evidence behind one (perturbation, gene) prediction")
    x.add_argument("--dataset", required=True)
    x.add_argument("--perturbation", required=True, help="knocked-down gene or drug (any spelling)")
    x.add_argument("--gene", required=True)
    x.add_argument("--task", default="de", choices=("de", "dir"))
    x.add_argument(
        "--budget", type=int, default=None, help="at most N labelled evidence items (default: all)"
    )
    x.add_argument("--show", type=int, default=10, help="items per side in the text output")
    x.add_argument(
        "--method",
        default="core_voting",
        help=f"whose score to explain: {', '.join(_EXPLAIN_METHODS)} (cross-line: other PerturbQA lines' "
        "training labels; core_reasoning asks the configured LLM once)",
    )
    x.add_argument("--answer-format", choices=ANSWER_FORMATS, default=None, help=_FORMAT_HELP)
    x.add_argument("--json", action="store_true", help="machine-readable output")
    x.set_defaults(func=_explain)

    m = csub.add_parser("methods", help="list methods and relations")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_methods)
