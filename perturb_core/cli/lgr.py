"""``python -m perturb_core lgr {evaluate,predict,compare,enrich,selectors,mechanisms}`` (contract in DESIGN.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from perturb_core.cli import print_json
from perturb_core.config import ANSWER_FORMATS, Settings, get_settings
from perturb_core.errors import ValidationError

if TYPE_CHECKING:
    from perturb_core.retrieval import QueryExplanation

_REGIMES = ("unseen-drug", "unseen-cell-line", "open-world")
_FORMAT_HELP = (
    "LLM answer format: text (the paper's <Final Answer> list), json (a schema with the pool as an enum; "
    "text where the server refuses it) or auto (default: PERTURB_CORE_LLM_ANSWER_FORMAT, else text)"
)


def llm_settings(args: argparse.Namespace) -> Settings:
    """Settings with ``--answer-format`` applied (when given)."""
    settings = get_settings()
    fmt = getattr(args, "answer_format", None)
    return settings.with_(llm_answer_format=fmt) if fmt else settings


def print_estimate(method: str, estimate: dict) -> None:
    """The cost estimate of an LLM method, on stderr (before any call is sent)."""
    from perturb_core.llm import format_estimate

    print(format_estimate(method, estimate), file=sys.stderr, flush=True)


def print_llm_stats(doc: dict) -> None:
    """One line per LLM method: answered, parse-failure and out-of-pool rates, formats, tokens, time."""
    pct = lambda v: "—" if v is None else f"{v:.0%}"  # noqa: E731
    for m, stats in (doc.get("llm_stats") or {}).items():
        fmts = stats["answer_format_used"]
        k = "" if stats.get("mean_k_used") is None else f", mean k_used {stats['mean_k_used']:.1f}"
        oop = (
            "" if stats.get("out_of_pool_rate") is None else f", out of pool {pct(stats['out_of_pool_rate'])}"
        )
        print(
            f"llm calls of {m}: answered {pct(stats['answered_rate'])} of {stats['n_queries']}, parse failures "
            f"{pct(stats['parse_failure_rate'])}{oop}{k}; formats json {fmts['json']} / text {fmts['text']} / "
            f"none {fmts['none']}; cache hits {stats['cache_hits']}; tokens {stats['prompt_tokens']} prompt + "
            f"{stats['completion_tokens']} completion (server counts); wall time {stats['wall_time_s']:.1f} s"
        )


def _method_list(text: str) -> list[str]:
    from perturb_core.evaluate.lgr import METHODS, NON_LLM_METHODS

    names = [m.strip() for m in text.split(",") if m.strip()]
    out: list[str] = []
    for m in names:
        expanded = {"all": list(METHODS), "non-llm": list(NON_LLM_METHODS)}.get(m, [m])
        out.extend(x for x in expanded if x not in out)
    return out


def _evaluate(args: argparse.Namespace) -> int:
    from perturb_core.evaluate.lgr import evaluate_lgr

    methods = _method_list(args.methods)
    if args.limit is not None and args.max_queries is not None and args.limit != args.max_queries:
        raise ValidationError(
            f"--limit {args.limit} and --max-queries {args.max_queries} disagree; give one (they mean the same)"
        )
    bars: list[tqdm] = []

    def progress(done: int, total: int) -> None:
        if args.quiet:
            return
        if not bars:
            bars.append(tqdm(total=total, unit="query", desc=f"lgr {args.regime}", file=sys.stderr))
        bars[0].n = done
        bars[0].refresh()

    result = evaluate_lgr(
        args.dataset,
        regime=args.regime,
        methods=methods,
        k=args.k,
        seed=args.seed,
        aggregation=args.aggregation,
        similarity_power=args.similarity_power,
        tune=args.tune,
        n_boot=args.n_boot,
        progress=progress,
        settings=llm_settings(args),
        max_queries=args.limit if args.limit is not None else args.max_queries,
        hybrid_min_k=args.hybrid_min_k,
        test_fraction=args.test_fraction,
        concurrency=args.concurrency,
        on_estimate=print_estimate,
    )
    for bar in bars:
        bar.close()
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        result.per_query.to_csv(out, index=False)
        print(f"per-query rows written to {out}", file=sys.stderr)
    if args.json:
        print_json(result.to_dict())
        return 0
    doc = result.to_dict()
    print(
        f"{doc['dataset']} {doc['regime']} k={doc['k']} seed={doc['seed']} split {doc['split_id']} "
        f"({doc['aggregation']}; metrics on {doc['n_eval_genes']} genes; 95% bootstrap intervals)"
    )
    if doc["subset"]:
        print(f"note: the queries are {doc['subset']}: the same subset for every method")
    for c in doc["tuning"]:
        print(
            f"  CV choice for {c['method']} ({c['applies_to']}): k={c['k']} p={c['similarity_power']:g} "
            f"(CV Pearson {c['cv_pearson']:.3f} on {c['n_cv_queries']} training queries)"
        )
    header = (
        f"{'method':<20}"
        + "".join(f"{m:>22}" for m in ("pearson", "sign_accuracy", "mse"))
        + f"{'r2_pred':>9}{'prec@k':>8}{'mrr':>7}{'n':>6}{'k_used':>8}{'fallbk':>8}"
    )
    print(header)
    for m, v in doc["methods"].items():
        cells = []
        for metric in ("pearson", "sign_accuracy", "mse"):
            lo, hi = doc["ci"][m][metric]
            val = v[metric]
            cells.append(
                f"{'—' if val is None else f'{val:.3f}'} [{'—' if lo is None else f'{lo:.3f}'}, {'—' if hi is None else f'{hi:.3f}'}]".rjust(
                    22
                )
            )
        k_used = "—" if v["mean_k_used"] is None else f"{v['mean_k_used']:.1f}"
        extra = "".join(
            f"{'—' if v[x] is None else f'{v[x]:.3f}':>{w}}"
            for x, w in (("r2_pred", 9), ("precision_at_k", 8), ("mrr", 7))
        )
        print(f"{m:<20}" + "".join(cells) + extra + f"{v['n_queries']:>6}{k_used:>8}{doc['fallbacks'][m]:>8}")
    for m, n in doc["fallbacks"].items():
        if n:
            print(
                f"note: {m}: {n} of {doc['methods'][m]['n_queries']} queries fell back (e.g. to chemistry "
                f"neighbours; {doc['failed'][m]} failed calls): those rows are not {m} results; see --out or --json"
            )
    print_llm_stats(doc)
    return 0


def _predict_query(args: argparse.Namespace) -> QueryExplanation:
    """The prediction the query options of ``lgr predict`` / ``lgr enrich`` ask for."""
    from perturb_core.retrieval import deprecated_selector_note, predict_query

    if note := deprecated_selector_note(args.selector):
        print(f"note: {note}", file=sys.stderr)
    return predict_query(
        args.dataset,
        cell_line=args.cell_line,
        drug=args.drug,
        selector=args.selector,
        k=args.k,
        aggregation=args.aggregation,
        similarity_power=args.similarity_power,
        regime=args.regime,
        seed=args.seed,
        settings=llm_settings(args),
        hybrid_min_k=args.hybrid_min_k,
    )


def _add_query_arguments(q: argparse.ArgumentParser) -> None:
    """The options that name one LGR query (``lgr predict``, ``lgr enrich``)."""
    q.add_argument("--dataset", default="tahoe")
    q.add_argument("--cell-line", required=True)
    q.add_argument("--drug", required=True)
    q.add_argument(
        "--selector",
        required=True,
        help="llm, kg_mechanism, chem_knn_retrieval, transcriptome_knn, random, oracle (see `lgr selectors`)",
    )
    q.add_argument("--k", type=int, default=10)
    q.add_argument("--regime", default="open-world", choices=_REGIMES)
    q.add_argument(
        "--aggregation",
        default=None,
        help="mean (paper), rank_weighted or residual (additive + mean neighbour residual); default: "
        "residual where the drug was measured in other lines (unseen-cell-line, open-world), mean for unseen-drug",
    )
    q.add_argument("--similarity-power", type=float, default=0.0, help="weights s^p (default 0)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--hybrid-min-k", type=int, default=3)
    q.add_argument("--answer-format", choices=ANSWER_FORMATS, default=None, help=_FORMAT_HELP)


def _predict(args: argparse.Namespace) -> int:
    ex = _predict_query(args)
    doc = ex.to_dict(n_top_genes=args.top_genes)
    if args.json:
        print_json(doc)
        return 0
    m = doc["metrics"]
    print(f"{doc['drug']} in {doc['cell_line']} ({doc['dataset']}, {doc['regime']}): {doc['predicted_by']}")
    print(f"k={doc['k']} k_used={doc['k_used']} pool={doc['pool_size']} fallback={doc['fallback'] or 'none'}")
    for n in doc["neighbours"]:
        sim = "—" if n["similarity"] is None else f"{n['similarity']:.2f}"
        own = "—" if n["own_pearson"] is None else f"{n['own_pearson']:+.2f}"
        print(f"  {n['rank']:>2}. {n['name']:<34} tanimoto {sim:>5}  own r {own:>6}  {n['justification']}")
    if doc["filtered"]:
        print(f"filtered (not in pool): {', '.join(doc['filtered'])}")
    fmt = lambda d: ", ".join(f"{k} {'—' if v is None else f'{v:.3f}'}" for k, v in d.items())  # noqa: E731
    print(
        f"prediction ({'FALLBACK, not ' + doc['selector'] if doc['fallback_only'] else doc['selector']}): {fmt(m)}"
    )
    for b, bm in doc["baselines"].items():
        print(f"  {b:<10} {fmt(bm)}")
    for direction, rows in ex.top_genes(args.top_genes).groupby("direction", sort=False):
        print(f"top {len(rows)} {direction}-regulated genes, predicted vs observed (* = in both lists):")
        for r in rows.itertuples():
            pred = f"{r.predicted_gene}{'*' if r.predicted_in_both else ''}"
            obs = f"{r.observed_gene}{'*' if r.observed_in_both else ''}"
            print(f"  {r.rank:>2}. {pred:<14} {r.predicted:+6.2f}    {obs:<14} {r.observed:+6.2f}")
    if doc["llm"]:
        llm = doc["llm"]
        note = f" ({llm['format_note']})" if llm.get("format_note") else ""
        print(
            f"llm: model {llm['model']} cache_hit={llm['cache_hit']} answer format {llm.get('answer_format_used')}"
            f"{note} {llm['elapsed_s']:.2f} s error={llm['error']}"
        )
    return 0


def _selectors(args: argparse.Namespace) -> int:
    from perturb_core.evaluate.lgr import METHODS
    from perturb_core.retrieval import SELECTORS

    doc = {
        "selectors": {
            s: {"label": spec.label, "definition": spec.definition} for s, spec in SELECTORS.items()
        },
        "methods": {
            m: {
                "kind": spec.fn.kind,
                "runs": spec.fn.target,
                "label": spec.label,
                "needs_llm": spec.needs_llm,
            }
            for m, spec in METHODS.items()
        },
    }
    if args.json:
        print_json(doc)
        return 0
    print("selectors (lgr predict --selector):")
    for s, v in doc["selectors"].items():
        print(f"  {s:<18} {v['label']}")
    print("methods (lgr evaluate --methods):")
    for m, v in doc["methods"].items():
        print(f"  {m:<18} {v['label']}")
    return 0


def _mechanisms(args: argparse.Namespace) -> int:
    from perturb_core.data.registry import load_drugs, load_signatures
    from perturb_core.retrieval.mechanism import annotate_drugs, drug_mechanism, tag_coverage

    settings = get_settings()
    if args.drug:
        doc = drug_mechanism(args.drug, settings=settings).to_dict()
        if args.json:
            print_json(doc)
        else:
            print(
                f"{doc['name']}: tags {', '.join(doc['tags']) or '—'}; programs {', '.join(doc['programs']) or '—'}"
            )
            for tag, src in doc["evidence"].items():
                print(f"  {tag}: {src}")
        return 0
    table = load_drugs(settings)
    annotated = annotate_drugs(table)
    ids = None
    if args.dataset:
        ds = load_signatures(args.dataset, settings)
        ids = [i for i in ds.adata.obs["drug_id"].astype(str).unique() if i in annotated.index]
        if not ids:
            raise ValidationError(f"no drug of dataset {ds.name!r} is in the drug table")
    cov = tag_coverage(annotated, ids)
    if args.json:
        print_json(cov)
        return 0
    print(
        f"{cov['n_drugs']} drugs: {cov['with_tags']} with mechanism tags ({cov['tag_fraction']:.0%}), "
        f"{cov['with_programs']} in one of the five programs ({cov['program_fraction']:.0%})"
    )
    for p, n in cov["per_program"].items():
        print(f"  {p:<36} {n}")
    print(f"untagged: {', '.join(cov['untagged']) or '—'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``lgr`` command group."""
    p = sub.add_parser("lgr", help="LLM-guided retrieval: evaluate methods, explain one prediction")
    lsub = p.add_subparsers(dest="command", required=True)

    e = lsub.add_parser("evaluate", help="evaluate methods on a regime's seeded split")
    e.add_argument(
        "--dataset", default="tahoe", help="signature dataset (tahoe, sciplex, openproblems, an import)"
    )
    e.add_argument("--regime", required=True, choices=_REGIMES)
    e.add_argument(
        "--methods",
        default="non-llm",
        help="comma-separated methods, or 'all' / 'non-llm' (default); see `lgr selectors`",
    )
    e.add_argument("--k", type=int, default=10, help="neighbours per query (default 10)")
    e.add_argument("--seed", type=int, default=0, help="split and method seed (default 0)")
    e.add_argument(
        "--aggregation",
        default=None,
        help="mean (paper), rank_weighted or residual (additive + mean neighbour residual); default: "
        "residual where the drug was measured in other lines (unseen-cell-line, open-world), mean for unseen-drug",
    )
    e.add_argument(
        "--similarity-power",
        type=float,
        default=0.0,
        help="weights s^p for selectors with a similarity (default 0)",
    )
    e.add_argument(
        "--tune",
        action="store_true",
        help="choose k and the similarity power of each non-LLM selector by 4-fold CV over TRAINING lines/drugs",
    )
    e.add_argument("--max-queries", type=int, default=None, help="evaluate a seeded subset of test pairs")
    e.add_argument(
        "--limit",
        type=int,
        default=None,
        help="same as --max-queries: a seeded subset of N test pairs, the same for every method",
    )
    e.add_argument("--answer-format", choices=ANSWER_FORMATS, default=None, help=_FORMAT_HELP)
    e.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates (default 1000)")
    e.add_argument(
        "--hybrid-min-k", type=int, default=3, help="pad with chemistry below this k_used (default 3)"
    )
    e.add_argument("--test-fraction", type=float, default=0.2, help="held-out fraction (default 0.2)")
    e.add_argument(
        "--concurrency", type=int, default=None, help="parallel LLM requests (default: [llm] concurrency)"
    )
    e.add_argument("--out", default=None, help="write per-query rows to this CSV")
    e.add_argument("--json", action="store_true", help="machine-readable output (contract in DESIGN.md)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=_evaluate)

    q = lsub.add_parser("predict", help="predict one (cell line, drug) and explain it")
    _add_query_arguments(q)
    q.add_argument(
        "--top-genes", type=int, default=10, help="up- and down-regulated genes to list (default 10)"
    )
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=_predict)

    s = lsub.add_parser("selectors", help="list selectors and evaluable methods")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_selectors)

    m = lsub.add_parser("mechanisms", help="mechanism-tag coverage of a dataset, or one drug's tags")
    m.add_argument("--dataset", default=None, help="restrict coverage to this dataset's drugs")
    m.add_argument("--drug", default=None, help="show one drug's tags, programs and their evidence")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_mechanisms)

    from perturb_core.cli.compare import add_parser as add_compare_parser  # lgr compare (issue 13)

    add_compare_parser(lsub)
    _register_enrich(lsub)


