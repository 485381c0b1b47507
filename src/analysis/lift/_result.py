"""The result record every lift design returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


def _clean(value: Any) -> Any:
    """Turn numpy scalars, NaN and infinities into JSON-safe plain values (see ``analysis.results``)."""
    from analysis.results import json_safe

    return json_safe(value)


@dataclass(frozen=True)
class LiftResult:
    """Common fields of every lift estimate.

    Attributes
    ----------
    design : str
        Short name of the design (``"synthetic_control"``, ``"causal_impact"``, ``"did"``, ``"survey"``, ...).
    metric : str
        The outcome analysed.
    effect : float
        The estimated effect in the outcome's units (per post-period day for time-series designs; a
        difference of proportions for surveys).
    ci_low, ci_high : float
        Bounds of the ``1 - alpha`` interval of ``effect``.
    p_value : float or None
        Two-sided p-value of the null of no effect, where the design defines one.
    relative_effect : float or None
        ``effect`` over the counterfactual level.
    alpha : float
        Significance level of the interval.
    """

    design: str
    metric: str
    effect: float
    ci_low: float
    ci_high: float
    p_value: float | None
    relative_effect: float | None
    alpha: float = 0.05
    relative_ci_low: float | None = None
    relative_ci_high: float | None = None
    warnings: tuple[str, ...] = field(default=())

    def summary(self) -> pd.DataFrame:
        """One tidy row: design, metric, effect, interval, p-value, relative effect."""
        return pd.DataFrame([{
            "design": self.design, "metric": self.metric, "effect": self.effect,
            "ci_low": self.ci_low, "ci_high": self.ci_high, "p_value": self.p_value,
            "relative_effect": self.relative_effect, "relative_ci_low": self.relative_ci_low,
            "relative_ci_high": self.relative_ci_high,
        }])

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` lift entry (CONTRACT section 3), JSON-safe."""
        return _clean({
            "design": self.design, "metric": self.metric, "effect": self.effect,
            "ci_low": self.ci_low, "ci_high": self.ci_high, "relative_effect": self.relative_effect,
            "relative_ci_low": self.relative_ci_low, "relative_ci_high": self.relative_ci_high,
            "p_value": self.p_value, "warnings": list(self.warnings),
        })

    @property
    def significant(self) -> bool:
        """Whether the interval excludes zero."""
        return bool(self.ci_low > 0 or self.ci_high < 0)
