"""Evaluation of LGR and CORE methods on seeded splits / test pairs of real data (one harness each)."""

from perturb_core.evaluate.core import CORE_METHODS, CORE_NON_LLM_METHODS, COREResult, evaluate_core
from perturb_core.evaluate.lgr import LGR_METHODS, LGR_NON_LLM_METHODS, LGRResult, evaluate_lgr

__all__ = [  # noqa: RUF022 (grouped, not sorted)
    # LGR
    "LGR_METHODS",
    "LGR_NON_LLM_METHODS",
    "LGRResult",
    "evaluate_lgr",
    # CORE
    "CORE_METHODS",
    "CORE_NON_LLM_METHODS",
    "COREResult",
    "evaluate_core",
]
