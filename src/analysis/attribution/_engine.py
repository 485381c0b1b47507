"""The attribution model: baseline regression plus creator exposure through a carry-over kernel.

``y_t = baseline_t + sum_g sum_{c in g} (b_g + u_c) * (k * v_c)_t + e_t``

* ``baseline_t``: intercept, piecewise-linear trend, day of week, the brand's own video views and
  paid impressions (lags 0-3 and the mean of lags 4-10); for orders and revenue also the weeks of the
  retail holiday season;
* ``v_c``: daily exposure of creator ``c``'s posts in campaign ``g`` (views in thousands, weighted by
  the creator's profile-visit rate for followers; site sessions for orders); ``k`` a carry-over kernel
  normalised to sum to one, so ``b_g + u_c`` is the number of outcomes per unit of exposure;
* ``u_c``: the creator's deviation from the campaign mean, penalised (ridge, i.e. a normal random
  effect), with the penalty chosen by blocked cross-validation (one-standard-error rule): partial pooling;
* the kernel (geometric or discretised Weibull, several parameters each) is chosen by blocked
  cross-validation (interleaved 14-day blocks);
* intervals of totals and creators: HAC (Newey-West) standard errors, kernel-averaged, scaled by a
  placebo calibration (the target's exposure shifted to other weeks: the placebos' root mean square
  z-value with a Student quantile for its overlapping-batch degrees of freedom); a creator's variance is
  its prediction-error variance (the sandwich plus the shrinkage bias of the pooled deviation and the
  error its estimated exposure weight passes on);
* daily and cumulative bands (:func:`daily_parts`): the running sum gets the total's kernel-averaged,
  calibrated HAC variance, so the cumulative band ends on the total's interval; a single day gets its
  counterfactual's HAC variance plus a local estimate of the day's noise (uncalibrated);
* overlapping campaigns: each one's modelled effect inside the target's window (its credit there) is linear
  in the outcome too, so the same sandwich gives its covariance with the total (:func:`other_design`);
  a strongly negative correlation says the data cannot split the two campaigns (a collinear overlap);
* kernel-choice diagnostic: a block wild bootstrap of leverage-adjusted residuals (Gaussian multipliers
  constant within 14-day blocks) in which every replicate re-selects the kernel among the best
  candidates (``boot_kernel_counts``). All replicates of one kernel are solved with a single matrix
  product.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import signal, stats

from analysis._blas import single_threaded_blas

#: Longest carry-over considered (days).
MAX_LAG = 56

#: Days between the starts of neighbouring placebo windows (a week keeps the day-of-week alignment).
PLACEBO_STEP = 7

#: Days kept clear between the real attribution window and a placebo window, on either side.
PLACEBO_MARGIN = 7

#: Largest factor the placebo calibration puts on the HAC standard errors (also the factor without placebos).
CALIBRATION_CAP = 4.0

#: Placebo degrees of freedom (:func:`placebo_dof`) under which a capped calibration is called weak: the
#: placebos then span less than about twice the window, too little to measure the spread of a window total.
WEAK_CALIBRATION_DOF = 2.0


@dataclass(frozen=True)
class Kernel:
    """A carry-over kernel: the share of a day's exposure effect that arrives ``k`` days later."""

    family: str
    params: tuple[tuple[str, float], ...]
    weights: np.ndarray = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.family}(" + ", ".join(f"{k}={v:g}" for k, v in self.params) + ")"

    @property
    def mean_lag(self) -> float:
        """Mean delay in days between exposure and response."""
        return float(np.dot(np.arange(len(self.weights)), self.weights))

    @property
    def half_life(self) -> float:
        """Days after the kernel's peak until the daily response falls to half the peak."""
        w = self.weights
        peak = int(np.argmax(w))
        below = np.nonzero(w[peak:] <= w[peak] / 2)[0]
        return float(below[0]) if len(below) else float(len(w) - peak)

    @property
    def median_lag(self) -> float:
        """Days until half of the response has arrived."""
        return float(np.searchsorted(np.cumsum(self.weights), 0.5))


def geometric(rate: float, max_lag: int = MAX_LAG) -> Kernel:
    w = rate ** np.arange(max_lag)
    return Kernel("geometric", (("rate", float(rate)),), w / w.sum())


def weibull(shape: float, scale: float, max_lag: int = MAX_LAG) -> Kernel:
    edges = np.arange(max_lag + 1, dtype=float)
    cdf = stats.weibull_min.cdf(edges, shape, scale=scale)
    w = np.diff(cdf)
    return Kernel("weibull", (("shape", float(shape)), ("scale", float(scale))), w / w.sum())


def kernel_from_dict(d: Mapping[str, Any]) -> Kernel:
    """The kernel described by ``{"family", "params"}`` (as in an attribution's ``kernel`` dictionary)."""
    fam, par = d["family"], d["params"]
    if fam == "geometric":
        return geometric(par["rate"])
    if fam == "weibull":
        return weibull(par["shape"], par["scale"])
    raise ValueError(f"unknown kernel family {fam!r}; expected 'geometric' or 'weibull'")


def candidate_kernels(families: tuple[str, ...] = ("geometric", "weibull")) -> list[Kernel]:
    """The kernels compared by cross-validation."""
    out: list[Kernel] = []
    if "geometric" in families:
        out += [geometric(r) for r in (0.0, 0.3, 0.5, 0.65, 0.75, 0.82, 0.88, 0.93)]
    if "weibull" in families:
        out += [weibull(s, sc) for s in (1.5, 2.0, 3.0) for sc in (2.0, 4.0, 7.0, 11.0, 16.0)]
    if not out:
        raise ValueError(f"no kernels in families {families!r}; use 'geometric' and/or 'weibull'")
    return out


