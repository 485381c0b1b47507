"""Synthetic control: a weighted average of donor units that tracks the treated unit before treatment.

Three fits share one interface (:func:`synthetic_control`):

* outcome-only (default): donor weights on the simplex minimise the pre-period outcome error;
* covariates (``predictors=``): the classic Abadie, Diamond and Hainmueller fit, with predictor weights
  ``V`` chosen to minimise the pre-period outcome error (nested optimisation);
* ridge-augmented (``augment="ridge"``): the augmented synthetic control of Ben-Michael, Feller and
  Rothstein (2021), which corrects the remaining pre-period imbalance with a ridge regression
  (penalty chosen by rolling-origin cross-validation).

Inference: the p-value is the in-space placebo rank of the post/pre RMSPE ratio (Abadie et al. 2010);
the interval of the average effect inverts the conformal permutation test of Chernozhukov, Wuthrich and
Zhu (2021) with moving-block permutations, under a null that lets the effect change linearly over the
post-period (``ci_method`` offers the constant-effect test, in-time and in-space placebo intervals).
:func:`geo_panel` turns a geo holdout into the long panel the function expects.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from analysis.config import check_alpha
from analysis.lift._result import LiftResult, _clean
from analysis.progress import progress

__all__ = ["CI_METHODS", "SynthResult", "synthetic_control", "geo_panel", "geo_lift", "factor_panel",
           "simulation_study", "simulator_study", "summarise_simulator_study", "summarise_study"]

#: Words of the warning given when the conformal interval misses the point estimate and is widened.
OUTSIDE_INTERVAL = "lies outside the conformal interval"
#: ``ci_method`` values of :func:`synthetic_control`; the first is the default.
CI_METHODS = ("conformal", "conformal_constant", "conformal_pre", "in_time", "placebo")
# conformal variants: (remove a linear trend of the post-period residuals, which blocks)
_CONFORMAL = {"conformal": (True, "cyclic"), "conformal_constant": (False, "cyclic"),
              "conformal_pre": (False, "pre")}

_AGGS: dict[str, Callable[[np.ndarray], float]] = {
    "mean": lambda a: float(np.nanmean(a)),
    "median": lambda a: float(np.nanmedian(a)),
    "sum": lambda a: float(np.nansum(a)),
    "first": lambda a: float(a[~np.isnan(a)][0]),
    "last": lambda a: float(a[~np.isnan(a)][-1]),
}


# --------------------------------------------------------------------------------------------------
# numerical core
# --------------------------------------------------------------------------------------------------
def simplex_weights(X0: np.ndarray, x1: np.ndarray, v: np.ndarray | None = None) -> np.ndarray:
    """Non-negative weights summing to one that minimise ``sum_i v_i (x1_i - X0_i w)^2``.

    Solved as a non-negative least-squares problem with the adding-up constraint appended as a
    heavily weighted extra row (then renormalised), which is exact up to ~1e-9 and far faster than a
    generic constrained solver.

    Parameters
    ----------
    X0 : ndarray, shape (k, J)
        Donor characteristics (rows: predictors or periods; columns: donors).
    x1 : ndarray, shape (k,)
        Treated characteristics.
    v : ndarray, shape (k,), optional
        Non-negative row weights (the diagonal of ``V``); equal by default.
    """
    X0 = np.asarray(X0, dtype=float)
    x1 = np.asarray(x1, dtype=float)
    if v is not None:
        s = np.sqrt(np.asarray(v, dtype=float))
        X0 = X0 * s[:, None]
        x1 = x1 * s
    J = X0.shape[1]
    if J == 1:
        return np.ones(1)
    scale = max(float(np.abs(X0).max(initial=0.0)), float(np.abs(x1).max(initial=0.0)), 1e-12)
    big = 1e4 * scale * math.sqrt(X0.shape[0])
    A = np.vstack([X0, np.full((1, J), big)])
    b = np.append(x1, big)
    w, _ = optimize.nnls(A, b, maxiter=50 * J)
    w = np.clip(w, 0.0, None)
    total = w.sum()
    return w / total if total > 0 else np.full(J, 1.0 / J)


def _ridge_correction(Y0pre: np.ndarray, y1pre: np.ndarray, w: np.ndarray, lam: float) -> np.ndarray:
    """Augmented weights ``w + X0c (X0c' X0c + lam I)^-1 (x1c - X0c' w)`` (rows of Y0pre: donors)."""
    mu = Y0pre.mean(axis=0)
    X0c = Y0pre - mu            # J x T0
    x1c = y1pre - mu
    resid = x1c - X0c.T @ w
    T0 = X0c.shape[1]
    coef = np.linalg.solve(X0c.T @ X0c + lam * np.eye(T0), resid)
    return w + X0c @ coef


def _ridge_grid(Y0pre: np.ndarray) -> np.ndarray:
    X0c = Y0pre - Y0pre.mean(axis=0)
    smax = float(np.linalg.svd(X0c, compute_uv=False)[0]) ** 2
    smax = smax if smax > 0 else 1.0
    return smax * np.logspace(-4, 2, 19)


def _ridge_cv(Y0pre: np.ndarray, y1pre: np.ndarray) -> float:
    """Penalty minimising rolling-origin one-step-ahead error over the last pre-periods."""
    T0 = Y0pre.shape[1]
    grid = _ridge_grid(Y0pre)
    n_hold = max(1, min(10, T0 // 3))
    errors = np.zeros(len(grid))
    for t in range(T0 - n_hold, T0):
        if t < 2:
            continue
        A, a = Y0pre[:, :t], y1pre[:t]
        w = simplex_weights(A.T, a)
        for i, lam in enumerate(grid):
            wa = _ridge_correction(A, a, w, lam)
            errors[i] += (y1pre[t] - Y0pre[:, t] @ wa) ** 2
    return float(grid[int(np.argmin(errors))])


@dataclass
class _Fit:
    weights: np.ndarray          # over donors (augmented weights when ridge)
    scm_weights: np.ndarray      # simplex weights
    v: np.ndarray | None = None
    lam: float | None = None
    intercept: float = 0.0       # ridge fit on unit-demeaned outcomes: treated minus weighted donor means


class _Design:
    """Everything a fit needs for one treated unit and its donors (arrays, no pandas)."""

    def __init__(self, Y: np.ndarray, pre: np.ndarray, opt_rows: np.ndarray,
                 X: np.ndarray | None, augment: str | None, v_starts: int, maxiter: int,
                 rescale: bool = False):
        self.rescale = rescale    # donors rescaled to the treated unit's pre-period mean
        self.Y = Y                # T x N outcomes (all units)
        self.pre = pre            # boolean T
        self.opt_rows = opt_rows  # boolean T: periods whose error V minimises
        self.X = X                # k x N standardised predictors, or None
        self.augment = augment
        self.v_starts = v_starts
        self.maxiter = maxiter

    def fit(self, treated: int, donors: np.ndarray, pre: np.ndarray | None = None,
            lam: float | None = None) -> _Fit:
        pre = self.pre if pre is None else pre
        Y0pre = self.Y[pre][:, donors]
        y1pre = self.Y[pre, treated]
        ratio = _rescale_ratios(Y0pre, y1pre) if self.rescale else None
        if ratio is not None:
            Y0pre = Y0pre * ratio
        fit = self._fit(treated, donors, pre, Y0pre, y1pre, lam)
        if ratio is not None:
            # weights on the rescaled donors -> multipliers of the raw donor series
            fit.weights = fit.weights * ratio
        return fit

    def _fit(self, treated: int, donors: np.ndarray, pre: np.ndarray, Y0pre: np.ndarray, y1pre: np.ndarray,
             lam: float | None) -> _Fit:
        v = None
        if self.X is None:
            w = simplex_weights(Y0pre, y1pre)
        else:
            opt = self.opt_rows & pre
            w, v = _fit_v(self.X[:, donors], self.X[:, treated], self.Y[opt][:, donors],
                          self.Y[opt, treated], starts=self.v_starts, maxiter=self.maxiter)
        if self.augment == "ridge":
            # augsynth's fixed-effects variant: demean every unit by its pre-period mean, so level
            # differences are absorbed and the ridge step corrects the remaining imbalance in shape
            m0, m1 = Y0pre.mean(axis=0), y1pre.mean()
            D0, d1 = Y0pre - m0, y1pre - m1
            if self.X is None:
                w = simplex_weights(D0, d1)
            if lam is None:
                lam = _ridge_cv(D0.T, d1)
            wa = _ridge_correction(D0.T, d1, w, lam)
            return _Fit(wa, w, v, lam, float(m1 - m0 @ wa))
        return _Fit(w, w, v, None)


def _placebo_gap(design: _Design, j: int, donors_idx: np.ndarray) -> np.ndarray:
    """Gap of donor ``j`` against its synthetic control from the other donors (one in-space placebo)."""
    others = donors_idx[donors_idx != j]
    fit = design.fit(int(j), others)
    return design.Y[:, j] - design.Y[:, others] @ fit.weights - fit.intercept


def _placebo_jobs(jobs: int | str, *, expensive: bool, n: int) -> int:
    if jobs == "auto":
        return min(2, os.cpu_count() or 1) if expensive and n > 2 else 1
    if not isinstance(jobs, (int, np.integer)) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer or 'auto', got {jobs!r}")
    return int(jobs)


def _placebo_gaps(design: _Design, donors_idx: np.ndarray, jobs: int, *, disable: bool | None):
    """Yield ``(j, gap)`` for every donor ``j`` in order, fitted in ``jobs`` processes."""
    if jobs <= 1:
        for j in progress(donors_idx, desc="placebos", disable=disable):
            yield int(j), _placebo_gap(design, int(j), donors_idx)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = pool.map(_placebo_gap, [design] * len(donors_idx), [int(j) for j in donors_idx],
                           [donors_idx] * len(donors_idx))
        for j, g in zip(donors_idx, progress(results, desc="placebos", total=len(donors_idx),
                                             disable=disable)):
            yield int(j), g


class NonPositiveLevel(ValueError):
    """A unit's mean outcome is not positive, so ``rescale=True`` cannot compare it by its shape."""