# --------------------------------------------------------------------------- lgr enrich (issue 13)


def _enrich(args: argparse.Namespace) -> int:
    from perturb_core.explore import SOURCE_LABELS, lgr_enrichment

    settings = llm_settings(args)
    if not args.quiet:
        print("… predicting the query", file=sys.stderr)
    ex = _predict_query(args)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()] if args.sources else None
    res = lgr_enrichment(
        ex,
        sources=sources,
        n_top=args.n_top,
        hide_uninformative=args.hide_uninformative,
        min_size=args.min_size,
        max_size=args.max_size,
        alpha=args.alpha,
        settings=settings,
    )
    doc = {
        "dataset": ex.dataset,
        "cell_line": ex.cell_line,
        "drug": ex.drug,
        "selector": ex.selector,
        "selector_label": ex.selector_label,
        "k_used": ex.k_used,
        "regime": ex.regime,
        "fallback": ex.fallback,
        "units": "delta values are rank scores (inverse-normal of the rank) in the Tahoe-format datasets",
        **res.to_dict(limit=args.limit),
    }
    if args.json:
        print_json(doc)
        return 0
    print(
        f"{doc['drug']} in {doc['cell_line']} ({doc['dataset']}, {doc['regime']}): {doc['selector_label']}, "
        f"k_used {doc['k_used']}"
    )
    print(
        f"top {res.n_top} genes per list; universe N = {res.universe_size} ({doc['universe']}); "
        f"{doc['test']}; set size {res.min_size}..{res.max_size}"
    )
    if res.hidden:
        print(f"hidden: {res.n_hidden} genes ({doc['hide_rule']})")
    for d, s in doc["summary"].items():
        print(
            f"{d}: enriched (q < {res.alpha:g}) predicted {s['predicted']}, observed {s['observed']}, both "
            f"{s['both']}; top genes shared {s['shared_genes']}; shared among the 20 smallest p {s['shared_best_20']}"
        )
        side = res.side_by_side(d, args.limit)  # type: ignore[arg-type]
        for r in side.itertuples():
            cells = []
            for prefix in ("predicted", "observed"):
                term = getattr(r, f"{prefix}_term")
                if isinstance(term, str):
                    src = SOURCE_LABELS.get(getattr(r, f"{prefix}_source"), "")
                    cells.append(f"{term[:44]:<44} {src[:12]:<12} {getattr(r, f'{prefix}_q'):.2g}")
                else:
                    cells.append(" " * 62)
            print(f"  {cells[0]} | {cells[1]}")
    return 0


def _register_enrich(lsub: argparse._SubParsersAction) -> None:
    q = lsub.add_parser(
        "enrich", help="pathway enrichment of one prediction's top genes vs the observed ones"
    )
    _add_query_arguments(q)
    q.add_argument("--n-top", type=int, default=50, help="genes per top list (default 50)")
    q.add_argument(
        "--hide-uninformative",
        action="store_true",
        help="hide ribosomal (RPL/RPS), mitochondrial (MT-), non-coding and bare-Ensembl genes (see docs/explore.md)",
    )
    q.add_argument(
        "--sources",
        default=None,
        help="gene-set sources (default all: reactome,wikipathways,pid,go_bp,go_mf,go_cc)",
    )
    q.add_argument("--min-size", type=int, default=5, help="smallest gene set after intersecting (default 5)")
    q.add_argument("--max-size", type=int, default=500, help="largest gene set (default 500)")
    q.add_argument(
        "--alpha", type=float, default=0.05, help="q threshold for an enriched term (default 0.05)"
    )
    q.add_argument("--limit", type=int, default=15, help="terms listed per list (default 15)")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.add_argument("--quiet", action="store_true", help="no progress messages")
    q.set_defaults(func=_enrich)