def adstock(x: np.ndarray, kernel: Kernel) -> np.ndarray:
    """Causal convolution of daily exposure (rows are days) with the kernel."""
    if x.size == 0:
        return x.copy()
    return signal.lfilter(kernel.weights, [1.0], x, axis=0)


def block_ids(n: int, block: int) -> np.ndarray:
    return np.arange(n) // block


@dataclass
class Spec:
    """Fixed inputs of one model fit."""

    y: np.ndarray                # (n,) outcome, NaN where missing
    controls: np.ndarray         # (n, q)
    views: np.ndarray            # (n, m) exposure per unit (thousands of views)
    unit_group: np.ndarray       # (m,) campaign index of each unit
    target: int                  # campaign index being attributed
    window: np.ndarray           # (n,) bool: the target campaign's attribution window
    block: int = 14
    folds: int = 5
    pool: bool = True            # False: one coefficient per campaign only (no creator deviations)
    one_se: bool = True          # penalty by the one-standard-error rule (False: the CV minimum)
    exposure_relvar: np.ndarray | None = None  # (m,) relative variance of each unit's exposure weight

    def __post_init__(self) -> None:
        self.ok = np.isfinite(self.y)
        self.groups = np.unique(self.unit_group)
        self.tunits = np.nonzero(self.unit_group == self.target)[0]


