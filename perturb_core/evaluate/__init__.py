"""Evaluation of LGR (and, from their own module, CORE) methods on seeded splits of real data."""

from perturb_core.evaluate.lgr import LGR_METHODS, LGR_NON_LLM_METHODS, LGRResult, evaluate_lgr

__all__ = [
    "LGR_METHODS",
    "LGR_NON_LLM_METHODS",
    "LGRResult",
    "evaluate_lgr",
]
