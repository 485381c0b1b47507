"""Incrementality designs: was the campaign's effect real?

Submodules
----------
synth
    ``synthetic_control`` (outcome-only, V-weighted covariates, ridge-augmented) with placebo inference.
its
    ``causal_impact``: structural time series on statsmodels' ``UnobservedComponents``.
did
    ``did`` (2x2 and two-way fixed effects), ``event_study``, ``staggered_did`` (Callaway-Sant'Anna).
survey
    ``proportion_lift``, ``bayes_uplift``, multiple-question correction, ``cuped``, ``ratio_delta``.
power
    ``power``: sample size and minimum detectable effect; simulation-based power for geo tests.

Every design returns a frozen result with ``effect``, ``ci_low``, ``ci_high``, ``p_value``,
``relative_effect``, ``summary()``, ``plot(ax=None)`` and ``to_dict()``.
"""

from __future__ import annotations

import importlib
from typing import Any

from analysis.lift._result import LiftResult

_EXPORTS = {
    "synthetic_control": "synth",
    "geo_panel": "synth",
    "geo_lift": "synth",
    "causal_impact": "its",
    "did": "did",
    "event_study": "did",
    "staggered_did": "did",
    "staggered_panel": "did",
    "proportion_lift": "survey",
    "bayes_uplift": "survey",
    "adjust_pvalues": "survey",
    "survey_lift": "survey",
    "cuped": "survey",
    "ratio_delta": "survey",
    "power": "power",
    "geo_power": "power",
}

__all__ = ["LiftResult", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"analysis.lift.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'analysis.lift' has no attribute {name!r}")