def design(spec: Spec, kernel: Kernel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(X, A, pen_mask)``: full design, adstocked exposure per unit, penalised columns."""
    A = adstock(spec.views, kernel)
    G = np.column_stack([A[:, spec.unit_group == g].sum(axis=1) for g in spec.groups])
    if spec.pool:
        X = np.column_stack([spec.controls, G, A])
        pen = np.r_[np.zeros(spec.controls.shape[1] + G.shape[1]), np.ones(A.shape[1])]
    else:
        X = np.column_stack([spec.controls, G])
        pen = np.zeros(X.shape[1])
    return X, A, pen.astype(bool)


def unit_coefs(spec: Spec, beta: np.ndarray) -> np.ndarray:
    """Per-unit outcomes per 1,000 views, ``b_g + u_c`` (rows are units; beta may be p x B)."""
    q = spec.controls.shape[1]
    gidx = np.searchsorted(spec.groups, spec.unit_group)
    b = beta[q + gidx]
    if spec.pool:
        b = b + beta[q + len(spec.groups):]
    return b


def other_units(spec: Spec) -> np.ndarray:
    """Indices of the units that belong to other campaigns than the target (overlapping campaigns)."""
    return np.nonzero(spec.unit_group != spec.target)[0]


def _penalty(G: np.ndarray, pen: np.ndarray, lam: float) -> np.ndarray:
    """Diagonal added to the Gram matrix: ``lam`` on penalised columns, a tiny ridge elsewhere."""
    return np.diag(np.where(pen, lam, 0.0) + 1e-9 * np.maximum(np.diag(G), 1e-12))


class Gram:
    """Gram matrices of the fitting rows and of every cross-validation training set.

    Training-set Gram matrices are the full one minus the held-out rows', so every fit is a
    small ``p x p`` solve and no ``n x n`` hat matrix is ever formed.
    """

    def __init__(self, X: np.ndarray, folds: np.ndarray):
        self.X = X
        self.folds = folds
        self.k = int(folds.max()) + 1
        self.G = X.T @ X
        self.test = [folds == f for f in range(self.k)]
        self.Gf = [self.G - X[te].T @ X[te] for te in self.test]

    def cv_sse(self, Y: np.ndarray, pen: np.ndarray, lam: float) -> np.ndarray:
        """Held-out squared errors per row (``Y`` is rows x B)."""
        out = np.empty_like(Y)
        for te, Gf in zip(self.test, self.Gf):
            XtY = self.X.T @ Y - self.X[te].T @ Y[te]
            beta = np.linalg.solve(Gf + _penalty(Gf, pen, lam), XtY)
            out[te] = (Y[te] - self.X[te] @ beta) ** 2
        return out

    def solve(self, Y: np.ndarray, pen: np.ndarray, lam: float) -> np.ndarray:
        return np.linalg.solve(self.G + _penalty(self.G, pen, lam), self.X.T @ Y)

    def leverage(self, pen: np.ndarray, lam: float) -> np.ndarray:
        M = np.linalg.solve(self.G + _penalty(self.G, pen, lam), self.X.T)
        return np.einsum("ij,ji->i", self.X, M)


def choose_lambda(gram: Gram, y: np.ndarray, pen: np.ndarray, one_se: bool = True) -> float:
    """Ridge penalty of the creator deviations by blocked cross-validation, one-standard-error rule.

    Among penalties whose cross-validated error is within one standard error of the minimum, the
    largest is taken: creator deviations are only believed when the data clearly ask for them.
    """
    if not pen.any():
        return 0.0
    scale = float(np.mean(np.diag(gram.G)[pen])) or 1.0
    grid = scale * np.logspace(-3, 3, 13)
    err = np.stack([gram.cv_sse(y[:, None], pen, lam)[:, 0] for lam in grid])
    fold_mse = np.stack([err[:, te].mean(axis=1) for te in gram.test], axis=1)
    mean = fold_mse.mean(axis=1)
    se = fold_mse.std(axis=1, ddof=1) / np.sqrt(gram.k)
    i0 = int(np.argmin(mean))
    if not one_se:
        return float(grid[i0])
    ok = np.nonzero(mean <= mean[i0] + se[i0])[0]
    return float(grid[ok.max()])


@dataclass
class KernelFit:
    kernel: Kernel
    X: np.ndarray
    A: np.ndarray
    pen: np.ndarray
    lam: float
    gram: Gram
    cv_mse: float


def fit_kernel(spec: Spec, kernel: Kernel, folds: np.ndarray, lam: float | None = None) -> KernelFit:
    X, A, pen = design(spec, kernel)
    Xo, yo = X[spec.ok], spec.y[spec.ok]
    gram = Gram(Xo, folds)
    if lam is None:
        lam = choose_lambda(gram, yo, pen)
    cv = float(gram.cv_sse(yo[:, None], pen, lam).mean())
    return KernelFit(kernel, X, A, pen, lam, gram, cv)


def cv_error(spec: Spec, kf: KernelFit, folds: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Cross-validated mean squared error of every column of ``Y`` (fitting rows x B)."""
    return kf.gram.cv_sse(Y, kf.pen, kf.lam).mean(axis=0)


@dataclass
class EngineResult:
    """Point estimates, HAC standard errors and the bootstrap's kernel-choice diagnostic of one attribution."""

    spec: Spec
    fits: list[KernelFit]         # every candidate, best (by CV) first
    best: KernelFit
    beta: np.ndarray
    fitted: np.ndarray            # (n,) full-model prediction (NaN-free)
    effect_daily: np.ndarray      # (n, m_t) modelled target-campaign effect per unit and day
    residual: np.ndarray          # (n,) observed - fitted (NaN where missing)
    total: float                  # observed - counterfactual over the window
    unit_total: np.ndarray        # (m_t,) shares of ``total`` per target unit
    alloc: np.ndarray             # (m_t,) allocation of the window residual to units
    err_total: np.ndarray         # (B,) bootstrap errors of ``total`` (a diagnostic: the intervals are HAC)
    err_units: np.ndarray         # (B, m_t)
    boot_kernel_counts: dict[str, int]
    lam: float
    total_se: float = float("nan")          # standard error of ``total`` (HAC, kernel-averaged, calibrated)
    unit_se: np.ndarray | None = None       # (m_t,) standard errors of ``unit_total``
    kernel_weights: np.ndarray | None = None  # weight of every entry of ``fits``
    calibration: float = 1.0                # placebo calibration factor applied to the standard errors
    placebo_z: np.ndarray | None = None     # standardised placebo totals (campaign-free, shifted exposure)
    placebo_dof: float = float("nan")       # degrees of freedom of the placebos' spread (:func:`placebo_dof`)
    raw_se: float = float("nan")            # ``total_se`` before calibration
    daily_se: np.ndarray | None = None      # (n,) standard error of the daily incremental (NaN off the window;
                                            # not placebo-calibrated: the placebos calibrate window sums)
    cum_se: np.ndarray | None = None        # (n,) standard error of the cumulative incremental
    other_daily: np.ndarray | None = None   # (n, m - m_t) modelled effect of every other campaign's units
    other_groups: np.ndarray | None = None  # (k,) the other campaigns (indices into ``spec.groups`` values)
    other_credit: np.ndarray | None = None  # (k,) each one's modelled effect summed over the target's window
    other_se: np.ndarray | None = None      # (k,) its standard error (calibrated like ``total_se``)
    other_total_cov: np.ndarray | None = None  # (k,) its covariance with ``total`` (calibrated)


def _allocation(effect_units: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    pos = np.maximum(effect_units, 0.0)
    if pos.sum() > 0:
        return pos / pos.sum()
    if exposure.sum() > 0:
        return exposure / exposure.sum()
    return np.full(len(effect_units), 1.0 / max(len(effect_units), 1))


def kernel_weights(cv_mse: np.ndarray, n: int) -> np.ndarray:
    """Weights of the kernels from held-out fit: ``exp(-n/2 * log(cv_k / cv_min))``, normalised.

    The Gaussian pseudo-likelihood of the blocked cross-validation error (pseudo Bayesian model
    averaging): kernels that predict held-out days about as well as the best share the weight.
    """
    cv = np.asarray(cv_mse, float)
    w = np.exp(-0.5 * n * (np.log(cv) - np.log(cv.min())))
    w[w < 1e-4] = 0.0
    return w / w.sum()


def hac_cov(F: np.ndarray, r: np.ndarray, lags: int) -> np.ndarray:
    """Newey-West covariance of the linear functionals ``F.T @ y`` given residuals ``r``.

    ``sum_t sum_s F_t F_s' r_t r_s k(|t - s|)`` with Bartlett weights ``k(l) = 1 - l / (lags + 1)``:
    the sandwich covariance of any estimate that is linear in the outcome (least squares or ridge,
    whose functional rows are ``X (X'X + P)^-1 g``), robust to heteroskedasticity and to residual
    autocorrelation up to ``lags`` days.
    """
    Fr = F * r[:, None]
    S = Fr.T @ Fr
    for lag in range(1, min(lags, len(r) - 1) + 1):
        C = Fr[lag:].T @ Fr[:-lag]
        S += (1.0 - lag / (lags + 1.0)) * (C + C.T)
    return S


def hac_diag(F: np.ndarray, r: np.ndarray, lags: int) -> np.ndarray:
    """The diagonal of :func:`hac_cov` (variances only, without forming the full matrix)."""
    Fr = F * r[:, None]
    out = np.sum(Fr * Fr, axis=0)
    for lag in range(1, min(lags, len(r) - 1) + 1):
        out += 2.0 * (1.0 - lag / (lags + 1.0)) * np.sum(Fr[lag:] * Fr[:-lag], axis=0)
    return out


def linear_parts(spec: Spec, kf: KernelFit, lags: int, *, units: bool = True) -> dict:
    """Point estimates of one kernel's fit and the covariance of the unit and total attributions.

    Every attribution is linear in the outcome for a fixed kernel and penalty: a unit's share is its
    modelled effect ``(b_g + u_c) * w_c`` (``w_c`` the creator's adstocked views in the window) plus its
    allocation of the window's residual, and the total is observed minus counterfactual over the window.
    The total's variance is the HAC sandwich. A unit's variance is its prediction-error variance:
    the HAC sandwich plus the shrinkage bias of the partially pooled deviations (empirical Bayes,
    :func:`shrinkage_tau2`) plus, where ``spec.exposure_relvar`` is given, the part of the
    exposure weight's uncertainty that the pooling passes on (:func:`exposure_term`); ``units=False``
    skips these two terms (placebos need the total only).
    """
    ok, W = spec.ok, spec.window
    Xo, yo = kf.X[ok], spec.y[ok]
    Wo = W[ok]
    n, p = Xo.shape
    Minv = np.linalg.inv(kf.gram.G + _penalty(kf.gram.G, kf.pen, kf.lam))
    beta = Minv @ (Xo.T @ yo)
    q = spec.controls.shape[1]
    ng = len(spec.groups)
    tu = spec.tunits
    At_w = kf.A[:, tu][W].sum(axis=0)
    Gm = target_design(spec, p, np.diag(At_w)).T                 # one column per unit: its window exposure
    unit_effect = Gm.T @ beta
    srow = Xo[Wo].sum(axis=0)
    wres = float(yo[Wo].sum() - srow @ beta)
    alloc = _allocation(unit_effect, At_w)
    aW = Wo.astype(float) - Xo @ (Minv @ srow)
    F = Xo @ (Minv @ Gm) + aW[:, None] * alloc[None, :]
    Go = other_design(spec, kf, p)                                 # one column per other campaign: its credit
    m_t = len(tu)
    F = np.column_stack([F, F.sum(axis=1), Xo @ (Minv @ Go)])
    r = yo - Xo @ beta
    dof = n / max(n - float(np.trace(Minv @ kf.gram.G)), 1.0)
    S = hac_cov(F, r, lags) * dof
    other = {"other_credit": Go.T @ beta, "other_var": np.diag(S)[m_t + 1:].copy(),
             "other_total_cov": S[m_t, m_t + 1:].copy()}
    S = S[:m_t + 1, :m_t + 1]
    unit_var = np.diag(S)[:-1].copy()
    unit_hac = unit_var.copy()
    tau2 = 0.0
    if units and kf.pen.any() and kf.lam > 0:
        # shrinkage bias of the partially pooled unit attributions: every attribution is L' beta plus a
        # constant, E[beta_hat] - beta = -(X'X + P)^-1 P beta, so the bias is -lam L' M^-1_(.,u) u
        L = Gm - srow[:, None] * alloc[None, :]
        tau2 = shrinkage_tau2(Xo, Minv, beta, r, kf.pen, kf.lam, lags, dof)
        Bm = kf.lam * (L.T @ Minv[:, kf.pen])
        unit_var += tau2 * np.sum(Bm * Bm, axis=1)
        if spec.exposure_relvar is not None:
            unit_var += exposure_term(unit_effect, kf.lam * np.diag(Minv)[q + ng + tu],
                                      np.asarray(spec.exposure_relvar, float)[tu])
    allc = unit_coefs(spec, beta)
    coef = allc[tu]
    oth = other_units(spec)
    out = {"beta": beta, "fitted": kf.X @ beta, "effect_daily": kf.A[:, tu] * coef[None, :],
           "other_daily": kf.A[:, oth] * allc[oth][None, :],
           "unit_total": unit_effect + alloc * wres, "total": float(unit_effect.sum() + wres),
           "unit_var": unit_var, "unit_var_hac": unit_hac, "total_var": float(S[-1, -1]), "alloc": alloc,
           "tau2": tau2, **other}
    if units:
        out.update(daily_parts(spec, kf, Minv, beta, r, lags, dof))
    return out


def target_design(spec: Spec, p: int, At: np.ndarray) -> np.ndarray:
    """The target campaign's columns of the design for rows of its units' adstocked exposure.

    ``At`` has one column per target unit (``spec.tunits``) and one row per case (a day, or a unit with
    its window total on the diagonal); the result has the design's ``p`` columns: the campaign's group
    column holds the row's summed exposure and, with pooling, each unit's deviation column its own.
    """
    q, ng = spec.controls.shape[1], len(spec.groups)
    out = np.zeros((At.shape[0], p))
    out[:, q + int(np.searchsorted(spec.groups, spec.target))] = At.sum(axis=1)
    if spec.pool:
        out[:, q + ng + spec.tunits] = At
    return out


def other_campaigns(spec: Spec) -> np.ndarray:
    """The campaign indices other than the target's, in ``spec.groups`` order (the columns of
    :func:`other_design`)."""
    return spec.groups[spec.groups != spec.target]


def other_design(spec: Spec, kf: KernelFit, p: int) -> np.ndarray:
    """One column per other campaign (:func:`other_campaigns`): the design weights whose product with
    ``beta`` is that campaign's modelled effect summed over the target's window (its credit there)."""
    q, ng = spec.controls.shape[1], len(spec.groups)
    og = other_campaigns(spec)
    out = np.zeros((p, len(og)))
    aw = kf.A[spec.window].sum(axis=0)                             # every unit's adstocked exposure in the window
    for j, g in enumerate(og):
        sel = np.nonzero(spec.unit_group == g)[0]
        out[q + int(np.searchsorted(spec.groups, g)), j] = aw[sel].sum()
        if spec.pool:
            out[q + ng + sel, j] = aw[sel]
    return out


def daily_parts(spec: Spec, kf: KernelFit, Minv: np.ndarray, beta: np.ndarray, r: np.ndarray, lags: int,
                dof: float) -> dict:
    """Daily and cumulative incremental over the window and their HAC variances.

    A window day's incremental is observed minus counterfactual, ``y_s - (x_s - g_s)' beta`` (``g_s`` the
    target campaign's columns of the design on that day), or the modelled effect ``g_s' beta`` where the
    outcome is missing; the cumulative sums them up to each day, so its last value is the total. Both are
    linear in the outcome. The cumulative's variance is the same Newey-West sandwich as the total's, so
    its band ends on the total's interval; a day's variance is the sandwich of its counterfactual plus
    the day's own noise, the mean squared residual of the 15 days around it.
    """
    ok, W = spec.ok, spec.window
    wdx = np.nonzero(W)[0]
    Gd = target_design(spec, kf.X.shape[1], kf.A[:, spec.tunits][wdx])   # one row per window day
    okw = ok[wdx]
    V = np.where(okw[:, None], kf.X[wdx] - Gd, -Gd)              # daily value = [y_s] - V_s' beta
    value = -(V @ beta)
    pos = np.cumsum(ok) - 1                                       # row of each day among the observed ones
    value[okw] += spec.y[wdx[okw]]
    D = -(kf.X[ok] @ (Minv @ V.T))                                # (n_ok, |W|) influence via the counterfactual
    cf_var = hac_diag(D, r, lags) * dof
    D[pos[wdx[okw]], np.nonzero(okw)[0]] += 1.0                    # plus the day's own outcome
    C = np.cumsum(D, axis=1)
    cum_var = hac_diag(C, r, lags) * dof
    # a single day's own noise: one squared residual is too noisy a variance estimate, so the day's
    # noise variance is the mean squared residual of the 15 days around it (observed days only)
    r2 = np.zeros(len(ok))
    r2[ok] = r ** 2 * dof
    box = np.ones(15)
    sums, counts = np.convolve(r2, box, mode="same"), np.convolve(ok.astype(float), box, mode="same")
    local = np.where(counts >= 5, sums / np.maximum(counts, 1.0), float(np.mean(r ** 2) * dof))[wdx]
    daily_var = cf_var + np.where(okw, local, 0.0)
    return {"daily": value, "cum": np.cumsum(value), "daily_var": daily_var, "cum_var": cum_var}


def exposure_term(unit_effect: np.ndarray, shrink: np.ndarray, relvar: np.ndarray) -> np.ndarray:
    """Variance a unit's attribution inherits from the error of its exposure weight.

    A unit's modelled effect is (pooled coefficient) x (weighted exposure). Where the unit's own data
    determine its coefficient, an error in its weight is absorbed by the coefficient; where the
    coefficient comes from the pool (shrinkage fraction ``shrink`` = ``lam [(X'X + P)^-1]_cc``, near 1
    for a creator with little exposure), the relative error of the weight passes on:
    ``(effect x shrink)^2 x relvar`` (delta method).
    """
    s = np.clip(shrink, 0.0, 1.0)
    return (np.asarray(unit_effect, float) * s) ** 2 * np.nan_to_num(relvar, nan=0.0, posinf=0.0)


def shrinkage_tau2(Xo: np.ndarray, Minv: np.ndarray, beta: np.ndarray, r: np.ndarray, pen: np.ndarray,
                   lam: float, lags: int, dof: float) -> float:
    """Method-of-moments variance ``tau^2`` of the creator deviations (the random effect's prior).

    With ``u_hat = R u + noise``, ``R = I - lam [(X'X + P)^-1]_uu`` the ridge's resolution on the
    deviations and ``V`` the HAC covariance of the noise part, ``E ||u_hat||^2 = tau^2 tr(R R') + tr V``,
    so ``tau^2 = max(0, (||u_hat||^2 - tr V) / tr(R R'))`` (all units of the model share the penalty
    and the prior).
    """
    u = beta[pen]
    R = np.eye(int(pen.sum())) - lam * Minv[np.ix_(pen, pen)]
    trV = float(hac_diag(Xo @ Minv[:, pen], r, lags).sum()) * dof
    den = float(np.sum(R * R))
    return max(0.0, (float(u @ u) - trV) / den) if den > 0 else 0.0


def coef_variance(spec: Spec, kf: KernelFit, lags: int) -> np.ndarray:
    """Prediction-error variance of every unit's coefficient ``b_g + u_c`` (HAC plus shrinkage bias)."""
    ok = spec.ok
    Xo, yo = kf.X[ok], spec.y[ok]
    n, p = Xo.shape
    Minv = np.linalg.inv(kf.gram.G + _penalty(kf.gram.G, kf.pen, kf.lam))
    beta = Minv @ (Xo.T @ yo)
    q = spec.controls.shape[1]
    gidx = np.searchsorted(spec.groups, spec.unit_group)
    m = len(spec.unit_group)
    C = np.zeros((p, m))
    C[q + gidx, np.arange(m)] = 1.0
    if spec.pool:
        C[q + len(spec.groups) + np.arange(m), np.arange(m)] = 1.0
    r = yo - Xo @ beta
    dof = n / max(n - float(np.trace(Minv @ kf.gram.G)), 1.0)
    var = hac_diag(Xo @ (Minv @ C), r, lags) * dof
    if kf.pen.any() and kf.lam > 0:
        tau2 = shrinkage_tau2(Xo, Minv, beta, r, kf.pen, kf.lam, lags, dof)
        Bm = kf.lam * (C.T @ Minv[:, kf.pen])
        var += tau2 * np.sum(Bm * Bm, axis=1)
    return np.maximum(var, 0.0)


def placebo_z(spec: Spec, kf: KernelFit, lags: int, *, step: int = PLACEBO_STEP,
              margin: int = PLACEBO_MARGIN) -> np.ndarray:
    """Standardised totals of placebo campaigns: the target's exposure moved to other weeks.

    Every target unit's daily exposure (and the attribution window with it) is shifted circularly by
    multiples of ``step`` days to positions that do not overlap the real window (plus ``margin``). The
    shifted units enter the model as one more campaign, with the same kernel, the same creator pooling
    and penalty as the real one, and the placebo's total (observed minus counterfactual over the
    shifted window, which contains no effect of it) is divided by its HAC standard error. The
    distribution of these z-values is the yardstick of :func:`calibration_factor`.
    """
    W = spec.window
    idx = np.nonzero(W)[0]
    if len(idx) == 0:
        return np.zeros(0)
    n_all = len(W)
    lw = int(idx[-1] - idx[0] + 1)
    tu = spec.tunits
    new_group = int(spec.groups.max()) + 1
    out = []
    for d in range(lw + margin, n_all - lw - margin + 1, step):
        Wp = np.roll(W, d)
        if (Wp & spec.ok).sum() < lw // 2:
            continue
        shifted = np.roll(spec.views[:, tu], d, axis=0)
        sp = Spec(y=spec.y, controls=spec.controls, views=np.column_stack([spec.views, shifted]),
                  unit_group=np.r_[spec.unit_group, np.full(len(tu), new_group)], target=new_group, window=Wp,
                  block=spec.block, folds=spec.folds, pool=spec.pool)
        X, A, pen = design(sp, kf.kernel)
        Xo = X[sp.ok]
        light = KernelFit(kf.kernel, X, A, pen, kf.lam, _GramOnly(Xo.T @ Xo), float("nan"))
        parts = linear_parts(sp, light, lags, units=False)
        if parts["total_var"] > 0:
            out.append(parts["total"] / np.sqrt(parts["total_var"]))
    return np.asarray(out)


class _GramOnly:
    """The part of :class:`Gram` that :func:`linear_parts` needs."""

    def __init__(self, G: np.ndarray):
        self.G = G


def placebo_dof(n_placebos: int, window_days: int, step: int = PLACEBO_STEP) -> float:
    """Degrees of freedom of the placebos' variance estimate (overlapping batch means).

    The placebo windows are ``window_days`` long and start every ``step`` days, so neighbours overlap
    and the ``n`` placebo totals are overlapping batch sums of one residual series spanning about
    ``n * step`` days. The variance estimate from overlapping batches of length ``b`` over ``N`` days
    has about ``1.5 (N / b - 1)`` degrees of freedom (Meketon and Schmeiser 1984; Welch 1987), far fewer
    than the number of placebos. At least 1.
    """
    if n_placebos <= 0 or window_days <= 0:
        return 1.0
    return max(1.0, 1.5 * (n_placebos * step / float(window_days) - 1.0))


def placebo_days_needed(window_days: int, dof: float = WEAK_CALIBRATION_DOF, *, step: int = PLACEBO_STEP,
                        margin: int = PLACEBO_MARGIN) -> int:
    """Days of data in which enough placebos fit beside a ``window_days`` window for ``dof`` degrees of
    freedom (:func:`placebo_dof`): :func:`placebo_z` starts one every ``step`` days clear of the real window
    by ``margin`` days on either side."""
    count = int(np.ceil((dof / 1.5 + 1.0) * window_days / step))
    return 2 * (window_days + margin) + step * (count - 1)


def calibration_factor(z: np.ndarray, alpha: float = 0.05, cap: float = CALIBRATION_CAP, *,
                       window_days: int | None = None, step: int = PLACEBO_STEP) -> float:
    """Factor on the standard errors from the placebo windows' standardised totals ``z``.

    The placebos estimate how much the HAC standard error understates the window total's spread: their
    root mean square ``s = sqrt(mean(z^2))`` (1 if the HAC error were right). That estimate is itself
    uncertain, with the degrees of freedom ``nu`` of :func:`placebo_dof` (the placebos overlap), so the
    interval uses the Student quantile: ``estimate +- t_(nu, 1 - alpha/2) s SE``, expressed as the factor
    ``t_(nu, 1 - alpha/2) s / z_(1 - alpha/2)`` on the standard error. At least 1 (the HAC interval is never
    narrowed) and at most ``cap``. ``window_days`` is the placebo (and real) window's length; without it
    the placebos are taken as independent (``nu = n - 1``). Without any placebo (data too short to place
    one beside the real window) the factor is ``cap``, the limit of the rule as the degrees of freedom
    fall to one: nothing measures how much the HAC error understates the spread, and on the simulator
    that is what an uncalibrated interval of a short export misses (``docs/validation_attribution.md``).
    """
    z = np.asarray(z, float)
    z = z[np.isfinite(z)]
    if len(z) == 0:
        return float(cap)
    nu = placebo_dof(len(z), window_days, step) if window_days else max(1.0, len(z) - 1.0)
    s = float(np.sqrt(np.mean(z ** 2)))
    q = float(stats.t.ppf(1 - alpha / 2, nu)) * s
    return float(np.clip(q / stats.norm.ppf(1 - alpha / 2), 1.0, cap))


def run(spec: Spec, **kwargs) -> EngineResult:
    """Fit and bootstrap (see :func:`_run`), with BLAS limited to one thread."""
    with single_threaded_blas():
        return _run(spec, **kwargs)


def _run(spec: Spec, *, kernels: list[Kernel] | None = None, n_boot: int = 1000, seed: int = 0,
        top: int = 6, boot_chunk: int = 500, lam: float | None = None, hac_lags: int | None = None,
        calibrate: bool = True, alpha: float = 0.05) -> EngineResult:
    """Fit every kernel, pick the best by blocked CV, and bootstrap totals, units and days.

    Parameters
    ----------
    spec : Spec
        Outcome, controls and exposure.
    kernels : list of Kernel, optional
        Candidates (default :func:`candidate_kernels`).
    n_boot : int
        Bootstrap replicates (0 for point estimates only).
    seed : int
        Seed of the bootstrap multipliers.
    top : int
        Kernels re-compared (by the same blocked CV) in every replicate.
    boot_chunk : int
        Replicates solved per matrix product (memory bound).
    lam : float, optional
        Fixed penalty of the creator deviations (default: blocked CV, one-standard-error rule).
    hac_lags : int, optional
        Newey-West truncation lag in days (default ``spec.block``).
    calibrate : bool
        Scale the standard errors by the placebo calibration factor (:func:`placebo_z`).
    alpha : float
        One minus the coverage the calibration aims at (:func:`calibration_factor`).

    The total and creator attributions are averages over the kernels weighted by held-out fit
    (:func:`kernel_weights`); their standard errors combine each kernel's HAC variance with the spread
    between kernels, and so do the daily and cumulative bands (:func:`daily_parts`). The bootstrap
    (re-selecting the kernel per replicate) counts how often each kernel is chosen.
    """
    kernels = candidate_kernels() if kernels is None else kernels
    n_ok = int(spec.ok.sum())
    if n_ok < spec.controls.shape[1] + 20:
        raise ValueError(f"only {n_ok} days with an observed outcome: too few to fit a baseline with "
                         f"{spec.controls.shape[1]} terms")
    folds = block_ids(n_ok, spec.block) % spec.folds
    # stage 1: kernels compared at a common, moderate penalty; stage 2: the penalty of the best
    # kernel by blocked CV; the candidates are then refitted with that penalty
    X0, _, pen0 = design(spec, kernels[0])
    lam0 = float(np.mean(np.sum(X0[spec.ok][:, pen0] ** 2, axis=0))) if pen0.any() else 0.0
    fits = sorted((fit_kernel(spec, k, folds, lam0) for k in kernels), key=lambda f: f.cv_mse)
    if lam is None:
        lam = choose_lambda(fits[0].gram, spec.y[spec.ok], fits[0].pen, spec.one_se)
    fits = sorted((fit_kernel(spec, f.kernel, folds, lam) for f in fits), key=lambda f: f.cv_mse)
    best = fits[0]
    yo = spec.y[spec.ok]
    tu = spec.tunits
    W = spec.window

    def pieces(kf: KernelFit, beta: np.ndarray):
        coef = unit_coefs(spec, beta)[tu]                       # (m_t,) or (m_t, B)
        At = kf.A[:, tu]
        return coef, At

    beta = best.gram.solve(yo, best.pen, best.lam)
    fitted = best.X @ beta
    coef, At = pieces(best, beta)
    effect_daily = At * coef[None, :]
    residual = np.where(spec.ok, spec.y - fitted, np.nan)
    wres = float(np.nansum(residual[W]))
    unit_effect = effect_daily[W].sum(axis=0)
    alloc = _allocation(unit_effect, At[W].sum(axis=0))
    total = float(unit_effect.sum() + wres)
    unit_total = unit_effect + alloc * wres

    # --- bootstrap -----------------------------------------------------------------------
    m_t = len(tu)
    n = len(spec.y)
    err_total = np.zeros(n_boot)
    err_units = np.zeros((n_boot, m_t))
    counts: dict[str, int] = {}
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        Xo = best.X[spec.ok]
        h = best.gram.leverage(best.pen, best.lam)
        r = (yo - Xo @ beta) / np.sqrt(np.clip(1.0 - h, 0.05, None))
        r = r - r.mean()
        blocks = block_ids(n_ok, spec.block)
        nb = int(blocks[-1]) + 1
        cands = fits[:top]
        for fam in sorted({k.kernel.family for k in fits}):  # the best of each family takes part (fixed order)
            fb = next(f for f in fits if f.kernel.family == fam)
            if fb not in cands:
                cands.append(fb)
        for s in range(0, n_boot, boot_chunk):
            B = min(boot_chunk, n_boot - s)
            V = rng.standard_normal((nb, B))[blocks]
            Y = (Xo @ beta)[:, None] + r[:, None] * V                      # fitted + resampled residual
            cv = np.stack([cv_error(spec, kf, folds, Y) for kf in cands])    # (K, B)
            pick = np.argmin(cv, axis=0)
            for j, kf in enumerate(cands):
                sel = pick == j
                if not sel.any():
                    continue
                counts[kf.kernel.label] = counts.get(kf.kernel.label, 0) + int(sel.sum())
                Ys = Y[:, sel]
                bs = kf.gram.solve(Ys, kf.pen, kf.lam)
                cf, Atj = pieces(kf, bs)                                 # (m_t, b)
                res = np.full((n, Ys.shape[1]), 0.0)
                res[spec.ok] = Ys - kf.X[spec.ok] @ bs
                ue = Atj[W].sum(axis=0)[:, None] * cf                    # (m_t, b)
                wr = res[W].sum(axis=0)                                  # (b,)
                tot = ue.sum(axis=0) + wr
                err_total[s + np.nonzero(sel)[0]] = tot - unit_effect.sum()
                err_units[s + np.nonzero(sel)[0]] = (ue + alloc[:, None] * wr).T - unit_effect[None, :]
    # --- kernel averaging and HAC (Newey-West) inference on the linear attributions ----------
    lags = spec.block if hac_lags is None else int(hac_lags)
    wts = kernel_weights(np.array([f.cv_mse for f in fits]), n_ok)
    parts = [(w, linear_parts(spec, f, lags)) for w, f in zip(wts, fits) if w > 0]
    total = float(sum(w * p["total"] for w, p in parts))
    unit_total = sum(w * p["unit_total"] for w, p in parts)
    total_var = sum(w * (p["total_var"] + (p["total"] - total) ** 2) for w, p in parts)
    unit_var = sum(w * (p["unit_var"] + (p["unit_total"] - unit_total) ** 2) for w, p in parts)
    # the other campaigns' credits in the window and their covariance with the total (collinear overlaps)
    other_credit = sum(w * p["other_credit"] for w, p in parts)
    other_var = sum(w * (p["other_var"] + (p["other_credit"] - other_credit) ** 2) for w, p in parts)
    other_total_cov = sum(w * (p["other_total_cov"] + (p["total"] - total) * (p["other_credit"] - other_credit))
                          for w, p in parts)
    fitted = sum(w * p["fitted"] for w, p in parts)
    effect_daily = sum(w * p["effect_daily"] for w, p in parts)
    other_daily = sum(w * p["other_daily"] for w, p in parts)
    residual = np.where(spec.ok, spec.y - fitted, np.nan)
    alloc = sum(w * p["alloc"] for w, p in parts)
    # daily and cumulative bands: the same kernel-averaged HAC variance as the total's
    daily_se, cum_se = np.full(len(spec.y), np.nan), np.full(len(spec.y), np.nan)
    if W.any():
        dmean = sum(w * p["daily"] for w, p in parts)
        cmean = sum(w * p["cum"] for w, p in parts)
        daily_se[W] = np.sqrt(sum(w * (p["daily_var"] + (p["daily"] - dmean) ** 2) for w, p in parts))
        cum_se[W] = np.sqrt(sum(w * (p["cum_var"] + (p["cum"] - cmean) ** 2) for w, p in parts))
    z = placebo_z(spec, best, lags) if calibrate else np.zeros(0)
    wdx = np.nonzero(W)[0]
    lw = int(wdx[-1] - wdx[0] + 1) if len(wdx) else 0
    c = calibration_factor(z, alpha, window_days=lw) if calibrate and lw else 1.0
    z_dof = placebo_dof(len(z), lw) if calibrate and lw else float("nan")
    err_total, err_units = err_total * c, err_units * c
    return EngineResult(spec=spec, fits=fits, best=best, beta=beta, fitted=fitted,
                        effect_daily=effect_daily, residual=residual, total=total, unit_total=unit_total,
                        alloc=alloc, err_total=err_total, err_units=err_units,
                        boot_kernel_counts=counts, lam=best.lam, total_se=float(c * np.sqrt(total_var)),
                        unit_se=c * np.sqrt(unit_var), kernel_weights=wts, calibration=c, placebo_z=z,
                        placebo_dof=z_dof, raw_se=float(np.sqrt(total_var)), daily_se=daily_se, cum_se=c * cum_se,
                        other_daily=other_daily, other_groups=other_campaigns(spec), other_credit=other_credit,
                        other_se=c * np.sqrt(other_var), other_total_cov=c * c * other_total_cov)


def weak_calibration(res: EngineResult) -> bool:
    """Whether ``res``'s interval is widened by the cap because too few placebos fit in the data.

    True when the calibration factor is :data:`CALIBRATION_CAP` and the placebos (if any) have fewer than
    :data:`WEAK_CALIBRATION_DOF` degrees of freedom: the data are too short around the attribution window
    to measure how much the HAC error understates a window total's spread, so the interval is conservative.
    """
    n = 0 if res.placebo_z is None else len(res.placebo_z)
    return bool(res.calibration >= CALIBRATION_CAP and (n == 0 or not res.placebo_dof >= WEAK_CALIBRATION_DOF))


def leader_probability(mean: np.ndarray, se: np.ndarray, *, grid: int = 4001) -> np.ndarray:
    """Chance that each of several quantities is the largest, for independent normal estimates.

    ``P_c = integral of phi_c(x) prod_{j != c} Phi_j(x) dx``, evaluated by the trapezoidal rule on a fixed
    grid spanning every estimate +- 8 standard errors (deterministic; no random draws), then normalised
    to sum to one. A standard error of zero is a point mass; with every standard error zero the largest
    mean (ties shared) has probability one. NaN in either input gives NaN everywhere.

    Parameters
    ----------
    mean, se : array_like
        Point estimates and their standard errors (same length).
    grid : int
        Points of the integration grid.

    Returns
    -------
    numpy.ndarray
        One probability per estimate, summing to one.
    """
    mu = np.asarray(mean, dtype=float)
    sd = np.asarray(se, dtype=float)
    if mu.shape != sd.shape or mu.ndim != 1:
        raise ValueError("mean and se must be 1-d arrays of the same length")
    if len(mu) == 0:
        return mu.copy()
    if not (np.isfinite(mu).all() and np.isfinite(sd).all()):
        return np.full(len(mu), np.nan)
    if (sd < 0).any():
        raise ValueError("standard errors must be 0 or more")
    if len(mu) == 1:
        return np.ones(1)
    if (sd == 0).all():
        top = mu == mu.max()
        return top / top.sum()
    # a point mass is a very narrow normal: the grid resolves it as long as it is wider than the grid step
    span = float((mu + 8 * sd).max() - (mu - 8 * sd).min())
    sd = np.maximum(sd, span / (grid - 1) * 0.5)
    x = np.linspace(float((mu - 8 * sd).min()), float((mu + 8 * sd).max()), grid)
    z = (x[None, :] - mu[:, None]) / sd[:, None]
    logcdf = stats.norm.logcdf(z)
    dens = np.exp(stats.norm.logpdf(z) + logcdf.sum(axis=0)[None, :] - logcdf) / sd[:, None]
    p = np.trapezoid(dens, x, axis=1)
    return p / p.sum()
