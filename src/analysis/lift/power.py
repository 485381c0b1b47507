"""Power: sample sizes and minimum detectable effects for surveys, simulated power for geo tests.

Functions
---------
power
    Two-proportion (brand-lift survey) sample size per group, or the minimum detectable effect for a
    given size, by Cohen's arcsine effect size (statsmodels ``NormalIndPower``) or the unpooled normal
    approximation.
geo_power
    Simulation-based power of a geo test from pre-period data, as GeoLift does: lifts are injected into
    historical windows of the treated regions and the detection rate is measured, with the test's
    critical value calibrated on the same effect-free windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from analysis.lift._result import _clean

__all__ = ["GeoPowerResult", "PowerResult", "geo_power", "power"]


@dataclass(frozen=True)
class PowerResult:
    """Sample size or minimum detectable effect of a two-proportion comparison.

    Attributes
    ----------
    baseline : float
        Control proportion.
    mde : float
        Minimum detectable absolute difference (treatment minus control).
    relative_mde : float
        ``mde / baseline``.
    n_control, n_treatment : int
        Respondents per group (rounded up).
    power, alpha, ratio : float
        Target power, two-sided level, and ``n_treatment / n_control``.
    method : str
        ``"arcsine"`` (Cohen's h with ``NormalIndPower``) or ``"normal"`` (unpooled normal approximation).
    """

    baseline: float
    mde: float
    relative_mde: float
    n_control: int
    n_treatment: int
    power: float
    alpha: float
    ratio: float
    method: str

    def summary(self) -> pd.DataFrame:
        """One tidy row."""
        return pd.DataFrame([self.to_dict()])

    def to_dict(self) -> dict[str, Any]:
        return _clean({k: getattr(self, k) for k in ("baseline", "mde", "relative_mde", "n_control",
                                                      "n_treatment", "power", "alpha", "ratio", "method")})

    def reading(self) -> str:
        """One plain-language sentence."""
        return (f"With {self.n_control:,} control and {self.n_treatment:,} exposed respondents, a lift from "
                f"{self.baseline:.1%} to {self.baseline + self.mde:.1%} ({self.relative_mde:+.1%}) is detected "
                f"{self.power:.0%} of the time at a {self.alpha:.0%} two-sided level.")

    def plot(self, ax=None):
        """Power curve against the absolute lift for this sample size."""
        from analysis.plotting import axes

        ax = axes(ax, figsize=(6, 3.5))
        hi = min(1 - self.baseline - 1e-6, 2.5 * self.mde)
        d = np.linspace(0, hi, 200)
        pw = [_power_at(self.baseline, x, self.n_control, self.ratio, self.alpha, self.method) for x in d]
        ax.plot(100 * d, pw)
        ax.axhline(self.power, color="grey", ls=":")
        ax.axvline(100 * self.mde, color="grey", ls=":")
        ax.set_xlabel("lift (percentage points)")
        ax.set_ylabel("power")
        ax.set_title(f"Power with n = {self.n_control:,} control / {self.n_treatment:,} exposed")
        return ax


def _power_at(p1: float, d: float, n1: float, ratio: float, alpha: float, method: str) -> float:
    p2 = p1 + d
    if d == 0:
        return alpha
    if not 0 < p2 < 1:
        return float("nan")
    if method == "arcsine":
        h = proportion_effectsize(p2, p1)
        return float(NormalIndPower().power(effect_size=h, nobs1=n1, alpha=alpha, ratio=ratio))
    z = stats.norm.ppf(1 - alpha / 2)
    n2 = ratio * n1
    pbar = (p1 * n1 + p2 * n2) / (n1 + n2)
    se0 = math.sqrt(pbar * (1 - pbar) * (1 / n1 + 1 / n2))
    se1 = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return float(stats.norm.cdf((abs(d) - z * se0) / se1) + stats.norm.cdf((-abs(d) - z * se0) / se1))


def _n_normal(p1: float, d: float, ratio: float, alpha: float, power: float) -> float:
    """Control-group size by the normal approximation (pooled variance under H0, unpooled under H1)."""
    p2 = p1 + d
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    pbar = (p1 + ratio * p2) / (1 + ratio)
    num = za * math.sqrt(pbar * (1 - pbar) * (1 + 1 / ratio)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / ratio)
    return num ** 2 / d ** 2


def power(*, baseline: float, mde: float | None = None, n: int | None = None, alpha: float = 0.05,
          power: float = 0.8, ratio: float = 1.0, relative: bool = False, method: str = "arcsine") -> PowerResult:
    """Sample size per group, or minimum detectable effect, for a two-proportion survey.

    Give ``mde`` to get the sample size, or ``n`` (control respondents) to get the minimum detectable
    effect.

    Parameters
    ----------
    baseline : float
        Expected control proportion (e.g. ad recall among unexposed respondents), in (0, 1).
    mde : float, optional
        Lift to detect: absolute (percentage points as a fraction, e.g. 0.03) or, with ``relative=True``,
        relative to ``baseline`` (e.g. 0.10 for +10 %).
    n : int, optional
        Control respondents; the exposed group has ``ratio * n``.
    alpha : float
        Two-sided significance level.
    power : float
        Target power.
    ratio : float
        Exposed-to-control size ratio.
    relative : bool
        Whether ``mde`` (and nothing else) is relative to ``baseline``.
    method : {"arcsine", "normal"}
        ``"arcsine"``: Cohen's h with statsmodels ``NormalIndPower``; ``"normal"``: the textbook normal
        approximation (pooled variance under the null, unpooled under the alternative).

    Examples
    --------
    >>> power(baseline=0.10, mde=0.02).n_control
    3835
    """
    if not 0 < baseline < 1:
        raise ValueError(f"baseline must be a proportion strictly between 0 and 1, got {baseline}.")
    if (mde is None) == (n is None):
        raise ValueError("Give exactly one of `mde` (to get the sample size) or `n` (to get the minimum "
                         "detectable effect).")
    if method not in ("arcsine", "normal"):
        raise ValueError(f"method must be 'arcsine' or 'normal', got {method!r}.")
    if not 0 < alpha < 1 or not 0 < power < 1 or ratio <= 0:
        raise ValueError("alpha and power must lie in (0, 1) and ratio must be positive.")
    if mde is not None:
        d = mde * baseline if relative else mde
        if d == 0 or not 0 < baseline + d < 1:
            raise ValueError(f"The lift must be non-zero and keep the exposed proportion in (0, 1); got "
                             f"{baseline} + {d}.")
        if method == "arcsine":
            n1 = NormalIndPower().solve_power(effect_size=proportion_effectsize(baseline + d, baseline),
                                              alpha=alpha, power=power, ratio=ratio)
        else:
            n1 = _n_normal(baseline, d, ratio, alpha, power)
        n1 = int(math.ceil(float(np.squeeze(n1)) - 1e-9))
    else:
        n1 = int(n)
        if n1 < 2:
            raise ValueError("n must be at least 2.")
        hi = 1 - baseline - 1e-9
        if _power_at(baseline, hi, n1, ratio, alpha, method) < power:
            raise ValueError(f"Even the largest possible lift is detected with less than {power:.0%} power "
                             f"at n = {n1}.")
        d = optimize.brentq(lambda x: _power_at(baseline, x, n1, ratio, alpha, method) - power, 1e-9, hi,
                            xtol=1e-10)
    return PowerResult(baseline=baseline, mde=float(d), relative_mde=float(d / baseline), n_control=n1,
                       n_treatment=int(math.ceil(ratio * n1 - 1e-9)), power=power, alpha=alpha,
                       ratio=ratio, method=method)


# --------------------------------------------------------------------------------------------------
# geo power by simulation
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GeoPowerResult:
    """Simulated power of a geo test.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per effect size: ``effect_size`` (relative lift injected), ``power`` (share of simulated
        windows where the test rejects at ``alpha``), ``mean_estimate`` and ``rmse`` of the estimated
        relative lift. The row with effect size 0 is the false-positive rate.
    test_days, n_sims : int
    alpha : float
    treated_units : tuple of str
    critical_value : float
        The test's critical value for the absolute estimated relative lift: ``t(1 - alpha/2, df)`` times
        the root mean square of the effect-free windows' estimates. A campaign window of ``test_days``
        days, estimated the same way (treated total on control total over the ``pre_days`` before it),
        is significant when its absolute relative lift exceeds it.
    pre_days : int
        Days of history before each window used to fit.
    df : int
        Degrees of freedom of the critical value (disjoint test windows in the history, minus one).
    """

    table: pd.DataFrame
    test_days: int
    n_sims: int
    alpha: float
    treated_units: tuple[str, ...]
    target_power: float = 0.8
    warnings: tuple[str, ...] = field(default=())
    critical_value: float = float("nan")
    pre_days: int = 0
    df: int = 0

    @property
    def mde(self) -> float | None:
        """Smallest simulated effect size reaching ``target_power`` (None if none does)."""
        t = self.table[(self.table["effect_size"] > 0) & (self.table["power"] >= self.target_power)]
        return None if t.empty else float(t["effect_size"].min())

    def summary(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        return _clean({"test_days": self.test_days, "n_sims": self.n_sims, "alpha": self.alpha,
                       "mde": self.mde, "treated_units": list(self.treated_units),
                       "critical_value": self.critical_value, "pre_days": self.pre_days, "df": self.df,
                       "table": self.table.to_dict(orient="list"), "warnings": list(self.warnings)})

    def reading(self) -> str:
        """One plain-language sentence."""
        if self.mde is None:
            return (f"No simulated lift up to {self.table['effect_size'].max():.0%} is detected with "
                    f"{self.target_power:.0%} power in a {self.test_days}-day test.")
        return (f"A {self.test_days}-day test in these regions detects a lift of {self.mde:.0%} or more "
                f"with at least {self.target_power:.0%} power; an estimated lift beyond "
                f"\u00b1{self.critical_value:.1%} in the campaign window is significant at {self.alpha:.0%}.")

    def plot(self, ax=None):
        """Power curve over the simulated effect sizes."""
        from analysis.plotting import axes

        ax = axes(ax, figsize=(6, 3.5))
        t = self.table.sort_values("effect_size")
        ax.plot(100 * t["effect_size"], t["power"], marker="o")
        ax.axhline(self.target_power, color="grey", ls=":")
        ax.axhline(self.alpha, color="grey", ls="--", lw=0.8)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("injected lift (%)")
        ax.set_ylabel("power")
        ax.set_title(f"Geo test power ({self.test_days} days, {self.n_sims} simulations)")
        return ax


def _window_estimate(tr: np.ndarray, ct: np.ndarray, pre: slice, post: slice) -> float:
    """Relative lift of the window: ``treated = a + b * control`` fitted on the pre period, the window
    compared with that counterfactual (mean gap over mean counterfactual)."""
    y, x = tr[pre], ct[pre]
    vx = np.var(x)
    b = np.cov(x, y, bias=True)[0, 1] / vx if vx > 0 else 0.0
    a = y.mean() - b * x.mean()
    cf_post = a + b * ct[post]
    return float((tr[post] - cf_post).mean() / cf_post.mean())


def geo_power(panel: pd.DataFrame, *, unit: str, time: str, outcome: str, treated_units, effect_sizes=(
        0.0, 0.02, 0.05, 0.1, 0.2), n_sims: int = 200, test_days: int = 14, pre_days: int | None = None,
        alpha: float = 0.1, target_power: float = 0.8, seed: int = 0,
        show_progress: bool | None = None) -> GeoPowerResult:
    """Simulated power of a geo experiment, from historical (pre-campaign) data.

    For each of ``n_sims`` historical windows of ``test_days`` days (end points drawn with ``seed``,
    distinct while the history allows), and each effect size, the treated regions' outcome is multiplied
    by ``1 + effect`` inside the window. The lift is estimated by fitting the treated total on the control
    total over the preceding ``pre_days`` (a difference-in-differences with a fitted scale, on aggregated
    series).

    The test is calibrated on the history itself, from the effect-free simulations (as GeoLift
    calibrates its power analysis on historical windows): the estimate of a window without effect has a
    spread ``s``, the root mean square of the effect-free windows' estimates, and a window is significant
    when ``|estimate| > t(1 - alpha/2, d) * s``. The degrees of freedom ``d`` are the number of disjoint
    ``test_days`` windows after the first fit, minus one: the simulated windows overlap heavily, so they
    hold far fewer independent draws than ``n_sims``, and the t quantile carries the uncertainty of ``s``.
    Power is the share of windows with an injected lift that this test detects; at effect 0 it is the
    share of the same effect-free windows it flags, which is below ``alpha`` (they also set ``s``). The
    critical value (:attr:`GeoPowerResult.critical_value`) applies to the real campaign window.

    Measured on 400 simulated AR(1) histories (phi = 0.6, 16 regions, 3 treated, 240 days, 14-day tests,
    200 windows, alpha = 10 %), testing the 14 days after each history with its critical value: 9.8 %
    false positives (39 of 400; binomial SE 1.5 points); 6.8 % of the historical windows themselves are
    flagged, and a 5 % lift is detected in 67 % of them. Calibrating
    by the rank of the window among the effect-free windows instead (the 90 % quantile of their absolute
    estimates) is exact on those windows by construction but gave 12.3-14.7 % on the next window, because
    a tail quantile from a handful of independent windows is noisy; a moving-block (conformal) test of
    each window, used before, gave 11.9 % (11.7 % with contiguous instead of cyclic blocks: with 70 days
    of AR(0.6) residuals its permutation distribution is only approximate).

    Parameters
    ----------
    panel : pandas.DataFrame
        Long region-by-day history without the campaign (``unit``, ``time``, ``outcome``).
    unit, time, outcome : str
        Columns.
    treated_units : iterable of str
        Regions that would be treated; all others are controls.
    effect_sizes : iterable of float
        Relative lifts to inject (0.05 = +5 %). Zero is always added.
    n_sims : int
        Simulated windows.
    test_days : int
        Length of the test.
    pre_days : int, optional
        Days of history before each window used to fit (default: ``max(4 * test_days, 28)``).
    alpha : float
        Significance level (GeoLift's default is 0.1).
    target_power : float
        Power defining the minimum detectable effect.
    seed : int
        Seed of the window draws.
    show_progress : bool, optional
        Progress bar over effect sizes.
    """
    from analysis.progress import progress

    miss = [c for c in (unit, time, outcome) if c not in panel]
    if miss:
        raise ValueError(f"Column(s) not found in panel: {miss}.")
    treated = {str(u) for u in ([treated_units] if isinstance(treated_units, str) else treated_units)}
    units = panel[unit].astype(str)
    unknown = treated - set(units.unique())
    if unknown:
        raise ValueError(f"Treated unit(s) not in the panel: {sorted(unknown)[:5]}.")
    if not (set(units.unique()) - treated):
        raise ValueError("Every unit is treated: geo_power needs control units.")
    wide = (panel.assign(_u=units).pivot_table(index=time, columns="_u", values=outcome, aggfunc="sum")
            .sort_index())
    wide = wide.dropna()
    tr = wide[sorted(treated)].sum(axis=1).to_numpy(float)
    ct = wide.drop(columns=sorted(treated)).sum(axis=1).to_numpy(float)
    T = len(tr)
    pre_days = int(pre_days) if pre_days is not None else max(4 * test_days, 28)
    if pre_days < 2 * test_days:
        raise ValueError("pre_days must be at least twice test_days to form placebo windows.")
    first_end = pre_days + test_days
    if T < first_end:
        raise ValueError(f"The panel has {T} complete days; {pre_days} pre-period days plus {test_days} test "
                         "days are needed.")
    rng = np.random.default_rng(seed)
    n_ends = T + 1 - first_end
    if n_sims <= n_ends:
        ends = first_end + rng.choice(n_ends, size=n_sims, replace=False)
    else:
        ends = rng.integers(first_end, T + 1, size=n_sims)
    sizes = sorted({0.0, *(float(e) for e in effect_sizes)})

    def estimates(eff: float) -> np.ndarray:
        out = np.empty(n_sims)
        for i, end in enumerate(ends):
            start = end - test_days
            post = slice(start, end)
            y = tr.copy()
            y[post] = y[post] * (1 + eff)
            out[i] = _window_estimate(y, ct, slice(start - pre_days, start), post)
        return out

    null_est = estimates(0.0)
    # disjoint test windows in the history after the first fit: the effective number of independent
    # effect-free estimates behind the spread (the simulated windows overlap heavily)
    n_disjoint = (T - pre_days) // test_days
    df = max(n_disjoint - 1, 1)
    spread = float(np.sqrt(np.mean(null_est ** 2)))
    crit = float(stats.t.ppf(1 - alpha / 2, df) * spread)
    rows = []
    disable = None if show_progress is None else not show_progress
    for eff in progress(sizes, desc="geo power", disable=disable):
        ests = null_est if eff == 0.0 else estimates(eff)
        rows.append({"effect_size": eff, "power": float(np.mean(np.abs(ests) > crit)),
                     "mean_estimate": float(ests.mean()), "rmse": float(np.sqrt(np.mean((ests - eff) ** 2)))})
    table = pd.DataFrame(rows)
    warns = []
    if n_disjoint < 6:
        warns.append(f"The history holds only {n_disjoint} disjoint {test_days}-day windows after the "
                     f"{pre_days}-day fit: the critical value rests on few independent windows and the power "
                     "figures are rough.")
    if len(np.unique(ends)) < n_sims / 2:
        warns.append("Few distinct historical windows: simulations overlap heavily.")
    return GeoPowerResult(table=table, test_days=test_days, n_sims=n_sims, alpha=alpha,
                          treated_units=tuple(sorted(treated)), target_power=target_power, warnings=tuple(warns),
                          critical_value=crit, pre_days=pre_days, df=df)