def _rescale_ratios(Y0: np.ndarray, y1: np.ndarray) -> np.ndarray:
    """Per-donor factors ``mean(y1) / mean(Y0_j)`` that bring every donor to the treated unit's level."""
    m0, m1 = Y0.mean(axis=0), float(y1.mean())
    if m1 <= 0 or np.any(m0 <= 0):
        raise NonPositiveLevel("rescale=True needs a positive pre-period mean outcome for every unit "
                         "(it compares units by their shape relative to their own level).")
    return m1 / m0


def _fit_v(X0: np.ndarray, x1: np.ndarray, Z0: np.ndarray, z1: np.ndarray, *, starts: int,
           maxiter: int, restarts: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Nested fit: V (simplex over predictors) minimising the outcome MSPE of W(V)."""
    k = X0.shape[0]

    def weights_for(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = np.abs(theta)
        total = v.sum()
        v = v / total if total > 0 else np.full(k, 1.0 / k)
        return simplex_weights(X0, x1, v), v

    def loss(theta: np.ndarray) -> float:
        w, _ = weights_for(theta)
        r = z1 - Z0 @ w
        return float(r @ r) / len(r)

    # starting points: equal weights (the Synth convention), then a regression-based start
    # (predictor importance from regressing the outcome path on the predictors), then random ones
    candidates = [np.full(k, 1.0 / k)]
    if starts >= 2:
        Xall = np.column_stack([np.ones(X0.shape[1] + 1), np.column_stack([X0, x1]).T])
        Zall = np.column_stack([Z0, z1])
        beta = np.linalg.lstsq(Xall, Zall.T, rcond=None)[0][1:]
        start = np.sum(beta ** 2, axis=1)
        if np.all(np.isfinite(start)) and start.sum() > 0:
            candidates.append(start / start.sum())
    rng = np.random.default_rng(0)
    while len(candidates) < starts:
        candidates.append(rng.dirichlet(np.ones(k)))
    best: tuple[float, np.ndarray] | None = None
    for theta0 in candidates:
        res = optimize.minimize(loss, theta0, method="Nelder-Mead", options={"maxiter": maxiter})
        current = (float(res.fun), res.x)
        # restart from the best point with a fresh simplex until the loss stops improving
        # (a collapsed simplex otherwise ends the search early in many dimensions)
        for _ in range(restarts):
            res = optimize.minimize(loss, current[1], method="Nelder-Mead", options={"maxiter": maxiter})
            if res.fun >= current[0] * (1 - 1e-6):
                break
            current = (float(res.fun), res.x)
        if best is None or current[0] < best[0]:
            best = current
    assert best is not None
    theta = best[1]
    return weights_for(theta)


def _conformal_interval(Y0: np.ndarray, y1: np.ndarray, post: np.ndarray, alpha: float, center: float,
                        scale: float, refit: Callable[[np.ndarray, np.ndarray], np.ndarray], *,
                        trend: bool = True, windows: str = "cyclic") -> tuple[float, float, float]:
    """Invert a Chernozhukov-Wuthrich-Zhu moving-block permutation test for the average post-period effect.

    For a candidate average effect ``theta``, ``theta`` is subtracted from the treated post-period outcomes,
    the synthetic control is refitted on all periods (``refit(Y0, y)`` returns the fitted synthetic
    outcome) and the statistic is ``|sum of post-period residuals|``, compared with the same sum over
    moving blocks of the residual series.

    Parameters
    ----------
    trend : bool
        Null hypothesis ``tau_t = theta + delta * (t - mean t)`` over the post-period with an unknown slope
        ``delta``: the least-squares linear trend of the post-period residuals (which has mean zero, so the
        statistic is unchanged) is removed before the blocks are formed. ``False`` tests a constant effect
        (``tau_t = theta``), as in the paper.
    windows : {"cyclic", "pre"}
        ``"cyclic"``: the T cyclic shifts of the whole series (the paper's moving blocks, exact when the
        residuals are exchangeable under cyclic shifts). ``"pre"``: the post-period block against every
        block of the same length inside the pre-period (no shift mixes in post-period residuals).

    Returns
    -------
    (ci_low, ci_high, p_value_at_zero)
    """
    T = len(y1)
    post = np.asarray(post, dtype=float)
    post_idx = np.flatnonzero(post)
    T1 = len(post_idx)
    if windows == "cyclic":
        idx = ((np.arange(T)[None, :] + np.arange(T)[:, None]) % T)[:, post_idx]    # row j: shift by j
    else:
        starts = np.arange(0, (T - T1) - T1 + 1)          # blocks inside the pre-period
        idx = np.vstack([post_idx[None, :], starts[:, None] + np.arange(T1)[None, :]])
    tp = np.arange(T1) - (T1 - 1) / 2.0
    detrend = trend and T1 >= 3

    def pval(theta: float) -> float:
        y = y1 - theta * post
        try:
            u = y - refit(Y0, y)
        except NonPositiveLevel:
            # an effect as large as the treated unit's whole level leaves a non-positive counterfactual
            # (no sales at all), which a rescaled fit cannot even form: rejected
            return 0.0
        if detrend:
            up = u[post_idx]
            u = u.copy()
            u[post_idx] = up - (tp @ up) / (tp @ tp) * tp
        stats = np.abs(u[idx].sum(axis=1))
        return float(np.mean(stats >= stats[0] - 1e-12 * (1 + abs(stats[0]))))

    scale = scale if scale > 0 else max(abs(center), 1.0)
    grid = center + scale * np.linspace(-6.0, 6.0, 121)
    accepted = np.array([pval(g) > alpha for g in grid])
    # widen until both ends are rejected
    for _ in range(8):
        if not (accepted[0] or accepted[-1]):
            break
        width = grid[-1] - grid[0]
        grid = np.linspace(grid[0] - width, grid[-1] + width, 121)
        accepted = np.array([pval(g) > alpha for g in grid])
    if not accepted.any():
        # the test rejects everywhere on the grid: fall back to the best-supported point
        return center, center, pval(0.0)
    first, last = int(np.argmax(accepted)), len(accepted) - 1 - int(np.argmax(accepted[::-1]))

    def refine(inside: float, outside: float) -> float:
        for _ in range(20):
            mid = 0.5 * (inside + outside)
            if pval(mid) > alpha:
                inside = mid
            else:
                outside = mid
        return inside

    lo = refine(grid[first], grid[first - 1]) if first > 0 else grid[0]
    hi = refine(grid[last], grid[last + 1]) if last < len(grid) - 1 else grid[-1]
    return float(lo), float(hi), pval(0.0)


def _in_time_errors(design: "_Design", donors: np.ndarray, pre: np.ndarray, n_post: int) -> np.ndarray:
    """Average gaps over every pre-period window of ``n_post`` periods, each fitted without that window."""
    T0 = int(pre.sum())
    Y = design.Y
    errors = []
    saved = design.opt_rows
    try:
        for s in range(0, T0 - n_post + 1):
            window = np.zeros(len(pre), bool)
            window[s:s + n_post] = True
            train = pre & ~window
            if not (saved & train).any():
                design.opt_rows = train
            fit = design.fit(0, donors, pre=train)
            design.opt_rows = saved
            g = Y[window, 0] - Y[window][:, donors] @ fit.weights - fit.intercept
            errors.append(float(g.mean()))
    finally:
        design.opt_rows = saved
    return np.asarray(errors)


# --------------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SynthResult(LiftResult):
    """Synthetic control estimate with its diagnostics.

    Attributes
    ----------
    treated_unit : str
        The treated unit's label.
    treatment_start : Any
        First treated period.
    weights : pd.Series
        Donor weights (non-negative, summing to one; the ridge-augmented fit's weights may be negative).
    scm_weights : pd.Series
        The simplex weights before augmentation (equal to ``weights`` without augmentation).
    v_weights : pd.Series or None
        Predictor importance weights ``V`` of the covariate fit.
    treated, synthetic, gap : pd.Series
        The treated outcome, its synthetic control and their difference, over time.
    pre_rmspe, post_rmspe : float
        Root mean squared prediction error before and after treatment.
    placebos : pd.DataFrame
        One row per unit (treated first): ``pre_rmspe``, ``post_rmspe``, ``ratio``, ``effect``,
        ``treated``, ``in_p_value`` (whether the unit counts in the p-value; see
        ``placebo_max_pre_rmspe_ratio``).
    placebo_gaps : pd.DataFrame
        Gaps over time, one column per unit (the treated unit included).
    in_time_placebo : dict
        The fit with a fake treatment date inside the pre-period: ``start``, ``effect``, ``pre_rmspe``,
        ``post_rmspe``, ``ratio``, ``relative_effect``.
    predictor_balance : pd.DataFrame or None
        Treated, synthetic and donor-average predictor values (covariate fit only).
    method : str
        ``"outcome"``, ``"predictors"``; suffixed ``"+ridge"`` when augmented and ``"+rescaled"`` with
        ``rescale=True``.
    ci_method : str
        How the interval was built.
    ridge_lambda : float or None
        The cross-validated ridge penalty.
    """

    treated_unit: str = ""
    treatment_start: Any = None
    weights: pd.Series | None = None
    scm_weights: pd.Series | None = None
    v_weights: pd.Series | None = None
    treated: pd.Series | None = None
    synthetic: pd.Series | None = None
    gap: pd.Series | None = None
    pre_rmspe: float = float("nan")
    post_rmspe: float = float("nan")
    placebos: pd.DataFrame | None = None
    placebo_gaps: pd.DataFrame | None = None
    in_time_placebo: dict[str, Any] = field(default_factory=dict)
    predictor_balance: pd.DataFrame | None = None
    method: str = "outcome"
    ci_method: str = "conformal"
    ridge_lambda: float | None = None

    # -- tables -------------------------------------------------------------------------------------
    def summary(self) -> pd.DataFrame:
        """One tidy row: the common lift columns plus pre-period fit and placebo counts."""
        out = super().summary()
        out["pre_rmspe"] = self.pre_rmspe
        out["post_rmspe"] = self.post_rmspe
        out["n_donors"] = 0 if self.weights is None else len(self.weights)
        out["n_placebos"] = self.n_placebos
        out["method"] = self.method
        out["ci_method"] = self.ci_method
        return out

    def weight_table(self, *, min_weight: float = 0.001) -> pd.DataFrame:
        """Donor weights, largest first, dropping those below ``min_weight`` in absolute value."""
        assert self.weights is not None
        tab = pd.DataFrame({"weight": self.weights})
        if self.scm_weights is not None and ("ridge" in self.method or "rescaled" in self.method):
            tab["scm_weight"] = self.scm_weights
        tab = tab[tab["weight"].abs() >= min_weight]
        return tab.sort_values("weight", ascending=False, key=np.abs)

    @property
    def n_placebos(self) -> int:
        """Number of donor units refitted as pseudo-treated."""
        return 0 if self.placebos is None else int((~self.placebos["treated"]).sum())

    @property
    def n_placebos_as_extreme(self) -> int:
        """Placebo units whose post/pre RMSPE ratio is at least the treated unit's."""
        if self.placebos is None or self.placebos.empty:
            return 0
        ratio = float(self.placebos.loc[self.placebos["treated"], "ratio"].iloc[0])
        return int((self.placebos.loc[~self.placebos["treated"], "ratio"] >= ratio).sum())

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` lift entry plus weights and fit diagnostics (JSON-safe)."""
        out = super().to_dict()
        out.update(_clean({
            "treated_unit": self.treated_unit,
            "treatment_start": _clean(pd.Timestamp(self.treatment_start))
            if isinstance(self.treatment_start, (pd.Timestamp, np.datetime64)) else self.treatment_start,
            "method": self.method, "ci_method": self.ci_method,
            "pre_rmspe": self.pre_rmspe, "post_rmspe": self.post_rmspe,
            "weights": {} if self.weights is None else {str(k): float(v) for k, v in self.weights.items()},
            "n_placebos": self.n_placebos, "n_placebos_as_extreme": self.n_placebos_as_extreme,
            "in_time_placebo": {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v)
                                for k, v in self.in_time_placebo.items()},
        }))
        return out

    def reading(self) -> str:
        """One plain-language sentence on the result."""
        level = f"{int(round(100 * (1 - self.alpha)))}% CI"
        if self.relative_effect is not None and self.relative_ci_low is not None:
            rel = self.relative_effect
            direction = "higher" if rel >= 0 else "lower"
            lo, hi = self.relative_ci_low, self.relative_ci_high
            first = (f"{_pretty(self.metric)} in {self.treated_unit} was {abs(rel):.1%} {direction} than the "
                     f"synthetic control ({level} {lo:.1%} to {hi:.1%})")
        else:
            first = (f"{_pretty(self.metric)} in {self.treated_unit} differed from the synthetic control by "
                     f"{self.effect:,.3g} per period ({level} {self.ci_low:,.3g} to {self.ci_high:,.3g})")
        if self.n_placebos:
            first += f"; {self.n_placebos_as_extreme} of {self.n_placebos} placebo units showed a gap as large."
        else:
            first += "."
        return first

    # -- plots --------------------------------------------------------------------------------------
    def plot(self, ax: Any = None) -> Any:
        """Treated outcome against its synthetic control, with the treatment start marked."""
        from analysis.plotting import axes

        ax = axes(ax, figsize=(8, 4))
        assert self.treated is not None and self.synthetic is not None
        ax.plot(self.treated.index, self.treated.to_numpy(), color="black", lw=1.6, label=self.treated_unit)
        ax.plot(self.synthetic.index, self.synthetic.to_numpy(), color="tab:blue", lw=1.6, ls="--",
                label="synthetic control")
        ax.axvline(self.treatment_start, color="grey", ls=":", lw=1)
        ax.set_ylabel(self.metric)
        ax.set_title(f"Synthetic control: effect {self.effect:,.3g} per period "
                     f"[{self.ci_low:,.3g}, {self.ci_high:,.3g}]")
        ax.legend(frameon=False)
        return ax

    def plot_gap(self, ax: Any = None) -> Any:
        """Treated minus synthetic over time."""
        from analysis.plotting import axes

        ax = axes(ax, figsize=(8, 4))
        assert self.gap is not None
        ax.plot(self.gap.index, self.gap.to_numpy(), color="black", lw=1.6)
        ax.axhline(0, color="grey", lw=0.8)
        ax.axvline(self.treatment_start, color="grey", ls=":", lw=1)
        ax.set_ylabel(f"gap in {self.metric}")
        return ax

    def plot_placebos(self, ax: Any = None, *, max_pre_rmspe_ratio: float | None = 5.0) -> Any:
        """Treated gap (black) against every in-space placebo gap (grey).

        Parameters
        ----------
        ax : matplotlib Axes, optional
        max_pre_rmspe_ratio : float or None
            Hide placebos whose pre-period RMSPE exceeds this multiple of the treated unit's (Abadie et
            al. 2010 use 2, 5 and 20); ``None`` shows all.
        """
        from analysis.plotting import axes

        ax = axes(ax, figsize=(8, 4))
        assert self.placebo_gaps is not None and self.placebos is not None
        keep = self.placebos
        if max_pre_rmspe_ratio is not None:
            keep = keep[keep["pre_rmspe"] <= max_pre_rmspe_ratio * max(self.pre_rmspe, 1e-12)]
        for unit in keep.index:
            if unit == self.treated_unit:
                continue
            g = self.placebo_gaps[unit]
            ax.plot(g.index, g.to_numpy(), color="lightgrey", lw=0.9)
        ax.plot(self.gap.index, self.gap.to_numpy(), color="black", lw=1.8, label=self.treated_unit)
        ax.axhline(0, color="grey", lw=0.8)
        ax.axvline(self.treatment_start, color="grey", ls=":", lw=1)
        ax.set_ylabel(f"gap in {self.metric}")
        ax.set_title(f"In-space placebos (p = {self.p_value:.3g})")
        ax.legend(frameon=False)
        return ax

    def plot_weights(self, ax: Any = None) -> Any:
        """Horizontal bar chart of the donor weights above 0.001."""
        from analysis.plotting import axes

        col = "weight"
        if "rescaled" in self.method and "ridge" not in self.method:
            col = "scm_weight"     # shares of the rescaled donors read better than raw multipliers
        tab = self.weight_table().sort_values(col, key=np.abs)      # largest drawn at the top
        ax = axes(ax, figsize=(6, max(2.0, 0.3 * len(tab) + 1)))
        ax.barh([str(i) for i in tab.index], tab[col].to_numpy(), color="tab:blue")
        ax.set_xlabel("weight" if col == "weight" else "share of the rescaled donors")
        return ax


def _pretty(metric: str) -> str:
    return metric.replace("_", " ").capitalize()


# --------------------------------------------------------------------------------------------------
# data preparation
# --------------------------------------------------------------------------------------------------
def _require(data: pd.DataFrame, cols: Iterable[str]) -> None:
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise ValueError(f"Column(s) {missing} not found in the data; available: {list(data.columns)}.")


def _predictor_matrix(data: pd.DataFrame, unit: str, time: str, units: Sequence[Any], pre_times: np.ndarray,
                      predictors: Sequence[Any]) -> tuple[np.ndarray, list[str]]:
    """Rows: predictors (each aggregated over its periods); columns: ``units``."""
    rows, names = [], []
    for spec in predictors:
        if isinstance(spec, str):
            col, times, agg = spec, None, "mean"
        elif isinstance(spec, (tuple, list)) and 1 <= len(spec) <= 3:
            col = spec[0]
            times = spec[1] if len(spec) > 1 else None
            agg = spec[2] if len(spec) > 2 else "mean"
        else:
            raise ValueError(f"Predictor spec {spec!r} not understood: use a column name or "
                             "(column, periods, aggregation), e.g. ('invest', range(1964, 1970), 'mean').")
        _require(data, [col])
        if times is None:
            sel_times = pre_times
        elif isinstance(times, slice):
            sel_times = [t for t in pre_times if (times.start is None or t >= times.start)
                         and (times.stop is None or t <= times.stop)]
        elif np.isscalar(times):
            sel_times = [times]
        else:
            sel_times = list(times)
        fn = _AGGS.get(agg) if isinstance(agg, str) else agg
        if fn is None:
            raise ValueError(f"Unknown aggregation {agg!r}; use one of {sorted(_AGGS)} or a callable.")
        wide = data.pivot_table(index=time, columns=unit, values=col, aggfunc="mean", dropna=False)
        wide = wide.reindex(index=pd.Index(sel_times), columns=list(units))
        row = []
        for u in units:
            vals = wide[u].to_numpy(dtype=float)
            if np.all(np.isnan(vals)):
                raise ValueError(f"Predictor {col!r} has no values for unit {u!r} in periods {sel_times}.")
            row.append(fn(vals))
        rows.append(row)
        label = col if times is None else f"{col} [{sel_times[0]}..{sel_times[-1]}]"
        names.append(label if isinstance(agg, str) and agg == "mean" else f"{label} ({agg})")
    return np.asarray(rows, dtype=float), names


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------
def synthetic_control(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    treated_unit: Any,
    treatment_start: Any,
    predictors: Sequence[Any] | None = None,
    donors: Sequence[Any] | None = None,
    treatment_end: Any = None,
    optimize_periods: Iterable[Any] | None = None,
    augment: str | None = None,
    alpha: float = 0.05,
    placebos: bool = True,
    in_time_placebo: Any = "auto",
    ci_method: str = "conformal",
    v_starts: int = 1,
    maxiter: int = 1000,
    rescale: bool = False,
    placebo_max_pre_rmspe_ratio: float | None = None,
    progress_bar: bool | None = None,
    jobs: int | str = "auto",
) -> SynthResult:
    """Estimate a treatment effect with a synthetic control on a long panel.

    Parameters
    ----------
    data : pd.DataFrame
        Long panel: one row per unit and period.
    outcome, unit, time : str
        Column names.
    treated_unit : Any
        The label of the treated unit in ``unit``.
    treatment_start : Any
        First treated period (same type as ``time``).
    predictors : list, optional
        Covariate specification; omitted for the outcome-only fit (weights fitted to every pre-period
        outcome). Each entry is a column name (its mean over the pre-period) or a tuple
        ``(column, periods, aggregation)`` with ``periods`` a ``range``, list or inclusive ``slice`` of
        period labels and ``aggregation`` one of ``"mean"``, ``"median"``, ``"sum"``, ``"first"``,
        ``"last"`` or a callable; e.g. ``("invest", range(1964, 1970), "mean")``. Predictors are
        standardised by their standard deviation across units and weighted by ``V``, chosen to minimise
        the outcome error over ``optimize_periods``.
    donors : sequence, optional
        Donor units; all other units by default.
    treatment_end : Any, optional
        Last treated period; later periods are dropped (a campaign window inside a longer panel).
    optimize_periods : iterable, optional
        Pre-periods whose outcome error ``V`` minimises (all pre-periods by default).
    augment : {None, "ridge"}
        ``"ridge"`` for the augmented synthetic control (Ben-Michael, Feller and Rothstein 2021) on
        unit-demeaned outcomes (augsynth's ``fixedeff = TRUE``), with the penalty chosen by rolling-origin
        cross-validation over the last pre-periods. Weights may then be negative; they still sum to one.
    alpha : float
        1 - confidence level of the interval.
    placebos : bool
        Refit every donor as pseudo-treated (in-space placebos) for the p-value.
    in_time_placebo : "auto", None or a period
        Fake treatment date inside the pre-period. ``"auto"`` places it so the placebo post-window is as
        long as the real one (at most half the pre-period).
    ci_method : {"conformal", "conformal_constant", "conformal_pre", "in_time", "placebo"}
        Interval of the average effect.

        * ``"conformal"`` (default): invert the Chernozhukov-Wuthrich-Zhu moving-block permutation test
          of "the average post-period effect is theta", allowing the effect to change linearly over the
          post-period (a ramp-up or a decay): for each candidate theta the weights are refitted on all
          periods, the least-squares linear trend of the post-period residuals (mean zero, so the
          statistic ``|sum of post-period residuals|`` is unchanged) is removed, and the statistic is
          ranked among the T cyclic shifts of the residual series.
        * ``"conformal_constant"``: the same test of a constant effect (the paper's version); a
          time-varying effect leaks into the shifted blocks and widens the interval.
        * ``"conformal_pre"``: the post-period block's residual sum ranked among the blocks of the same
          length inside the pre-period only. Not a permutation group: few, overlapping blocks make it
          anti-conservative unless the pre-period is many times the post-period.
        * ``"in_time"``: in-time placebos: every pre-period window as long as the post-period is left
          out of the fit and its average gap recorded; the interval is the effect minus the conformal
          quantiles of those gaps (needs at least ``2 / alpha - 1`` windows).
        * ``"placebo"``: the treated effect minus the ``1 - alpha/2`` and ``alpha/2`` quantiles of the
          in-space placebo effects scaled by pre-period RMSPE (needs many donors).

        Coverage of each on the factor model and on the simulator: ``docs/validation_lift.md``.
    v_starts : int
        Starting points of the ``V`` search (covariate fit): 1 uses equal weights, as Synth and pysyncon
        do; 2 adds a regression-based start; more add random starts. The lowest outcome error wins. The
        search is non-convex: more starts can find a lower pre-period error with different weights.
    maxiter : int
        Iteration cap of each Nelder-Mead ``V`` search.
    rescale : bool
        Multiply every donor's series by (treated pre-period mean / donor pre-period mean) before
        fitting, so the synthetic control matches the treated unit's shape whatever its size (a sum
        of regions against single regions, a large market against small ones). ``weights`` are then
        the multipliers of the raw donor series (``synthetic = sum_j weights_j * donor_j``; they do
        not sum to one) and ``scm_weights`` the simplex shares of the rescaled donors. Placebos and
        the conformal interval rescale the same way. Outcome-only and ridge fits only; every unit's
        pre-period mean must be positive.
    placebo_max_pre_rmspe_ratio : float, optional
        Abadie, Diamond and Hainmueller (2010): leave out of the placebo p-value the placebos whose
        pre-period RMSPE exceeds this multiple of the treated unit's (they used 20, 5 and 2). ``None``
        (default) ranks the treated unit among all units, as the contract defines the p-value.
    progress_bar : bool, optional
        Show a progress bar over placebos (default: on unless ``ANALYSIS_NO_PROGRESS`` is set).
    jobs : int or "auto"
        Processes for the in-space placebo fits. ``"auto"`` (default) uses up to two when the fits are
        expensive (``predictors`` given: every placebo repeats the nested V search) and one otherwise
        (an outcome-only placebo fit takes about a millisecond, less than starting a process). Results
        do not depend on ``jobs``.

    Returns
    -------
    SynthResult
        ``effect`` is the average post-period gap (treated minus synthetic); ``p_value`` the placebo rank
        of the treated post/pre RMSPE ratio (rank / number of units, treated included);
        ``relative_effect`` is ``effect`` over the average post-period synthetic level.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> f = np.cumsum(rng.normal(size=30))
    >>> rows = [(u, t, 10 + (1 + 0.1 * u) * f[t] + rng.normal(0, 0.3) + (2.0 if u == 0 and t >= 20 else 0))
    ...         for u in range(8) for t in range(30)]
    >>> panel = pd.DataFrame(rows, columns=["unit", "t", "y"])
    >>> res = synthetic_control(panel, outcome="y", unit="unit", time="t", treated_unit=0,
    ...                         treatment_start=20, progress_bar=False)
    >>> bool(res.ci_low < 2.0 < res.ci_high)
    True
    """
    check_alpha(alpha)
    if augment not in (None, "ridge"):
        raise ValueError(f"augment must be None or 'ridge', got {augment!r}.")
    if rescale and predictors:
        raise ValueError("rescale=True works with the outcome-only and ridge fits; drop predictors or "
                         "rescale the predictors yourself.")
    if placebo_max_pre_rmspe_ratio is not None and not placebo_max_pre_rmspe_ratio >= 1:
        raise ValueError(f"placebo_max_pre_rmspe_ratio must be at least 1, got {placebo_max_pre_rmspe_ratio}.")
    if ci_method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {list(CI_METHODS)}, got {ci_method!r}.")
    _require(data, [outcome, unit, time])
    if data.duplicated([unit, time]).any():
        dup = data.loc[data.duplicated([unit, time], keep=False), [unit, time]].head(3)
        raise ValueError(f"The panel has several rows per {unit!r} and {time!r}, e.g.\n{dup.to_string()}\n"
                         "Aggregate first (one row per unit and period).")
    wide = data.pivot(index=time, columns=unit, values=outcome).sort_index()
    if treated_unit not in wide.columns:
        raise ValueError(f"Treated unit {treated_unit!r} not found in column {unit!r}.")
    if treatment_end is not None:
        wide = wide.loc[wide.index <= treatment_end]
    times = wide.index.to_numpy()
    pre_mask = np.asarray(wide.index < treatment_start)
    post_mask = ~pre_mask
    if pre_mask.sum() < 2:
        raise ValueError(f"Need at least 2 periods before treatment_start={treatment_start!r}; "
                         f"found {int(pre_mask.sum())}.")
    if post_mask.sum() < 1:
        raise ValueError(f"No period at or after treatment_start={treatment_start!r}"
                         f"{'' if treatment_end is None else f' and up to treatment_end={treatment_end!r}'}.")
    if wide[treated_unit].isna().any():
        missing = list(wide.index[wide[treated_unit].isna()][:5])
        raise ValueError(f"The treated unit has missing {outcome!r} in periods {missing}; fill or drop them.")

    warnings: list[str] = []
    pool = [u for u in wide.columns if u != treated_unit] if donors is None else list(donors)
    unknown = [u for u in pool if u not in wide.columns]
    if unknown:
        raise ValueError(f"Donor(s) {unknown} not found in column {unit!r}.")
    pool = [u for u in pool if u != treated_unit]
    incomplete = [u for u in pool if wide[u].isna().any()]
    if incomplete:
        warnings.append(f"Dropped {len(incomplete)} donor(s) with missing {outcome}: {incomplete[:5]}.")
        pool = [u for u in pool if u not in incomplete]
    if len(pool) < 2:
        raise ValueError(f"Need at least 2 donor units with complete {outcome!r}; found {len(pool)}.")

    units = [treated_unit, *pool]
    Y = wide[units].to_numpy(dtype=float)
    opt_rows = pre_mask.copy()
    if optimize_periods is not None:
        wanted = set(optimize_periods)
        opt_rows = pre_mask & np.array([t in wanted for t in wide.index])
        if opt_rows.sum() < 1:
            raise ValueError("optimize_periods selects no pre-treatment period.")
    X = None
    pred_names: list[str] = []
    X_raw = None
    if predictors:
        X_raw, pred_names = _predictor_matrix(data, unit, time, units, times[pre_mask], predictors)
        sd = X_raw.std(axis=1, ddof=1)
        sd[sd == 0] = 1.0
        X = X_raw / sd[:, None]
    design = _Design(Y, pre_mask, opt_rows, X, augment, v_starts, maxiter, rescale=rescale)
    donors_idx = np.arange(1, len(units))

    main = design.fit(0, donors_idx)
    synth_all = Y[:, donors_idx] @ main.weights + main.intercept
    gap = Y[:, 0] - synth_all
    effect = float(gap[post_mask].mean())
    pre_rmspe = float(np.sqrt(np.mean(gap[pre_mask] ** 2)))
    post_rmspe = float(np.sqrt(np.mean(gap[post_mask] ** 2)))
    synth_post_mean = float(synth_all[post_mask].mean())
    relative = effect / synth_post_mean if synth_post_mean > 0 else None

    # in-space placebos: every donor as pseudo-treated, the treated unit left out of the pool
    stats = [(treated_unit, pre_rmspe, post_rmspe, effect, True)]
    gaps = {treated_unit: gap}
    if placebos:
        show = None if progress_bar is None else not progress_bar
        n_jobs = _placebo_jobs(jobs, expensive=X is not None, n=len(donors_idx))
        for j, g in _placebo_gaps(design, donors_idx, n_jobs, disable=show):
            gaps[units[j]] = g
            stats.append((units[j], float(np.sqrt(np.mean(g[pre_mask] ** 2))),
                          float(np.sqrt(np.mean(g[post_mask] ** 2))), float(g[post_mask].mean()), False))
    placebo_tab = pd.DataFrame(stats, columns=["unit", "pre_rmspe", "post_rmspe", "effect", "treated"])
    placebo_tab["ratio"] = placebo_tab["post_rmspe"] / placebo_tab["pre_rmspe"].clip(lower=1e-12)
    placebo_tab = placebo_tab.set_index("unit")
    treated_ratio = placebo_tab["ratio"].iloc[0]
    ranked = placebo_tab
    if placebo_max_pre_rmspe_ratio is not None:
        ranked = placebo_tab[placebo_tab["treated"]
                             | (placebo_tab["pre_rmspe"] <= placebo_max_pre_rmspe_ratio * max(pre_rmspe, 1e-12))]
    placebo_tab["in_p_value"] = placebo_tab.index.isin(ranked.index)
    p_value = float((ranked["ratio"] >= treated_ratio * (1 - 1e-12)).sum() / len(ranked)) \
        if placebos else None

    # interval of the average effect
    if ci_method in _CONFORMAL:
        lam = main.lam

        def refit(Y0: np.ndarray, y: np.ndarray) -> np.ndarray:
            if rescale:
                Y0 = Y0 * _rescale_ratios(Y0, y)
            if augment == "ridge":
                m0, m1 = Y0.mean(axis=0), y.mean()
                D0, d1 = Y0 - m0, y - m1
                w = _ridge_correction(D0.T, d1, simplex_weights(D0, d1), lam)
                return m1 + D0 @ w
            return Y0 @ simplex_weights(Y0, y)

        trend, blocks = _CONFORMAL[ci_method]
        n_post, n_pre = int(post_mask.sum()), int(pre_mask.sum())
        if blocks == "pre" and n_pre - n_post + 1 < math.ceil(1 / alpha) - 1:
            raise ValueError(f"ci_method='conformal_pre' needs at least {math.ceil(1 / alpha) - 1} pre-period "
                             f"blocks as long as the post-period ({n_post} periods); the pre-period has "
                             f"{n_pre} periods. Use ci_method='conformal'.")
        resid_sd = float(np.std(gap[pre_mask], ddof=1)) if pre_mask.sum() > 2 else pre_rmspe
        scale = resid_sd * math.sqrt(max(1.0, 1.0 / n_post + 1.0))
        ci_low, ci_high, _ = _conformal_interval(Y[:, donors_idx], Y[:, 0], post_mask.astype(float), alpha,
                                                 effect, scale, refit, trend=trend, windows=blocks)
        if not ci_low <= effect <= ci_high:
            # the test refits the weights on every period with the candidate effect removed, so its interval
            # can miss the pre-period fit's average gap; the union with the estimate is still a valid interval
            warnings.append(f"The point estimate ({effect:,.3g} per period) {OUTSIDE_INTERVAL} "
                            f"({ci_low:,.3g} to {ci_high:,.3g}): refitted on every period with the effect removed, "
                            "the synthetic control rejects it. The interval is widened to include it; read the "
                            "effect as uncertain across that whole range.")
            ci_low, ci_high = min(ci_low, effect), max(ci_high, effect)
        ci_desc = {"conformal": "conformal (Chernozhukov-Wuthrich-Zhu, moving blocks, average effect with a "
                                "linear trend over the post-period)",
                   "conformal_constant": "conformal (Chernozhukov-Wuthrich-Zhu, moving blocks, constant effect)",
                   "conformal_pre": "conformal (average effect, post-period block against pre-period blocks)",
                   }[ci_method]
    elif ci_method == "in_time":
        n_post = int(post_mask.sum())
        need = math.ceil(2 / alpha) - 1
        n_win = int(pre_mask.sum()) - n_post + 1
        if n_win < need:
            raise ValueError(f"ci_method='in_time' needs at least {need} pre-period windows as long as the "
                             f"post-period ({n_post} periods) for a {1 - alpha:.0%} interval; the pre-period "
                             f"has {int(pre_mask.sum())} periods ({max(n_win, 0)} windows). Use "
                             "ci_method='conformal'.")
        errs = np.sort(_in_time_errors(design, donors_idx, pre_mask, n_post))
        k_hi = math.ceil((len(errs) + 1) * (1 - alpha / 2))
        k_lo = max(1, math.floor((len(errs) + 1) * alpha / 2))
        ci_low, ci_high = effect - errs[k_hi - 1], effect - errs[k_lo - 1]
        ci_desc = f"in-time placebos ({len(errs)} pre-period windows, each fitted without it)"
    else:
        if not placebos or len(placebo_tab) < 1 / alpha:
            raise ValueError(f"ci_method='placebo' needs placebos and at least {math.ceil(1 / alpha)} units.")
        pl = placebo_tab[~placebo_tab["treated"]]
        z = pl["effect"] / pl["pre_rmspe"].clip(lower=1e-12)
        qlo, qhi = np.quantile(z, [alpha / 2, 1 - alpha / 2])
        ci_low, ci_high = effect - qhi * pre_rmspe, effect - qlo * pre_rmspe
        ci_desc = "placebo (quantiles of RMSPE-scaled placebo effects)"
    y1_post_mean = float(Y[post_mask, 0].mean())
    rel_lo = rel_hi = None
    if relative is not None and y1_post_mean - ci_high > 0:
        # under a constant effect theta the counterfactual mean is (treated mean - theta)
        rel_lo = ci_low / (y1_post_mean - ci_low)
        rel_hi = ci_high / (y1_post_mean - ci_high)

    # in-time placebo
    itp: dict[str, Any] = {}
    T0 = int(pre_mask.sum())
    if in_time_placebo is not None:
        if isinstance(in_time_placebo, str) and in_time_placebo == "auto":
            k = T0 - min(int(post_mask.sum()), T0 // 2)
        else:
            k = int(np.searchsorted(times, in_time_placebo))
        fit = None
        if 2 <= k < T0:
            fake_pre = np.zeros(len(times), bool)
            fake_pre[:k] = True
            fake_post = pre_mask & ~fake_pre
            fake_opt = design.opt_rows
            if not (fake_opt & fake_pre).any():
                design.opt_rows = fake_pre
            try:
                fit = design.fit(0, donors_idx, pre=fake_pre)
            except NonPositiveLevel:
                # a donor with no outcome in the earlier part of the pre-period: no in-time placebo
                fit = None
            design.opt_rows = fake_opt
        if fit is not None:
            g = Y[:, 0] - Y[:, donors_idx] @ fit.weights - fit.intercept
            s_mean = float((Y[fake_post][:, donors_idx] @ fit.weights).mean() + fit.intercept)
            pre_r = float(np.sqrt(np.mean(g[fake_pre] ** 2)))
            post_r = float(np.sqrt(np.mean(g[fake_post] ** 2)))
            itp = {"start": times[k].item() if hasattr(times[k], "item") else times[k],
                   "effect": float(g[fake_post].mean()), "pre_rmspe": pre_r, "post_rmspe": post_r,
                   "ratio": post_r / max(pre_r, 1e-12),
                   "relative_effect": float(g[fake_post].mean()) / s_mean if s_mean > 0 else None}
            if isinstance(times[k], np.datetime64):
                itp["start"] = pd.Timestamp(times[k])

    # diagnostics
    level = float(np.mean(np.abs(Y[pre_mask, 0])))
    if level > 0 and pre_rmspe > 0.1 * level:
        warnings.append(f"Poor pre-period fit: RMSPE {pre_rmspe:,.3g} is {pre_rmspe / level:.0%} of the "
                        "treated unit's average level; the synthetic control may not track the "
                        "counterfactual.")
    env = Y[pre_mask][:, donors_idx]
    if rescale:
        env = env * _rescale_ratios(env, Y[pre_mask, 0])
    lo_env, hi_env = env.min(axis=1), env.max(axis=1)
    outside = float(np.mean((Y[pre_mask, 0] > hi_env) | (Y[pre_mask, 0] < lo_env)))
    if outside > 0.5 and augment is None:
        warnings.append(f"The treated unit lies outside the donors' range in {outside:.0%} of pre-periods "
                        "(outside their convex hull): simplex weights cannot match it; consider "
                        "augment='ridge' or rescaling.")
    if placebos and len(placebo_tab) < 20:
        warnings.append(f"Only {len(placebo_tab)} units: the smallest attainable placebo p-value is "
                        f"{1 / len(placebo_tab):.3f}.")

    index = wide.index
    weights = pd.Series(main.weights, index=pd.Index(pool, name=unit), name="weight")
    scm_weights = pd.Series(main.scm_weights, index=pd.Index(pool, name=unit), name="weight")
    v_series = None
    balance = None
    if X is not None and main.v is not None and X_raw is not None:
        v_series = pd.Series(main.v, index=pred_names, name="v")
        balance = pd.DataFrame({"treated": X_raw[:, 0], "synthetic": X_raw[:, 1:] @ main.scm_weights,
                                "donor_mean": X_raw[:, 1:].mean(axis=1), "v": main.v}, index=pred_names)
    method = (("predictors" if predictors else "outcome") + ("+ridge" if augment == "ridge" else "")
              + ("+rescaled" if rescale else ""))
    return SynthResult(
        design="synthetic_control", metric=outcome, effect=effect, ci_low=float(ci_low),
        ci_high=float(ci_high), p_value=p_value, relative_effect=relative, alpha=alpha,
        relative_ci_low=rel_lo, relative_ci_high=rel_hi, warnings=tuple(warnings),
        treated_unit=str(treated_unit), treatment_start=treatment_start, weights=weights,
        scm_weights=scm_weights, v_weights=v_series,
        treated=pd.Series(Y[:, 0], index=index, name="treated"),
        synthetic=pd.Series(synth_all, index=index, name="synthetic"),
        gap=pd.Series(gap, index=index, name="gap"), pre_rmspe=pre_rmspe, post_rmspe=post_rmspe,
        placebos=placebo_tab, placebo_gaps=pd.DataFrame(gaps, index=index), in_time_placebo=itp,
        predictor_balance=balance, method=method, ci_method=ci_desc, ridge_lambda=main.lam,
    )


def geo_panel(geo_sales_daily: pd.DataFrame, geo_assignment: pd.DataFrame, campaign_id: str, *,
              metric: str = "revenue", treated_label: str = "treated") -> pd.DataFrame:
    """Long panel for a geo holdout: treatment regions summed into one unit, control regions as donors.

    Parameters
    ----------
    geo_sales_daily : pd.DataFrame
        ``region, date, revenue, orders`` (canonical table).
    geo_assignment : pd.DataFrame
        ``campaign_id, region, group`` with group ``treatment`` or ``control``.
    campaign_id : str
        The campaign whose assignment to use.
    metric : str
        The column of ``geo_sales_daily`` to analyse.
    treated_label : str
        Label of the aggregated treated unit.

    Returns
    -------
    pd.DataFrame
        Columns ``region``, ``date`` and ``metric``; one row per unit and day. The effect estimated on it
        is the per-day gap of the sum over treatment regions. Regions not assigned to the campaign are
        left out; days missing for a region count as zero.
    """
    _require(geo_sales_daily, ["region", "date", metric])
    _require(geo_assignment, ["campaign_id", "region", "group"])
    assign = geo_assignment[geo_assignment["campaign_id"].astype(str) == str(campaign_id)]
    if assign.empty:
        known = sorted(geo_assignment["campaign_id"].astype(str).unique())[:10]
        raise ValueError(f"Campaign {campaign_id!r} has no geo assignment; campaigns with one: {known}.")
    groups = assign.groupby("group")["region"].apply(lambda s: sorted(set(s.astype(str))))
    treat, ctrl = groups.get("treatment", []), groups.get("control", [])
    if not treat or len(ctrl) < 2:
        raise ValueError(f"Campaign {campaign_id!r} needs at least one treatment and two control regions; "
                         f"found {len(treat)} and {len(ctrl)}.")
    if label_clash := [r for r in ctrl if r == treated_label]:
        raise ValueError(f"A control region is called {label_clash[0]!r}; pass another treated_label.")
    sales = geo_sales_daily.assign(region=geo_sales_daily["region"].astype(str),
                                   date=pd.to_datetime(geo_sales_daily["date"]))
    sales = sales[sales["region"].isin(treat + ctrl)]
    wide = sales.pivot_table(index="date", columns="region", values=metric, aggfunc="sum")
    missing = [r for r in treat + ctrl if r not in wide.columns]
    if missing:
        raise ValueError(f"No {metric!r} rows for region(s) {missing} in geo_sales_daily.")
    full = pd.date_range(wide.index.min(), wide.index.max(), freq="D")
    wide = wide.reindex(full).fillna(0.0)
    out = wide[ctrl].copy()
    out.insert(0, treated_label, wide[treat].sum(axis=1))
    out.index.name = "date"
    long = out.reset_index().melt(id_vars="date", var_name="region", value_name=metric)
    return long[["region", "date", metric]]


def _get_table(source: Any, name: str) -> pd.DataFrame | None:
    """A table from a mapping of DataFrames or an :class:`analysis.data.Dataset` (None when absent)."""
    try:
        table = source[name]
    except (KeyError, TypeError):
        table = getattr(source, name, None) if not isinstance(source, dict) else None
    return table if isinstance(table, pd.DataFrame) else None


#: Name of the summed treated regions in :func:`geo_lift`'s results and readings.
GEO_TREATED = "the treated regions"


def geo_lift(
    data_or_tables: Any,
    campaign_id: str,
    *,
    metric: str = "revenue",
    alpha: float = 0.05,
    treatment_start: Any = None,
    treatment_end: Any = None,
    placebos: bool = True,
    n_sims: int = 1000,
    seed: int = 0,
    ci_method: str = "conformal",
    designs: tuple[str, ...] = ("synthetic_control", "causal_impact"),
) -> list[LiftResult]:
    """Read a geo holdout with every design it supports: synthetic control and structural time series.

    The campaign's treatment regions are summed into one unit (:func:`geo_panel`) and compared over the
    campaign window (``start_date`` to ``end_date`` of the ``campaigns`` table; later days, which may
    still carry the campaign's after-effects, are dropped) with

    1. :func:`synthetic_control` with ``rescale=True``: every control region is scaled to the treated
       total's pre-period level, so the simplex weights match the total's shape although it is many
       times any single region; in-space placebos and the conformal interval as usual;
    2. :func:`analysis.lift.its.causal_impact` with each control region as a separate regressor (its
       coefficient a state with a diffuse prior) and its default ``parameter_uncertainty="boundary"``
       (variances estimated at zero are redrawn, so the counterfactual may drift). On the simulator
       this covered the truth at or above the nominal rate, while the summed controls under-covered
       (see ``docs/validation_lift.md``).

    A staggered roll-out recorded in ``geo_assignment`` (treatment regions with different
    ``start_date``) is read the same way, from the campaign start: the effect is then diluted over the
    days before each region adopts, which is what the geo reading measures.

    Parameters
    ----------
    data_or_tables : Dataset or mapping of str to pd.DataFrame
        Needs ``geo_sales_daily`` and ``geo_assignment``; ``campaigns`` for the window unless
        ``treatment_start`` and ``treatment_end`` are given. An :class:`analysis.data.Dataset` (processed
        data) or the dict of tables of :func:`analysis.simulate.generate` both work.
    campaign_id : str
        The campaign.
    metric : str
        Column of ``geo_sales_daily`` to analyse (``"revenue"`` or ``"orders"``).
    alpha : float
        1 - level of the intervals.
    treatment_start, treatment_end : date-like, optional
        Override the campaign window (both ends inclusive).
    placebos : bool
        Run the synthetic control's in-space placebos (the p-value needs them).
    n_sims, seed : int
        Simulated counterfactual paths of the structural model and their seed.
    ci_method : str
        The synthetic control's interval (see :func:`synthetic_control`; the default allows an effect
        that builds up or decays over the window).
    designs : tuple of str
        Which readings to run, in the order returned: ``"synthetic_control"``, ``"causal_impact"``.

    Returns
    -------
    list of LiftResult
        ``[SynthResult, ImpactResult]`` by default (one entry per ``designs``); ``effect`` in both is the
        average per-day difference of the treated regions' total over the window, as the simulator's
        ``geo`` truth is defined.

    Examples
    --------
    >>> from analysis.simulate import generate
    >>> tables, truth = generate(seed=7, campaigns=4, days=240, show_progress=False)
    >>> sc, its = geo_lift(tables, "C01")
    >>> [r.design for r in (sc, its)]
    ['synthetic_control', 'causal_impact']
    """
    from analysis.lift.its import causal_impact

    check_alpha(alpha)
    sales, assign = _get_table(data_or_tables, "geo_sales_daily"), _get_table(data_or_tables, "geo_assignment")
    absent = [n for n, t in (("geo_sales_daily", sales), ("geo_assignment", assign)) if t is None]
    if absent:
        raise ValueError(f"A geo lift needs the table(s) {absent}, which this data set does not have.")
    assert sales is not None and assign is not None
    start, end = treatment_start, treatment_end
    if start is None or end is None:
        camps = _get_table(data_or_tables, "campaigns")
        if camps is None:
            raise ValueError("No campaigns table to read the campaign window from; pass treatment_start and "
                             "treatment_end.")
        row = camps[camps["campaign_id"].astype(str) == str(campaign_id)]
        if row.empty:
            raise ValueError(f"Campaign {campaign_id!r} is not in the campaigns table.")
        start = row["start_date"].iloc[0] if start is None else start
        end = row["end_date"].iloc[0] if end is None else end
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if end < start:
        raise ValueError(f"The window ends ({end.date()}) before it starts ({start.date()}).")
    panel = geo_panel(sales, assign, campaign_id, metric=metric, treated_label=GEO_TREATED)
    panel = panel[panel["date"] <= end]
    notes = _geo_overlap_warnings(assign, _get_table(data_or_tables, "campaigns"), campaign_id,
                                  panel["date"].min(), start, end)
    unknown = [d for d in designs if d not in ("synthetic_control", "causal_impact")]
    if unknown or not designs:
        raise ValueError(f"designs must be drawn from ('synthetic_control', 'causal_impact'), got {designs!r}.")
    out: list[LiftResult] = []
    for name in designs:
        if name == "synthetic_control":
            res: LiftResult = synthetic_control(
                panel, outcome=metric, unit="region", time="date", treated_unit=GEO_TREATED, treatment_start=start,
                treatment_end=end, alpha=alpha, rescale=True, placebos=placebos, ci_method=ci_method,
                progress_bar=False)
        else:
            wide = panel.pivot(index="date", columns="region", values=metric).sort_index()
            controls = [c for c in wide.columns if c != GEO_TREATED]
            outcome = metric if metric not in controls else f"{metric} (treated)"
            wide = wide.rename(columns={GEO_TREATED: outcome})
            res = causal_impact(wide, outcome=outcome, controls=controls, treatment_start=start, alpha=alpha,
                                n_sims=n_sims, seed=seed)
        out.append(_with_warnings(res, notes) if notes else res)
    return out


def _with_warnings(result: LiftResult, extra: list[str]) -> LiftResult:
    import dataclasses

    return dataclasses.replace(result, warnings=tuple(result.warnings) + tuple(extra))


def _geo_overlap_warnings(assign: pd.DataFrame, camps: pd.DataFrame | None, campaign_id: str,
                          first: pd.Timestamp, start: pd.Timestamp, end: pd.Timestamp) -> list[str]:
    """Warn when another geo campaign ran in this campaign's regions during its pre- or test period."""
    if camps is None or not {"campaign_id", "start_date", "end_date"} <= set(camps.columns):
        return []
    mine = set(assign.loc[assign["campaign_id"].astype(str) == str(campaign_id), "region"].astype(str))
    out = []
    for cid, g in assign.groupby(assign["campaign_id"].astype(str)):
        if cid == str(campaign_id):
            continue
        row = camps[camps["campaign_id"].astype(str) == cid]
        if row.empty:
            continue
        s, e = pd.Timestamp(row["start_date"].iloc[0]), pd.Timestamp(row["end_date"].iloc[0])
        treated = set(g.loc[g["group"].astype(str) == "treatment", "region"].astype(str)) & mine
        if treated and s <= end and e >= first:
            when = "test window" if e >= start else "pre-period"
            out.append(f"Campaign {cid} ran in {len(treated)} of these regions from {s.date()} to {e.date()}, "
                       f"overlapping this campaign's {when}: its effect can bias this reading.")
    return out


# --------------------------------------------------------------------------------------------------
# simulation: a data-generating process that is not the estimator's model
# --------------------------------------------------------------------------------------------------
def factor_panel(seed: int, *, n_donors: int = 20, n_pre: int = 60, n_post: int = 20, n_factors: int = 3,
                 effect: float = 5.0, noise_ar: float = 0.5, noise_sd: float = 2.0,
                 start: str = "2024-01-01", exchangeable: bool = False) -> tuple[pd.DataFrame, float]:
    """Simulated regions from an interactive fixed-effects (factor) model with AR(1) noise.

    ``y_it = 100 + 10 * lambda_i' f_t + e_it`` with AR(0.8) factors, loadings drawn per region (the treated
    region's from the middle of the donors' range), AR(``noise_ar``) idiosyncratic noise, and a lift
    on the treated region that ramps linearly over the post-period and averages ``effect``. Neither the
    synthetic control nor the structural time-series model is this process. With ``exchangeable=True``
    the treated region's loadings come from the donors' distribution instead, so before the lift every
    region is a draw from the same process (the premise of the in-space placebo test).

    Returns
    -------
    (pd.DataFrame, float)
        Long panel ``region, date, y`` (treated region ``"treated"``, treatment from
        ``date == start + n_pre days``) and the true average post-period effect.
    """
    rng = np.random.default_rng(seed)
    T = n_pre + n_post
    f = np.zeros((T, n_factors))
    shocks = rng.normal(size=(T, n_factors))
    for t in range(T):
        f[t] = (0.8 * f[t - 1] if t else 0.0) + shocks[t]
    lam_treated = rng.uniform(0.8, 1.2, n_factors)
    lam = np.vstack([rng.uniform(0.3, 1.7, n_factors) if exchangeable else lam_treated,
                     rng.uniform(0.3, 1.7, (n_donors, n_factors))])
    e = np.zeros((T, n_donors + 1))
    eps = rng.normal(0, noise_sd * np.sqrt(1 - noise_ar ** 2), size=(T, n_donors + 1))
    for t in range(T):
        e[t] = (noise_ar * e[t - 1] if t else eps[t] / np.sqrt(1 - noise_ar ** 2)) + (eps[t] if t else 0)
    Y = 100 + 10 * f @ lam.T + e
    ramp = np.linspace(0.5, 1.5, n_post)
    Y[n_pre:, 0] += effect * ramp / ramp.mean()
    dates = pd.date_range(start, periods=T, freq="D")
    names = ["treated", *[f"r{j:02d}" for j in range(n_donors)]]
    panel = pd.DataFrame(Y, index=dates, columns=names)
    panel.index.name = "date"
    long = panel.reset_index().melt(id_vars="date", var_name="region", value_name="y")
    return long[["region", "date", "y"]], float(effect)


def simulation_study(n_sims: int = 300, *, effect: float = 5.0, seed: int = 1000, augment: str | None = None,
                     ci_method: str = "conformal", progress_bar: bool | None = None,
                     **panel_kwargs: Any) -> pd.DataFrame:
    """Repeat :func:`synthetic_control` on :func:`factor_panel` draws; one row per simulated campaign.

    ``ci_method`` is passed to :func:`synthetic_control`.

    Columns: ``seed``, ``truth``, ``effect``, ``ci_low``, ``ci_high``, ``covered``, ``p_value``,
    ``significant`` (interval excludes zero) and ``placebo_reject`` (p-value at most 0.05).
    """
    rows = []
    show = None if progress_bar is None else not progress_bar
    for i in progress(range(n_sims), desc="synthetic control study", disable=show):
        panel, truth = factor_panel(seed + i, effect=effect, **panel_kwargs)
        start = panel["date"].min() + pd.Timedelta(days=panel_kwargs.get("n_pre", 60))
        r = synthetic_control(panel, outcome="y", unit="region", time="date", treated_unit="treated",
                              treatment_start=start, augment=augment, in_time_placebo=None,
                              ci_method=ci_method, progress_bar=False)
        rows.append({"seed": seed + i, "truth": truth, "effect": r.effect, "ci_low": r.ci_low,
                     "ci_high": r.ci_high, "covered": r.ci_low <= truth <= r.ci_high, "p_value": r.p_value,
                     "significant": r.significant, "placebo_reject": (r.p_value or 1.0) <= 0.05})
    return pd.DataFrame(rows)


def summarise_study(study: pd.DataFrame) -> dict[str, float]:
    """Coverage, bias (relative to the true effect), rejection rates of a :func:`simulation_study`."""
    truth = float(study["truth"].iloc[0])
    out = {"n": float(len(study)), "coverage": float(study["covered"].mean()),
           "mean_effect": float(study["effect"].mean()),
           "mean_ci_width": float((study["ci_high"] - study["ci_low"]).mean()),
           "rejection_rate_ci": float(study["significant"].mean())}
    if "placebo_reject" in study:
        out["rejection_rate_placebo"] = float(study["placebo_reject"].mean())
    out["bias"] = out["mean_effect"] - truth
    out["relative_bias"] = out["bias"] / truth if truth else float("nan")
    return out


# --------------------------------------------------------------------------------------------------
# validation on the simulator: geo holdouts with known truth
# --------------------------------------------------------------------------------------------------
def _simulator_rows(seed: int, null: bool, campaigns: int, days: int, n_sims: int,
                    ci_method: str = "conformal") -> list[dict[str, Any]]:
    """Both geo designs on every geo campaign of one simulated data set (one row per design)."""
    import warnings as _w

    from analysis.simulate import generate

    with _w.catch_warnings():
        _w.simplefilter("ignore")
        tables, truth = generate(seed=seed, campaigns=campaigns, days=days, show_progress=False,
                                 effect_scale=0.0 if null else 1.0)
    rows = []
    for cid, t in truth["campaigns"].items():
        for entry in t.get("lift", []):
            if entry.get("design") != "geo":
                continue
            start = pd.Timestamp(entry["window"]["start"])
            end = pd.Timestamp(entry["window"]["end"])
            target, rel_target = float(entry["effect"]), float(entry["relative_effect"])
            with _w.catch_warnings():
                _w.simplefilter("ignore")
                results = geo_lift(tables, cid, metric=entry["metric"], treatment_start=start,
                                   treatment_end=end, n_sims=n_sims, seed=seed, ci_method=ci_method)
            for r in results:
                rows.append({
                    "seed": seed, "campaign_id": cid, "design": r.design, "null": null,
                    "window_days": int((end - start).days) + 1, "truth": target, "effect": r.effect,
                    "ci_low": r.ci_low, "ci_high": r.ci_high, "covered": r.ci_low <= target <= r.ci_high,
                    "relative_truth": rel_target, "relative_effect": r.relative_effect,
                    "p_value": r.p_value, "significant": r.significant,
                    "placebo_reject": (r.p_value is not None and r.p_value <= 0.05)
                    if r.design == "synthetic_control" else None,
                })
    return rows


def _simulator_task(args: tuple[int, bool, int, int, int, str]) -> list[dict[str, Any]]:
    return _simulator_rows(*args)


def simulator_study(seeds: Iterable[int], *, null: bool = False, campaigns: int = 4, days: int = 240,
                    n_sims: int = 500, ci_method: str = "conformal", jobs: int = 2,
                    progress_bar: bool | None = None) -> pd.DataFrame:
    """Run :func:`geo_lift` on every geo campaign of simulated data sets with known truth.

    Parameters
    ----------
    seeds : iterable of int
        Simulator seeds; each data set has at least one geo campaign with ``campaigns=4, days=240``.
    null : bool
        Measure false positives: the same data sets generated with ``effect_scale=0``, which injects no
        campaign effect (the truth then records zero).
    campaigns, days : int
        Simulator size.
    n_sims : int
        Counterfactual paths of the structural model.
    ci_method : str
        The synthetic control's interval (see :func:`synthetic_control`).
    jobs : int
        Worker processes (1 runs in this process).
    progress_bar : bool, optional
        Show progress over seeds.

    Returns
    -------
    pd.DataFrame
        One row per seed, geo campaign and design: ``seed``, ``campaign_id``, ``design``, ``null``,
        ``window_days``, ``truth`` (the injected average per-day revenue of the treated regions),
        ``effect``, ``ci_low``, ``ci_high``, ``covered``, ``relative_truth``, ``relative_effect``,
        ``p_value``, ``significant`` (interval excludes zero), ``placebo_reject`` (synthetic control's
        placebo p-value at most 0.05).
    """
    if ci_method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {list(CI_METHODS)}, got {ci_method!r}.")
    tasks = [(int(s), bool(null), int(campaigns), int(days), int(n_sims), ci_method) for s in seeds]
    show = None if progress_bar is None else not progress_bar
    rows: list[dict[str, Any]] = []
    if jobs <= 1:
        for task in progress(tasks, desc="geo study", disable=show):
            rows += _simulator_task(task)
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for out in progress(pool.map(_simulator_task, tasks), desc="geo study", total=len(tasks),
                                disable=show):
                rows += out
    return pd.DataFrame(rows)


def summarise_simulator_study(study: pd.DataFrame) -> pd.DataFrame:
    """Per design: campaigns, coverage, bias relative to the mean true effect, mean relative error of the
    relative effect, interval width, and the rate of intervals (and placebo p-values) rejecting zero."""
    out = []
    for design, g in study.groupby("design", sort=False):
        mean_truth = float(g["truth"].mean())
        bias = float((g["effect"] - g["truth"]).mean())
        row = {"design": design, "scenario": "no effect" if bool(g["null"].iloc[0]) else "campaign lift",
               "campaigns": len(g), "coverage_95": float(g["covered"].mean()), "bias": bias,
               "relative_bias": bias / mean_truth if mean_truth else float("nan"),
               "mean_abs_error_relative_effect":
                   float((g["relative_effect"].astype(float) - g["relative_truth"]).abs().mean()),
               "mean_ci_width": float((g["ci_high"] - g["ci_low"]).mean()),
               "rejects_zero_ci": float(g["significant"].mean())}
        pr = g["placebo_reject"].dropna()
        row["placebo_p_le_0.05"] = float(pr.astype(bool).mean()) if len(pr) else float("nan")
        out.append(row)
    return pd.DataFrame(out)
