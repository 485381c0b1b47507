"""Structural time-series counterfactuals (the CausalImpact approach) on statsmodels.

:func:`causal_impact` fits a local level (optionally with trend and a seasonal component) plus a
regression on control series to the pre-period, then simulates the post-period counterfactual from the
state-space predictive distribution. The regression coefficients live in the state vector (diffuse
prior), so their uncertainty carries into the simulated paths together with the level's; the
variances are maximum-likelihood estimates, and by default their uncertainty is integrated over: they
are redrawn from the likelihood's normal approximation on the square-root scale (a Laplace approximation
of the posterior that R CausalImpact samples by MCMC) and the paths simulated for each draw
(``parameter_uncertainty``). The average effect's interval comes
from averaging each simulated path, never from averaging pointwise bands. The p-value is R
CausalImpact's posterior tail-area probability of the post-period sum, ``(k + 1) / (n + 1)``.
"""

from __future__ import annotations

import warnings as _warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.config import check_alpha
from analysis.lift._result import LiftResult, _clean

__all__ = ["ImpactResult", "causal_impact", "simulation_study"]


@dataclass(frozen=True, eq=False)
class ImpactResult(LiftResult):
    """Structural time-series estimate of a campaign's effect.

    Attributes
    ----------
    series : pd.DataFrame
        Indexed like the data: ``observed``, ``predicted`` (counterfactual mean), ``predicted_low``,
        ``predicted_high``, ``point_effect``, ``point_effect_low``, ``point_effect_high``,
        ``cum_effect``, ``cum_effect_low``, ``cum_effect_high`` (effects are zero/NaN before treatment).
    treatment_start : Any
        First post-period index value.
    cumulative_effect, cumulative_ci_low, cumulative_ci_high : float
        Sum of the pointwise effects over the post-period and its interval.
    observed_mean, predicted_mean : float
        Post-period averages of the outcome and of its counterfactual.
    params : pd.Series
        Maximum-likelihood parameters of the structural model (on the standardised scale).
    n_sims : int
        Simulated counterfactual paths.
    controls : tuple of str
        The control series used.
    """

    series: pd.DataFrame | None = None
    treatment_start: Any = None
    cumulative_effect: float = float("nan")
    cumulative_ci_low: float = float("nan")
    cumulative_ci_high: float = float("nan")
    observed_mean: float = float("nan")
    predicted_mean: float = float("nan")
    predicted_mean_low: float = float("nan")
    predicted_mean_high: float = float("nan")
    params: pd.Series | None = None
    n_sims: int = 0
    controls: tuple[str, ...] = ()
    n_post: int = 0

    def summary(self) -> pd.DataFrame:
        """One tidy row: the common lift columns plus cumulative effect and post-period means."""
        out = super().summary()
        out["cumulative_effect"] = self.cumulative_effect
        out["cumulative_ci_low"] = self.cumulative_ci_low
        out["cumulative_ci_high"] = self.cumulative_ci_high
        out["observed_mean"] = self.observed_mean
        out["predicted_mean"] = self.predicted_mean
        out["n_post"] = self.n_post
        return out

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` lift entry plus cumulative effect (JSON-safe)."""
        out = super().to_dict()
        start = self.treatment_start
        out.update(_clean({
            "cumulative_effect": self.cumulative_effect, "cumulative_ci_low": self.cumulative_ci_low,
            "cumulative_ci_high": self.cumulative_ci_high, "observed_mean": self.observed_mean,
            "predicted_mean": self.predicted_mean, "n_post": self.n_post, "controls": list(self.controls),
            "treatment_start": pd.Timestamp(start).isoformat()
            if isinstance(start, (pd.Timestamp, np.datetime64)) else start,
        }))
        return out

    def reading(self) -> str:
        """One plain-language sentence on the result."""
        level = f"{int(round(100 * (1 - self.alpha)))}% interval"
        name = self.metric.replace("_", " ")
        if self.relative_effect is not None and self.relative_ci_low is not None:
            direction = "higher" if self.relative_effect >= 0 else "lower"
            text = (f"{name.capitalize()} was {abs(self.relative_effect):.1%} {direction} than the model's "
                    f"counterfactual over {self.n_post} post-period days ({level} "
                    f"{self.relative_ci_low:.1%} to {self.relative_ci_high:.1%})")
        else:
            text = (f"{name.capitalize()} differed from the counterfactual by {self.effect:,.3g} per day "
                    f"({level} {self.ci_low:,.3g} to {self.ci_high:,.3g})")
        p = self.p_value if self.p_value is not None else float("nan")
        return text + f"; the chance of a difference this large without an effect is {p:.1%}."

    def report(self) -> str:
        """A written analysis in the manner of R CausalImpact's ``summary(impact, "report")``."""
        a = self
        pct = int(round(100 * (1 - a.alpha)))
        name = a.metric.replace("_", " ")
        rel = a.relative_effect
        rel_txt = "" if rel is None else f" ({rel:+.1%})"
        lines = [
            f"During the post-intervention period, {name} had an average value of approx. "
            f"{a.observed_mean:,.4g}. In the absence of an intervention, we would have expected an average "
            f"of {a.predicted_mean:,.4g}. The {pct}% interval of this counterfactual prediction is "
            f"[{a.predicted_mean_low:,.4g}, {a.predicted_mean_high:,.4g}]. Subtracting this prediction from "
            f"the observed response yields an estimate of the causal effect the intervention had on "
            f"{name}: {a.effect:,.4g}{rel_txt} per period, with a {pct}% interval of "
            f"[{a.ci_low:,.4g}, {a.ci_high:,.4g}].",
            "",
            f"Summing up the individual data points during the post-intervention period ({a.n_post} "
            f"periods), {name} had an overall value of {a.observed_mean * a.n_post:,.4g}; had the "
            f"intervention not taken place, we would have expected a sum of "
            f"{a.predicted_mean * a.n_post:,.4g}, so the cumulative effect is {a.cumulative_effect:,.4g} "
            f"[{a.cumulative_ci_low:,.4g}, {a.cumulative_ci_high:,.4g}].",
            "",
        ]
        if a.relative_ci_low is not None and a.relative_ci_high is not None:
            lines.append(f"In relative terms, {name} showed a change of {rel:+.1%} with a {pct}% interval of "
                         f"[{a.relative_ci_low:+.1%}, {a.relative_ci_high:+.1%}].")
            lines.append("")
        if a.ci_low > 0 or a.ci_high < 0:
            sign = "positive" if a.ci_low > 0 else "negative"
            lines.append(
                f"This means that the {sign} effect observed during the intervention period is "
                f"statistically significant and unlikely to be due to random fluctuations. The probability "
                f"of obtaining this effect by chance is very small (Bayesian one-sided tail-area "
                f"probability p = {a.p_value:.3g}). This interpretation assumes that the control series "
                f"were not themselves affected by the intervention and that their relationship with "
                f"{name}, as established in the pre-period, stayed stable.")
        else:
            lines.append(
                f"The {pct}% interval of the average effect includes zero, so the effect observed during "
                f"the intervention period is not statistically significant (one-sided tail-area "
                f"probability p = {a.p_value:.3g}); an apparent effect of this size could be random "
                f"fluctuation. This does not prove the absence of an effect: the period may be too short "
                f"or the data too noisy to detect it.")
        if a.warnings:
            lines += ["", "Warnings: " + " ".join(a.warnings)]
        return "\n".join(lines)

    def plot(self, ax: Any = None) -> Any:
        """Three panels: observed vs counterfactual, pointwise effect, cumulative effect.

        Parameters
        ----------
        ax : sequence of three Axes, optional
            Where to draw; a new figure with three stacked panels by default.

        Returns
        -------
        numpy array of the three Axes.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
        else:
            axes = np.asarray(ax, dtype=object).ravel()
            if len(axes) != 3:
                raise ValueError("plot(ax=...) needs a sequence of exactly three Axes.")
        s = self.series
        assert s is not None
        x = s.index
        panels = [("observed", "predicted", "predicted_low", "predicted_high", "original"),
                  (None, "point_effect", "point_effect_low", "point_effect_high", "pointwise"),
                  (None, "cum_effect", "cum_effect_low", "cum_effect_high", "cumulative")]
        for a, (obs, mid, lo, hi, title) in zip(axes, panels, strict=True):
            a.fill_between(x, s[lo].to_numpy(dtype=float), s[hi].to_numpy(dtype=float), color="tab:blue",
                           alpha=0.2, lw=0)
            a.plot(x, s[mid].to_numpy(dtype=float), color="tab:blue", ls="--", lw=1.3)
            if obs:
                a.plot(x, s[obs].to_numpy(dtype=float), color="black", lw=1.3)
            else:
                a.axhline(0, color="grey", lw=0.8)
            a.axvline(self.treatment_start, color="grey", ls=":", lw=1)
            a.set_ylabel(title)
        axes[0].set_title(f"{self.metric}: average effect {self.effect:,.3g} per period "
                          f"[{self.ci_low:,.3g}, {self.ci_high:,.3g}]")
        return axes


def _fit_model(y: np.ndarray, X: np.ndarray | None, *, seasonal: int | None, trend: bool):
    from statsmodels.tsa.statespace.structural import UnobservedComponents

    model = UnobservedComponents(
        y, exog=X, level="local linear trend" if trend else "local level",
        seasonal=seasonal, stochastic_seasonal=True if seasonal else False, mle_regression=False)
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        res = model.fit(disp=False, maxiter=200)
    return model, res


def _parameter_draws(res: Any, n_draws: int, rng: np.random.Generator,
                     only: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Variance parameters drawn from the likelihood's normal approximation on the unconstrained scale.

    statsmodels parametrises each variance of a structural model by its square root (``sigma2 = u**2``).
    The log-likelihood is symmetric in ``u`` around zero, so on that scale the maximum is interior even
    when a variance is estimated at zero (the usual case for the level of a short pre-period), and a
    normal approximation there is a Laplace approximation of the posterior under a flat prior on ``u``.
    The covariance is the inverse of the negative Hessian of the log-likelihood in ``u`` (complex-step
    derivatives); directions without curvature keep their estimate. With ``only`` (a boolean mask over
    the parameters) just those are drawn, from their normal distribution given the others at their
    estimates (precision: the corresponding block of the information). Returns the constrained draws,
    shape ``(n_draws, k)``, and whether the Hessian was usable.
    """
    from statsmodels.tools.numdiff import approx_hess_cs

    model = res.model
    params = np.asarray(res.params, dtype=float)
    try:
        u_hat = np.asarray(model.untransform_params(params), dtype=float)
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            hess = np.asarray(approx_hess_cs(u_hat, lambda u: model.loglike(u, transformed=False)), dtype=float)
        model.update(params, transformed=True)
    except Exception:  # noqa: BLE001 - any numerical failure falls back to the plug-in estimate
        return np.tile(params, (n_draws, 1)), False
    if not np.all(np.isfinite(hess)):
        return np.tile(params, (n_draws, 1)), False
    info = -0.5 * (hess + hess.T)
    sel = np.ones(len(params), dtype=bool) if only is None else np.asarray(only, dtype=bool)
    info = info[np.ix_(sel, sel)]
    vals, vecs = np.linalg.eigh(info)
    ok = vals > 1e-8 * max(float(np.max(np.abs(vals))), 1e-300)
    if not ok.any():
        return np.tile(params, (n_draws, 1)), False
    # covariance restricted to the directions with curvature: V diag(1/lambda) V'
    root = vecs[:, ok] / np.sqrt(vals[ok])
    z = rng.standard_normal((n_draws, int(ok.sum())))
    draws_u = np.tile(u_hat, (n_draws, 1))
    draws_u[:, sel] += z @ root.T
    draws = np.array([np.asarray(model.transform_params(d), dtype=float) for d in draws_u])
    return draws, bool(ok.all())


def _scale_df(res: Any) -> int:
    """Degrees of freedom of the common scale: observations that enter the likelihood (after the diffuse
    states' burn-in) minus the variance ratios estimated beside the scale."""
    n_eff = int(getattr(res, "nobs_effective", res.nobs - res.model.loglikelihood_burn))
    return max(n_eff - (len(res.params) - 1), 1)


#: A variance (of the standardised outcome) below this is taken as estimated at zero.
BOUNDARY_VARIANCE = 1e-6


def _at_boundary(res: Any) -> np.ndarray:
    """Mask of the variance parameters whose maximum-likelihood estimate sits at zero."""
    names = list(res.model.param_names)
    p = np.asarray(res.params, dtype=float)
    return np.array([n.startswith("sigma2") for n in names]) & (p < BOUNDARY_VARIANCE)


def _simulate_paths(res: Any, X_post: np.ndarray | None, h: int, n: int, rng: np.random.Generator,
                    parameter_uncertainty: str, paths_per_draw: int = 10) -> tuple[np.ndarray, bool]:
    """Counterfactual paths, shape (n, h), from the predictive distribution at the end of the pre-period.

    ``"none"``: the Gaussian predictive distribution at the maximum-likelihood variances (plug-in).
    ``"scale"``: the same paths with each path's deviation from the predictive mean multiplied by
    ``sqrt(nu / chi2_nu)``, one draw per path: the exact predictive distribution (Student t with ``nu``
    degrees of freedom, a scale mixture of the plug-in Gaussian) when the variances are known up to a
    common scale that is estimated from ``nu`` degrees of freedom under the reference prior
    (West and Harrison 1997, ch. 4; Harvey 1989, sec. 3.4 on the concentrated scale).
    ``"laplace"``: every variance redrawn (:func:`_parameter_draws`) once per ``paths_per_draw``
    paths and the model refiltered with each draw. ``"boundary"``: only the variances estimated at
    zero are redrawn (given the others at their estimates); plug-in when none is. Returns the paths
    and whether the draws could be made.
    """
    if parameter_uncertainty in ("none", "scale"):
        sim = np.asarray(res.simulate(h, anchor="end", repetitions=n, exog=X_post, rng=rng),
                         dtype=float).reshape(h, n).T
        if parameter_uncertainty == "none":
            return sim, True
        mean = np.asarray(res.forecast(h, exog=X_post), dtype=float).reshape(1, h)
        nu = _scale_df(res)
        mult = np.sqrt(nu / rng.chisquare(nu, size=n))
        return mean + mult[:, None] * (sim - mean), True
    model = res.model
    only = None
    if parameter_uncertainty == "boundary":
        only = _at_boundary(res)
        if not only.any():
            sim = res.simulate(h, anchor="end", repetitions=n, exog=X_post, rng=rng)
            return np.asarray(sim, dtype=float).reshape(h, n).T, True
    n_draws = max(1, int(np.ceil(n / paths_per_draw)))
    draws, ok = _parameter_draws(res, n_draws, rng, only=only)
    per = int(np.ceil(n / n_draws))
    paths = []
    for d in draws:
        r = model.filter(d)
        sim = r.simulate(h, anchor="end", repetitions=per, exog=X_post, rng=rng)
        paths.append(np.asarray(sim, dtype=float).reshape(h, per).T)
    return np.vstack(paths)[:n], ok


def _control_shift_warnings(data: pd.DataFrame, controls: Sequence[str], pre: np.ndarray, post: np.ndarray,
                            level: float = 0.01) -> list[str]:
    """Warn when a control's post-period mean falls outside its pre-period predictive range.

    Each control gets an AR(1) with intercept fitted by least squares on the pre-period; the predictive
    distribution of its post-period mean is Gaussian with the exact variance of an average of
    1..h-step forecast errors.
    """
    from scipy.stats import norm

    out = []
    h = int(post.sum())
    zq = norm.ppf(1 - level / 2)
    for c in controls:
        x = data[c].to_numpy(dtype=float)
        xp = x[pre]
        if len(xp) < 5 or np.std(xp) == 0:
            continue
        A = np.column_stack([np.ones(len(xp) - 1), xp[:-1]])
        coef, *_ = np.linalg.lstsq(A, xp[1:], rcond=None)
        const, phi = float(coef[0]), float(np.clip(coef[1], -0.999, 1.0))
        sigma = float(np.std(xp[1:] - A @ coef, ddof=2))
        path, last = [], xp[-1]
        for _ in range(h):
            last = const + phi * last
            path.append(last)
        mean_fc = float(np.mean(path))
        psi = np.array([np.sum(phi ** np.arange(h - i)) for i in range(h)])
        sd_avg = sigma * float(np.sqrt(np.sum(psi ** 2))) / h
        observed = float(x[post].mean())
        if abs(observed - mean_fc) > zq * sd_avg:
            out.append(f"Control {c!r} shifted after treatment started (post-period mean {observed:,.4g} "
                       f"outside its {1 - level:.0%} pre-period predictive range "
                       f"[{mean_fc - zq * sd_avg:,.4g}, {mean_fc + zq * sd_avg:,.4g}]): it may be affected "
                       "by the campaign, which would bias the effect.")
    return out


def causal_impact(
    data: pd.DataFrame,
    *,
    outcome: str,
    controls: Sequence[str] | None,
    treatment_start: Any,
    alpha: float = 0.05,
    treatment_end: Any = None,
    seasonal: int | None = None,
    trend: bool = False,
    n_sims: int = 1000,
    parameter_uncertainty: str | bool = "boundary",
    check_controls: bool = True,
    seed: int = 0,
) -> ImpactResult:
    """Estimate a campaign's effect with a structural time-series counterfactual.

    Parameters
    ----------
    data : pd.DataFrame
        Indexed by date (or any ordered index), one row per period, without gaps.
    outcome : str
        The outcome column.
    controls : sequence of str or None
        Control series unaffected by the campaign (other markets, search interest, ...). The model
        regresses the outcome on them; ``None`` or empty fits the time-series components alone.
    treatment_start : Any
        First post-period index value.
    alpha : float
        1 - level of the intervals.
    treatment_end : Any, optional
        Last post-period index value; later rows are ignored.
    seasonal : int, optional
        Period of a stochastic seasonal component, e.g. ``7`` for a weekly pattern in daily data.
    trend : bool
        Use a local linear trend instead of a local level.
    n_sims : int
        Simulated counterfactual paths (R CausalImpact's default is 1000 MCMC draws).
    parameter_uncertainty : {"laplace", "scale", "none"}
        How the estimated variances' uncertainty enters the counterfactual paths. ``"laplace"``
        (default): every variance is redrawn, once per 10 paths, from the normal approximation of the
        likelihood on statsmodels' unconstrained scale (the square roots of the variances, on which the
        maximum is interior even when a variance is estimated at zero) and the model refiltered before
        simulating; this integrates over the variances as R CausalImpact's MCMC does, under a flat prior
        on the standard deviations. ``"scale"``: only a common scale is integrated out (the plug-in
        Gaussian paths become a Student-t scale mixture with the likelihood's residual degrees of
        freedom), which is nearly the plug-in for pre-periods of 60 days or more. ``"none"``: plug-in
        maximum-likelihood variances; on the simulator's geo holdouts its intervals were too narrow
        whenever the level's variance was estimated at zero. ``True``/``False`` mean
        ``"laplace"``/``"none"``. Regression coefficients and states always carry their uncertainty
        (they are states with a diffuse prior).
    check_controls : bool
        Warn when a control's post-period mean falls outside its pre-period predictive range.
    seed : int
        Seed of the simulations.

    Returns
    -------
    ImpactResult
        ``effect`` is the average effect per post-period day; ``p_value`` the one-sided posterior
        tail-area probability of the post-period sum, computed as in R CausalImpact.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> x = 100 + np.cumsum(rng.normal(0, 1, 120))
    >>> y = 1.2 * x + rng.normal(0, 1, 120)
    >>> y[90:] += 10
    >>> df = pd.DataFrame({"y": y, "x": x}, index=pd.date_range("2024-01-01", periods=120))
    >>> res = causal_impact(df, outcome="y", controls=["x"], treatment_start=df.index[90])
    >>> bool(res.ci_low < 10 < res.ci_high)
    True
    """
    check_alpha(alpha)
    if isinstance(parameter_uncertainty, bool):
        parameter_uncertainty = "laplace" if parameter_uncertainty else "none"
    if parameter_uncertainty not in ("boundary", "laplace", "scale", "none"):
        raise ValueError("parameter_uncertainty must be 'boundary', 'laplace', 'scale' or 'none', "
                         f"got {parameter_uncertainty!r}.")
    controls = list(controls or [])
    missing = [c for c in [outcome, *controls] if c not in data.columns]
    if missing:
        raise ValueError(f"Column(s) {missing} not found; available: {list(data.columns)}.")
    if outcome in controls:
        raise ValueError("The outcome cannot also be a control.")
    df = data.sort_index()
    if df.index.has_duplicates:
        raise ValueError("The index has duplicate periods; aggregate to one row per period first.")
    if treatment_end is not None:
        df = df.loc[df.index <= treatment_end]
    bad = [c for c in [outcome, *controls] if df[c].isna().any()]
    if bad:
        raise ValueError(f"Missing values in {bad}; fill or drop those periods first.")
    pre = np.asarray(df.index < treatment_start)
    post = ~pre
    n_pre, h = int(pre.sum()), int(post.sum())
    min_pre = max(10, 2 * (seasonal or 0))
    if n_pre < min_pre:
        raise ValueError(f"Need at least {min_pre} pre-period observations before {treatment_start!r}; "
                         f"found {n_pre}.")
    if h < 1:
        raise ValueError(f"No observation at or after treatment_start={treatment_start!r}.")

    rng = np.random.default_rng(seed)
    y = df[outcome].to_numpy(dtype=float)
    mu, sd = y[pre].mean(), y[pre].std(ddof=1)
    sd = sd if sd > 0 else 1.0
    ys = (y - mu) / sd
    X = None
    if controls:
        Xr = df[controls].to_numpy(dtype=float)
        xm, xs = Xr[pre].mean(axis=0), Xr[pre].std(axis=0, ddof=1)
        xs[xs == 0] = 1.0
        X = (Xr - xm) / xs
    _, res = _fit_model(ys[pre], None if X is None else X[pre], seasonal=seasonal, trend=trend)
    paths_s, draws_ok = _simulate_paths(res, None if X is None else X[post], h, n_sims, rng,
                                        parameter_uncertainty)
    paths = mu + sd * paths_s                                   # n_sims x h counterfactual outcomes

    obs_post = y[post]
    effects = obs_post[None, :] - paths                         # pointwise effect per path
    avg = effects.mean(axis=1)
    q = [alpha / 2, 1 - alpha / 2]
    effect = float(obs_post.mean() - paths.mean())
    ci_low, ci_high = np.quantile(avg, q)
    cf_means = paths.mean(axis=1)
    predicted_mean = float(cf_means.mean())
    rel = effect / predicted_mean if predicted_mean > 0 else None
    rel_lo = rel_hi = None
    if rel is not None and np.all(cf_means > 0):
        rel_lo, rel_hi = (float(v) for v in np.quantile(obs_post.mean() / cf_means - 1, q))
    # R CausalImpact: one-sided tail area of the post-period sum, (k + 1) / (n + 1)
    sums = paths.sum(axis=1)
    observed_sum = obs_post.sum()
    k = min((sums >= observed_sum).sum(), (sums <= observed_sum).sum())
    p_value = float((k + 1) / (n_sims + 1))

    # pointwise and cumulative series
    pred_pre = mu + sd * np.asarray(res.fittedvalues, dtype=float)
    pred_var_pre = (sd ** 2) * np.asarray(res.filter_results.forecasts_error_cov[0, 0], dtype=float)
    from scipy.stats import norm

    zq = norm.ppf(1 - alpha / 2)
    pre_lo = pred_pre - zq * np.sqrt(pred_var_pre)
    pre_hi = pred_pre + zq * np.sqrt(pred_var_pre)
    burn = min(n_pre, 1 + (seasonal or 0) + (1 if trend else 0) + len(controls))
    pre_lo[:burn] = pre_hi[:burn] = pred_pre[:burn] = np.nan    # diffuse start: no meaningful prediction
    pl, ph = np.quantile(paths, q, axis=0)
    el, eh = np.quantile(effects, q, axis=0)
    cum = np.cumsum(effects, axis=1)
    cl, ch = np.quantile(cum, q, axis=0)
    nan_pre = np.full(n_pre, np.nan)
    zero_pre = np.zeros(n_pre)
    series = pd.DataFrame({
        "observed": y,
        "predicted": np.concatenate([pred_pre, paths.mean(axis=0)]),
        "predicted_low": np.concatenate([pre_lo, pl]),
        "predicted_high": np.concatenate([pre_hi, ph]),
        "point_effect": np.concatenate([y[pre] - pred_pre, effects.mean(axis=0)]),
        "point_effect_low": np.concatenate([y[pre] - pre_hi, el]),
        "point_effect_high": np.concatenate([y[pre] - pre_lo, eh]),
        "cum_effect": np.concatenate([zero_pre, cum.mean(axis=0)]),
        "cum_effect_low": np.concatenate([nan_pre, cl]),
        "cum_effect_high": np.concatenate([nan_pre, ch]),
    }, index=df.index)

    warns: list[str] = []
    if check_controls and controls:
        warns += _control_shift_warnings(df, controls, pre, post)
    if n_pre < 2 * h:
        warns.append(f"The pre-period ({n_pre} periods) is short relative to the post-period ({h}): "
                     "the counterfactual relies on a short history.")
    if not draws_ok:
        warns.append("The likelihood's curvature could not be estimated for every variance parameter; those "
                     "variances are held at their estimates, so the intervals may be too narrow.")
    if not res.mle_retvals or not res.mle_retvals.get("converged", True):
        warns.append("The structural model's likelihood optimisation did not converge; treat the intervals "
                     "with caution.")

    return ImpactResult(
        design="causal_impact", metric=outcome, effect=effect, ci_low=float(ci_low), ci_high=float(ci_high),
        p_value=p_value, relative_effect=rel, alpha=alpha, relative_ci_low=rel_lo, relative_ci_high=rel_hi,
        warnings=tuple(warns), series=series, treatment_start=treatment_start,
        cumulative_effect=float(effect * h), cumulative_ci_low=float(ci_low * h),
        cumulative_ci_high=float(ci_high * h), observed_mean=float(obs_post.mean()),
        predicted_mean=predicted_mean,
        predicted_mean_low=float(np.quantile(cf_means, q[0])),
        predicted_mean_high=float(np.quantile(cf_means, q[1])),
        params=pd.Series(np.asarray(res.params, dtype=float), index=list(res.model.param_names)),
        n_sims=n_sims, controls=tuple(controls), n_post=h,
    )


def simulation_study(n_sims: int = 300, *, effect: float = 5.0, seed: int = 2000, n_controls: int = 8,
                     n_pre: int = 120, n_post: int = 30, n_paths: int = 500,
                     progress_bar: bool | None = None) -> pd.DataFrame:
    """Repeat :func:`causal_impact` on factor-model regions (not the structural model) with a ramped lift.

    The treated series and ``n_controls`` control regions come from
    :func:`analysis.lift.synth.factor_panel`; the controls are other regions, so they carry their own
    idiosyncratic AR(1) noise. One row per simulated campaign: ``seed``, ``truth``, ``effect``,
    ``ci_low``, ``ci_high``, ``covered``, ``p_value``, ``significant``.
    """
    from analysis.lift.synth import factor_panel
    from analysis.progress import progress

    rows = []
    show = None if progress_bar is None else not progress_bar
    for i in progress(range(n_sims), desc="structural time-series study", disable=show):
        panel, truth = factor_panel(seed + i, n_donors=n_controls, n_pre=n_pre, n_post=n_post, effect=effect)
        wide = panel.pivot(index="date", columns="region", values="y")
        ctrl = [c for c in wide.columns if c != "treated"]
        r = causal_impact(wide, outcome="treated", controls=ctrl, treatment_start=wide.index[n_pre],
                          n_sims=n_paths, check_controls=False, seed=seed + i)
        rows.append({"seed": seed + i, "truth": truth, "effect": r.effect, "ci_low": r.ci_low,
                     "ci_high": r.ci_high, "covered": r.ci_low <= truth <= r.ci_high, "p_value": r.p_value,
                     "significant": r.significant})
    return pd.DataFrame(rows)
