"""Difference-in-differences: the 2x2, two-way fixed effects, event studies and staggered adoption.

Functions
---------
did
    The treated-by-post coefficient (2x2 on repeated cross sections, or with unit and time fixed effects),
    or the two-way fixed-effects coefficient of a unit-by-time treatment indicator.
event_study
    Leads and lags relative to treatment (reference period -1), with a joint pre-trend test.
staggered_did
    Callaway and Sant'Anna (2021) group-time effects for staggered adoption, aggregated to an overall ATT
    and to event time, with influence-function (cluster-by-unit) inference. Plain two-way fixed effects
    is biased when effects differ across cohorts or grow over time; this estimator is not. On daily
    panels each unit's weekday pattern is removed with a pre-adoption weekday base; with small cohorts
    (units adopting on days of their own) the treated units' noise is measured on pre-adoption placebo
    windows.
staggered_panel
    Build the region x day panel (with each region's adoption date) from ``geo_sales_daily`` and
    ``geo_assignment``.

Standard errors are clustered (by ``cluster``, else by ``unit``) with the small-sample rule of reghdfe and
fixest: ``G/(G-1) * (n-1)/(n-K)``, where ``K`` counts the slope coefficients and the fixed-effect levels that
are not nested in the clusters; intervals and p-values use a t distribution with ``G-1`` degrees of freedom.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from analysis.config import check_alpha
from analysis.lift._result import LiftResult, _clean

__all__ = ["DidResult", "EventStudyResult", "StaggeredResult", "did", "event_study", "staggered_did",
           "staggered_panel"]

_FEW_CLUSTERS = 10
_FEW_TREATED = 5
#: Smallest cohort for which within-cohort deviations estimate the treated units' noise ("auto").
_MIN_COHORT = 5
#: Fewest placebo windows for the placebo-calibrated treated-side variance.
_MIN_PLACEBOS = 5


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------

def _check_columns(data: pd.DataFrame, **cols: str | None) -> None:
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a pandas DataFrame, not {type(data).__name__}.")
    missing = [f"{role}={name!r}" for role, name in cols.items() if name is not None and name not in data]
    if missing:
        raise ValueError(f"Column(s) not found in data: {', '.join(missing)}. "
                         f"Available columns: {', '.join(map(str, data.columns))}.")


def _as_binary(s: pd.Series, name: str) -> np.ndarray:
    v = pd.to_numeric(s.astype("float64") if s.dtype == bool else s, errors="coerce").to_numpy(float)
    if np.isnan(v).any():
        raise ValueError(f"Column {name!r} has missing or non-numeric values; it must be 0/1 (or True/False).")
    if not np.isin(v, (0.0, 1.0)).all():
        raise ValueError(f"Column {name!r} must be 0/1 (or True/False); found values such as "
                         f"{sorted(set(v[~np.isin(v, (0.0, 1.0))]))[:3]}.")
    return v


def _codes(s: pd.Series) -> np.ndarray:
    return pd.factorize(s, sort=True)[0]


def _demean(arr: np.ndarray, fes: list[np.ndarray], tol: float = 1e-11, max_iter: int = 10_000) -> np.ndarray:
    """Within-transform the columns of ``arr`` by alternating projections on the fixed effects."""
    out = np.array(arr, dtype=float, copy=True)
    if not fes:
        return out
    counts = [np.bincount(f).astype(float) for f in fes]
    for _ in range(max_iter):
        prev = out.copy()
        for f, c in zip(fes, counts):
            for j in range(out.shape[1]):
                out[:, j] -= (np.bincount(f, weights=out[:, j], minlength=len(c)) / c)[f]
        if len(fes) == 1 or np.max(np.abs(out - prev)) < tol * (1 + np.max(np.abs(out))):
            break
    return out


def _nested(fe: np.ndarray, cl: np.ndarray) -> bool:
    """Whether every level of ``fe`` lies within a single cluster."""
    return bool((pd.DataFrame({"f": fe, "c": cl}).groupby("f")["c"].nunique() == 1).all())


@dataclass(frozen=True)
class _Fit:
    names: list[str]
    coef: np.ndarray
    vcov: np.ndarray
    df: float
    n: int
    n_clusters: int | None
    vcov_type: str


def _fe_ols(y: np.ndarray, X: np.ndarray, names: list[str], fes: list[np.ndarray],
            clusters: np.ndarray | None, intercept: bool) -> _Fit:
    """OLS of ``y`` on ``X`` with absorbed fixed effects and cluster-robust (reghdfe/fixest) errors."""
    n = len(y)
    Z = _demean(np.column_stack([y, X]), fes)
    yd, Xd = Z[:, 0], Z[:, 1:]
    keep = Xd.std(axis=0) > 1e-10 * (1 + np.abs(X).max(axis=0))
    if not keep.all():
        dropped = [nm for nm, k in zip(names, keep) if not k]
        raise ValueError(f"{', '.join(dropped)} cannot be estimated: it does not vary once the fixed "
                         "effects are removed (collinear with them).")
    if intercept:
        Xd = np.column_stack([np.ones(n), Xd])
    model = sm.OLS(yd, Xd)
    # FE levels cost degrees of freedom unless nested in the clusters (fixest's default rule).
    # reghdfe's count: one constant plus (levels - 1) for every absorbed factor not nested in a cluster.
    fe_dof = 0
    if fes:
        fe_dof = 1 + sum(int(f.max()) for f in fes if clusters is None or not _nested(f, clusters))
    k_total = Xd.shape[1] + fe_dof
    if clusters is not None:
        res = model.fit(cov_type="cluster", cov_kwds={"groups": clusters, "use_correction": True,
                                                     "df_correction": True}, use_t=True)
        G = int(len(np.unique(clusters)))
        # statsmodels applies G/(G-1) * (n-1)/(n-k) with k = columns of Xd; restate with K incl. FE.
        vcov = res.cov_params() * (n - Xd.shape[1]) / (n - k_total)
        df = G - 1
        vtype = "cluster"
    else:
        res = model.fit(cov_type="HC1")
        vcov = res.cov_params() * (n - Xd.shape[1]) / (n - k_total)
        G, df, vtype = None, n - k_total, "HC1"
    coef = np.asarray(res.params)
    vcov = np.asarray(vcov)
    if intercept:
        coef, vcov = coef[1:], vcov[1:, 1:]
    return _Fit(list(names), coef, vcov, float(df), n, G, vtype)


def _t_summary(est: float, se: float, df: float, alpha: float) -> tuple[float, float, float]:
    if not np.isfinite(se) or se <= 0:
        return float("nan"), float("nan"), float("nan")
    q = stats.t.ppf(1 - alpha / 2, df)
    p = 2 * stats.t.sf(abs(est / se), df)
    return est - q * se, est + q * se, float(p)


def _time_index(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Map a sortable time column to positions 0..T-1; return (positions, sorted unique values)."""
    uniq = np.sort(s.dropna().unique())
    pos = np.searchsorted(uniq, s.to_numpy())
    return pos, uniq


# --------------------------------------------------------------------------------------------------
# did
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DidResult(LiftResult):
    """A difference-in-differences estimate.

    Extra attributes
    ----------------
    se : float
        Cluster-robust (or HC1) standard error of ``effect``.
    n_obs, n_clusters : int
        Observations and clusters used.
    df : float
        Degrees of freedom of the t reference distribution (``G - 1`` when clustered).
    counterfactual : float
        Mean outcome of the treated observations minus ``effect``: their level without treatment.
    vcov_type : str
        ``"cluster"`` or ``"HC1"``.
    means : pandas.DataFrame
        Mean outcome by group and period (treated/control x pre/post) for the plot; empty for TWFE.
    """

    se: float = float("nan")
    n_obs: int = 0
    n_clusters: int | None = None
    df: float = float("nan")
    counterfactual: float = float("nan")
    vcov_type: str = "cluster"
    means: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def summary(self) -> pd.DataFrame:
        out = super().summary()
        out["se"] = self.se
        out["n_obs"] = self.n_obs
        out["n_clusters"] = self.n_clusters
        return out

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(_clean({"se": self.se, "n_obs": self.n_obs, "n_clusters": self.n_clusters, "df": self.df}))
        return d

    def reading(self) -> str:
        """One plain-language sentence interpreting the estimate."""
        lvl = int(round(100 * (1 - self.alpha)))
        sig = ("the interval excludes zero, so the data are not consistent with no effect"
               if self.significant else "the interval includes zero, so the data cannot rule out no effect")
        rel = (f" ({self.relative_effect:+.1%} of the level it would otherwise have had)"
               if self.relative_effect is not None and np.isfinite(self.relative_effect) else "")
        return (f"Treatment changed {self.metric} by {self.effect:+.4g}{rel}, {lvl}% interval "
                f"[{self.ci_low:.4g}, {self.ci_high:.4g}]; {sig}.")

    def plot(self, ax=None):
        """Treated and control mean outcomes before and after (2x2), or the estimate with its interval."""
        from analysis.plotting import axes

        ax = axes(ax, figsize=(6, 4))
        if not self.means.empty:
            for grp, sub in self.means.groupby("group", sort=False):
                ax.plot(sub["period"], sub["mean"], marker="o", label=str(grp))
            ctl = self.means.set_index(["group", "period"])["mean"]
            try:
                cf = ctl[("treated", "pre")] + ctl[("control", "post")] - ctl[("control", "pre")]
                ax.plot(["pre", "post"], [ctl[("treated", "pre")], cf], ls="--", color="grey",
                        label="treated, counterfactual")
            except KeyError:
                pass
            ax.set_ylabel(self.metric)
            ax.legend()
        else:
            ax.errorbar([self.effect], [0], xerr=[[self.effect - self.ci_low], [self.ci_high - self.effect]],
                        fmt="o", capsize=4)
            ax.axvline(0, color="grey", lw=1)
            ax.set_yticks([0], [self.metric])
            ax.set_xlabel("effect")
        ax.set_title(f"Difference-in-differences: {self.effect:+.4g} [{self.ci_low:.4g}, {self.ci_high:.4g}]")
        return ax


def did(data: pd.DataFrame, *, outcome: str, treated: str, post: str | None = None, unit: str | None = None,
        time: str | None = None, cluster: str | None = None, alpha: float = 0.05) -> DidResult:
    """Difference-in-differences estimate of a treatment effect.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per observation (unit-period, or respondent in repeated cross sections).
    outcome : str
        Outcome column.
    treated : str
        With ``post``: 0/1 marker of the treated group. Without ``post``: the unit-by-time treatment
        indicator (1 where and when the unit is treated).
    post : str, optional
        0/1 marker of the post-treatment period. Given: ``effect`` is the treated-by-post coefficient, a
        2x2 (``outcome ~ treated + post + treated:post``) or, where ``unit``/``time`` are given, with those
        fixed effects absorbed in place of the main effects.
    unit, time : str, optional
        Unit and time columns. Both are required without ``post`` (two-way fixed effects).
    cluster : str, optional
        Cluster column for the standard error; defaults to ``unit`` where given, else HC1 robust errors.
    alpha : float
        Significance level of the interval (default 0.05).

    Returns
    -------
    DidResult
        ``effect``, ``se``, interval and p-value from a t distribution with ``G-1`` degrees of freedom
        (``G`` clusters) and ``relative_effect`` = effect over the treated observations' counterfactual mean.

    Examples
    --------
    >>> from causaldata import organ_donations
    >>> d = organ_donations.load_pandas().data
    >>> d["treat"] = ((d.State == "California") & (d.Quarter_Num >= 4)).astype(int)
    >>> round(did(d, outcome="Rate", treated="treat", unit="State", time="Quarter_Num").effect, 5)
    -0.02246
    """
    _check_columns(data, outcome=outcome, treated=treated, post=post, unit=unit, time=time, cluster=cluster)
    check_alpha(alpha)
    if post is None and (unit is None or time is None):
        raise ValueError("Without `post`, `treated` is the unit-by-time treatment indicator and both `unit` "
                         "and `time` are required (two-way fixed effects). For a 2x2 pass `post`.")
    used = [c for c in (outcome, treated, post, unit, time, cluster) if c is not None]
    df = data[list(dict.fromkeys(used))].dropna()
    if df.empty:
        raise ValueError("No complete rows: every row has a missing value in the columns used.")
    y = pd.to_numeric(df[outcome], errors="coerce").to_numpy(float)
    if np.isnan(y).any():
        raise ValueError(f"Outcome column {outcome!r} must be numeric.")
    d = _as_binary(df[treated], treated)
    warns: list[str] = []
    fes: list[np.ndarray] = []
    if unit is not None:
        fes.append(_codes(df[unit]))
    if time is not None:
        fes.append(_codes(df[time]))
    cl_col = cluster if cluster is not None else unit
    clusters = _codes(df[cl_col]) if cl_col is not None else None

    means = pd.DataFrame()
    if post is not None:
        p = _as_binary(df[post], post)
        if d.min() == d.max():
            raise ValueError(f"{treated!r} is constant: both treated and control observations are needed.")
        if p.min() == p.max():
            raise ValueError(f"{post!r} is constant: both pre and post observations are needed.")
        cols, names = [d * p], ["treated:post"]
        if unit is None:
            cols.insert(0, d)
            names.insert(0, "treated")
        if time is None:
            cols.insert(0, p)
            names.insert(0, "post")
        X = np.column_stack(cols)
        fit = _fe_ols(y, X, names, fes, clusters, intercept=not fes)
        dtreat = d * p
        m = (pd.DataFrame({"group": np.where(d == 1, "treated", "control"),
                           "period": np.where(p == 1, "post", "pre"), "y": y})
             .groupby(["group", "period"], sort=False)["y"].mean())
        means = pd.DataFrame([{"group": g, "period": t, "mean": float(m.get((g, t), np.nan))}
                              for g in ("control", "treated") for t in ("pre", "post")])
        n_treated_clusters = (len(np.unique(clusters[d == 1])) if clusters is not None else None)
    else:
        if d.min() == d.max():
            raise ValueError(f"{treated!r} is constant: treated and untreated unit-periods are needed.")
        fit = _fe_ols(y, d[:, None], ["treated"], fes, clusters, intercept=False)
        dtreat = d
        n_treated_clusters = (len(np.unique(clusters[d == 1])) if clusters is not None else None)

    est = float(fit.coef[-1])
    se = float(np.sqrt(fit.vcov[-1, -1]))
    lo, hi, pval = _t_summary(est, se, fit.df, alpha)
    cf = float(y[dtreat == 1].mean() - est)
    rel = est / cf if cf != 0 else None
    rel_lo = lo / cf if rel is not None else None
    rel_hi = hi / cf if rel is not None else None
    if rel is not None and cf < 0:
        rel_lo, rel_hi = rel_hi, rel_lo
    if fit.n_clusters is not None and fit.n_clusters < _FEW_CLUSTERS:
        warns.append(f"Only {fit.n_clusters} clusters: cluster-robust errors are unreliable with fewer than "
                     f"{_FEW_CLUSTERS}; consider a wild cluster bootstrap or randomisation inference.")
    if n_treated_clusters is not None and n_treated_clusters < _FEW_TREATED:
        warns.append(f"Only {n_treated_clusters} treated cluster(s): cluster-robust errors understate the "
                     "uncertainty when few clusters are treated (Conley and Taber 2011); read the interval "
                     "as optimistic.")
    if fit.n_clusters is None and post is not None:
        warns.append("No unit or cluster given: heteroskedasticity-robust (HC1) errors assume independent "
                     "observations.")
    return DidResult(design="did", metric=outcome, effect=est, ci_low=lo, ci_high=hi, p_value=pval,
                     relative_effect=rel, alpha=alpha, relative_ci_low=rel_lo, relative_ci_high=rel_hi,
                     warnings=tuple(warns), se=se, n_obs=fit.n, n_clusters=fit.n_clusters, df=fit.df,
                     counterfactual=cf, vcov_type=fit.vcov_type, means=means)


# --------------------------------------------------------------------------------------------------
# event study
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventStudyResult(LiftResult):
    """Leads and lags of a treatment, relative to the period before it starts.

    ``effect`` and its interval are the average of the post-period coefficients (event times 0 and
    later) with their joint covariance; ``coefficients`` holds every event time.

    Extra attributes
    ----------------
    coefficients : pandas.DataFrame
        One row per event time: ``event_time``, ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``p_value``
        (the reference period appears with estimate 0 and no interval).
    pretrend_f, pretrend_p : float
        Joint Wald F statistic and p-value that every lead is zero (cluster-robust covariance).
    reference : int
        The omitted event time.
    """

    coefficients: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    pretrend_f: float | None = None
    pretrend_p: float | None = None
    pretrend_df: tuple[int, float] | None = None
    reference: int = -1
    n_clusters: int | None = None

    def summary(self) -> pd.DataFrame:
        """The event-time coefficients (tidy)."""
        return self.coefficients.copy()

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(_clean({"pretrend_f": self.pretrend_f, "pretrend_p": self.pretrend_p,
                         "event_times": self.coefficients.to_dict(orient="list")}))
        return d

    def reading(self) -> str:
        """One plain-language sentence interpreting the estimate and the pre-trend test."""
        lvl = int(round(100 * (1 - self.alpha)))
        pre = ("" if self.pretrend_p is None else
               (" but the periods before treatment already differ (pre-trend test p = "
                f"{self.pretrend_p:.3g}), so parallel trends is doubtful"
                if self.pretrend_p < self.alpha else
                f" and the periods before treatment show no significant difference (p = {self.pretrend_p:.3g})"))
        return (f"After treatment {self.metric} changed by {self.effect:+.4g} on average per period "
                f"({lvl}% interval [{self.ci_low:.4g}, {self.ci_high:.4g}]){pre}.")

    def plot(self, ax=None):
        """Coefficient plot: estimate and interval by event time, reference period marked."""
        return _coef_plot(self.coefficients, ax, title=f"Event study: {self.metric}",
                          reference=self.reference)


def _coef_plot(coefs: pd.DataFrame, ax, *, title: str, reference: int | None):
    from analysis.plotting import axes

    ax = axes(ax, figsize=(7, 4))
    c = coefs.sort_values("event_time")
    e = c["event_time"].to_numpy(float)
    est = c["estimate"].to_numpy(float)
    lo = c["ci_low"].to_numpy(float)
    hi = c["ci_high"].to_numpy(float)
    pre = e < 0
    ax.axhline(0, color="grey", lw=1)
    ax.axvline(-0.5, color="grey", lw=1, ls=":")
    for mask, color, label in ((pre, "tab:blue", "before"), (~pre, "tab:red", "after")):
        if mask.any():
            ok = mask & np.isfinite(lo)
            ax.errorbar(e[ok], est[ok], yerr=[est[ok] - lo[ok], hi[ok] - est[ok]], fmt="o", color=color,
                        capsize=3 if len(e) < 40 else 0, ms=4, label=label)
    if reference is not None:
        ax.plot([reference], [0], marker="o", mfc="white", color="black", ls="none", label="reference")
    ax.set_xlabel("periods relative to treatment")
    ax.set_ylabel("effect")
    ax.set_title(title)
    ax.legend()
    return ax


def event_study(data: pd.DataFrame, *, outcome: str, unit: str, time: str, treated: str,
                leads: int | None = None, lags: int | None = None, cluster: str | None = None,
                alpha: float = 0.05) -> EventStudyResult:
    """Event study: two-way fixed effects with leads and lags of the treatment start.

    Each treated unit's event time is its period minus the first period where ``treated`` is 1;
    never-treated units form the control group. The period just before treatment (event time -1) is the
    reference. Event times beyond ``leads``/``lags`` are binned into the end points.

    Parameters
    ----------
    data : pandas.DataFrame
        Unit-by-period panel.
    outcome, unit, time : str
        Columns. ``time`` must sort chronologically (numbers or dates).
    treated : str
        Unit-by-time treatment indicator (0/1); treatment must not switch off.
    leads, lags : int, optional
        Number of leads (before, excluding the reference) and lags (after, from event time 0) to
        estimate separately. Default: every observed event time.
    cluster : str, optional
        Cluster column (default ``unit``).
    alpha : float
        Significance level.

    Returns
    -------
    EventStudyResult
        Coefficients by event time, the average post-treatment effect, and the joint pre-trend test. When
        the pre-trend test rejects at ``alpha``, ``warnings`` says so.
    """
    _check_columns(data, outcome=outcome, unit=unit, time=time, treated=treated, cluster=cluster)
    df = data[list(dict.fromkeys([outcome, unit, time, treated] + ([cluster] if cluster else [])))].dropna()
    y = pd.to_numeric(df[outcome], errors="coerce").to_numpy(float)
    d = _as_binary(df[treated], treated)
    tpos, _ = _time_index(df[time])
    ucode = _codes(df[unit])
    first = pd.Series(np.where(d == 1, tpos, np.iinfo(np.int64).max)).groupby(ucode).min()
    never = first == np.iinfo(np.int64).max
    if never.all():
        raise ValueError(f"No unit is ever treated ({treated!r} is 0 everywhere).")
    # treatment must be absorbing
    fu = first.to_numpy()[ucode]
    if ((tpos >= fu) & (d == 0)).any():
        raise ValueError(f"{treated!r} switches off after switching on for some unit; event_study needs "
                         "treatment that stays on once it starts.")
    treated_rows = fu != np.iinfo(np.int64).max
    et = np.where(treated_rows, tpos - np.where(treated_rows, fu, 0), 0)
    obs = np.unique(et[treated_rows])
    lo_e = int(obs.min()) if leads is None else -int(leads) - 1
    hi_e = int(obs.max()) if lags is None else int(lags)
    if lo_e > -2 and hi_e < 0:
        raise ValueError("No event time to estimate.")
    etb = np.clip(et, lo_e, hi_e)
    grid = [e for e in range(lo_e, hi_e + 1) if e != -1 and (treated_rows & (etb == e)).any()]
    if not [e for e in grid if e >= 0]:
        raise ValueError("No post-treatment periods observed for the treated units.")
    X = np.column_stack([(treated_rows & (etb == e)).astype(float) for e in grid])
    names = [f"event_{e}" for e in grid]
    clusters = _codes(df[cluster]) if cluster else ucode
    fit = _fe_ols(y, X, names, [ucode, _codes(df[time])], clusters, intercept=False)
    se = np.sqrt(np.diag(fit.vcov))
    q = stats.t.ppf(1 - alpha / 2, fit.df)
    rows = []
    for e, b, s in zip(grid, fit.coef, se):
        rows.append({"event_time": e, "estimate": float(b), "se": float(s), "ci_low": b - q * s,
                     "ci_high": b + q * s, "p_value": float(2 * stats.t.sf(abs(b / s), fit.df)),
                     "binned": (e == lo_e and leads is not None) or (e == hi_e and lags is not None)})
    rows.append({"event_time": -1, "estimate": 0.0, "se": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                 "p_value": np.nan, "binned": False})
    coefs = pd.DataFrame(rows).sort_values("event_time", ignore_index=True)

    post_idx = [i for i, e in enumerate(grid) if e >= 0]
    w = np.zeros(len(grid))
    w[post_idx] = 1 / len(post_idx)
    est = float(w @ fit.coef)
    se_avg = float(np.sqrt(w @ fit.vcov @ w))
    lo, hi, pval = _t_summary(est, se_avg, fit.df, alpha)

    warns: list[str] = []
    pre_idx = [i for i, e in enumerate(grid) if e < -1]
    pf = pp = None
    pdf = None
    if pre_idx:
        b = fit.coef[pre_idx]
        V = fit.vcov[np.ix_(pre_idx, pre_idx)]
        k = len(pre_idx)
        try:
            pf = float(b @ np.linalg.solve(V, b) / k)
            pp = float(stats.f.sf(pf, k, fit.df))
            pdf = (k, fit.df)
        except np.linalg.LinAlgError:
            warns.append("The pre-trend test could not be computed (singular covariance of the leads).")
        if pp is not None and pp < alpha:
            sig = coefs[(coefs.event_time < -1) & (coefs.p_value < alpha)]
            detail = ", ".join(f"{int(r.event_time)}: {r.estimate:+.4g} (se {r.se:.2g})"
                               for r in sig.itertuples())
            warns.append(f"Pre-trend test fails (F = {pf:.3g}, p = {pp:.3g}): treated and control units "
                         "already diverged before treatment, so parallel trends is doubtful"
                         + (f"; significant leads at {detail}." if detail else "."))
    else:
        warns.append("No lead is observed: the pre-trend test cannot be run.")
    if fit.n_clusters is not None and fit.n_clusters < _FEW_CLUSTERS:
        warns.append(f"Only {fit.n_clusters} clusters: cluster-robust errors are unreliable.")
    n_tr = int((~never).sum())
    if n_tr < _FEW_TREATED:
        warns.append(f"Only {n_tr} treated unit(s): cluster-robust errors understate the uncertainty when few "
                     "clusters are treated; read the intervals as optimistic.")
    cf = float(y[d == 1].mean() - est)
    rel = est / cf if cf != 0 else None
    return EventStudyResult(design="event_study", metric=outcome, effect=est, ci_low=lo, ci_high=hi,
                            p_value=pval, relative_effect=rel, alpha=alpha, warnings=tuple(warns),
                            coefficients=coefs, pretrend_f=pf, pretrend_p=pp, pretrend_df=pdf,
                            reference=-1, n_clusters=fit.n_clusters)


# --------------------------------------------------------------------------------------------------
# staggered adoption (Callaway and Sant'Anna 2021)
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StaggeredResult(LiftResult):
    """Heterogeneity-robust staggered difference-in-differences (Callaway and Sant'Anna 2021).

    ``effect`` is the overall ATT: the average effect over every treated unit-period after adoption
    (group-time effects weighted by cohort size), in the outcome's units per unit-period.

    Extra attributes
    ----------------
    se : float
        Standard error of ``effect`` (influence function, clustered by unit; see ``treated_variance``).
    df : float
        Degrees of freedom of the t reference of ``effect``'s interval.
    treated_variance : str
        How the treated units' noise entered ``se``: ``"cohort"``, ``"placebo"`` or ``"pooled"``.
    n_placebo_windows : int
        Placebo windows behind the ``"placebo"`` variance.
    group_time : pandas.DataFrame
        ``cohort``, ``time``, ``event_time``, ``att``, ``se``, ``n_treated``, ``n_control``.
    event_times : pandas.DataFrame
        Effects aggregated by event time (``event_time``, ``estimate``, ``se``, ``ci_low``, ``ci_high``,
        ``p_value``; with the bootstrap also ``band_low``/``band_high``, a simultaneous band).
    pretrend_f, pretrend_p : float or None
        Joint Wald test that the pre-adoption event-time effects are zero.
    twfe_effect : float or None
        Plain two-way fixed-effects coefficient on the same panel, for comparison (biased when effects
        vary across cohorts or over time).
    control_group : str
        ``"never_treated"`` or ``"not_yet_treated"``.
    seasonality : str
        ``"none"`` or ``"unit_weekday"`` (the resolved option).
    base_periods : int
        Periods averaged in each comparison's base (1: the universal base period ``g-1``).
    post_end : object or None
        Last period entering the overall ATT (None: the end of the panel).
    """

    se: float = float("nan")
    group_time: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    event_times: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    pretrend_f: float | None = None
    pretrend_p: float | None = None
    twfe_effect: float | None = None
    control_group: str = "never_treated"
    n_units: int = 0
    n_treated_units: int = 0
    inference: str = "analytic"
    seasonality: str = "none"
    base_periods: int = 1
    post_end: Any = None
    treated_variance: str = "cohort"
    n_placebo_windows: int = 0
    df: float = float("nan")

    def summary(self) -> pd.DataFrame:
        out = super().summary()
        out["se"] = self.se
        out["twfe_effect"] = self.twfe_effect
        out["n_units"] = self.n_units
        return out

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        end = self.post_end.isoformat() if hasattr(self.post_end, "isoformat") else self.post_end
        d.update(_clean({"se": self.se, "twfe_effect": self.twfe_effect, "pretrend_p": self.pretrend_p,
                         "control_group": self.control_group, "n_units": self.n_units,
                         "seasonality": self.seasonality, "base_periods": self.base_periods, "post_end": end,
                         "treated_variance": self.treated_variance, "df": self.df,
                         "event_times": self.event_times[["event_time", "estimate", "ci_low", "ci_high"]]
                         .to_dict(orient="list")}))
        return d

    def reading(self, *, fmt: Callable[[float], str] | None = None, units: str = "units",
                period: str = "period") -> str:
        """One plain-language sentence interpreting the estimate.

        Parameters
        ----------
        fmt : callable, optional
            Formats a value of the outcome (e.g. as money); signs are added here. Default: 4 significant digits.
        units, period : str
            What the units and the periods are ("regions", "day"), for the sentence.
        """
        def show(v: float, sign: bool = True) -> str:
            if fmt is None:
                return f"{v:+.4g}" if sign else f"{v:.4g}"
            return ("+" if sign and v >= 0 else "-" if v < 0 else "") + fmt(abs(v))

        lvl = int(round(100 * (1 - self.alpha)))
        rel = (f", {self.relative_effect:+.1%} over the counterfactual" if self.relative_effect is not None
               and np.isfinite(self.relative_effect) else "")
        sig = ("the interval excludes zero" if self.significant
               else "the interval includes zero, so the data cannot rule out no effect")
        unit = units[:-1] if units.endswith("s") else units
        return (f"Across the {self.n_treated_units} {units} that adopted, {self.metric} changed by "
                f"{show(self.effect)} per {unit} and {period} after adoption ({lvl}% interval "
                f"{show(self.ci_low)} to {show(self.ci_high)}{rel}); {sig}.")

    def plot(self, ax=None):
        """Event-time effects with intervals (and the simultaneous band when bootstrapped)."""
        ax = _coef_plot(self.event_times, ax, title=f"Staggered DiD (Callaway-Sant'Anna): {self.metric}",
                        reference=-1 if self.base_periods == 1 and self.seasonality == "none" else None)
        if "band_low" in self.event_times:
            et = self.event_times.sort_values("event_time")
            ax.fill_between(et["event_time"], et["band_low"], et["band_high"], color="grey", alpha=0.2,
                            label="simultaneous band")
            ax.legend()
        return ax


def _aggregate(att: np.ndarray, IF: np.ndarray, cell_g: np.ndarray, sel: np.ndarray,
               pg: dict[int, float], member: dict[int, np.ndarray],
               population: bool) -> tuple[float, np.ndarray]:
    """Cohort-size weighted average of selected ATT(g,t) and its influence function.

    With ``population`` the influence function includes the estimation of the cohort shares (the
    estimand is the population ATT, as in Callaway and Sant'Anna's ``did``); without, inference is
    conditional on the realised cohorts (the estimand is the ATT of the units in the data).
    """
    idx = np.flatnonzero(sel)
    p = np.array([pg[int(cell_g[k])] for k in idx])
    S = p.sum()
    w = p / S
    est = float(w @ att[idx])
    if not population:
        return est, IF[:, idx] @ w
    psi = np.column_stack([member[int(cell_g[k])] - pg[int(cell_g[k])] for k in idx])
    # d(est) = sum_k (psi_k / S) att_k - est * sum_k psi_k / S
    inf = IF[:, idx] @ w + (psi @ att[idx]) / S - est * psi.sum(axis=1) / S
    return est, inf


def staggered_did(data: pd.DataFrame, *, outcome: str, unit: str, time: str, cohort: str | None = None,
                  treated: str | None = None, control_group: str = "never_treated", alpha: float = 0.05,
                  inference: str = "analytic", n_boot: int = 999, seed: int | None = 0,
                  pretrend_leads: int | None = None, estimand: str = "sample",
                  compare_twfe: bool = True, seasonality: str = "auto", base_periods: int | None = None,
                  post_end=None, treated_variance: str = "auto") -> StaggeredResult:
    """Callaway-Sant'Anna staggered difference-in-differences.

    Estimates every group-time effect ATT(g, t) (cohort ``g`` = units adopting in period ``g``) as the
    change in the cohort's mean outcome from its base to ``t`` minus the same change among the control
    units, then aggregates them to an overall ATT (weighted by cohort size over post-adoption cells up to
    ``post_end``, i.e. the average effect per treated unit-period) and to event time. Unconditional
    parallel trends; no covariates.

    The base is period ``g-1`` (Callaway and Sant'Anna's universal base) by default on non-daily panels.
    On daily panels (``seasonality="auto"``) it is each unit's mean over the ``base_periods`` (28) days
    before adoption, taken by weekday: day ``t`` is compared with the mean of the same weekday in that
    window. The same days serve the cohort and its controls, so no post-adoption value enters a base.
    Pre-adoption cells are then placebo comparisons (day ``t`` against the ``base_periods`` days before
    ``t``), which the pre-trend test uses.

    Parameters
    ----------
    data : pandas.DataFrame
        Balanced unit-by-period panel.
    outcome, unit, time : str
        Columns; ``time`` must sort chronologically.
    cohort : str, optional
        Per-unit adoption period (the first treated period, same type as ``time``); missing for
        never-treated units. Give this or ``treated``.
    treated : str, optional
        Unit-by-time 0/1 treatment indicator (absorbing), from which the cohorts are derived.
    control_group : {"never_treated", "not_yet_treated"}
        Units used as controls for each ATT(g, t).
    alpha : float
        Significance level.
    inference : {"analytic", "bootstrap"}
        Standard errors from the influence functions (clustered by unit; t with ``G-1`` degrees of
        freedom; each unit's squared influence scaled by ``m/(m-1)`` for its group of ``m`` units, the
        HC2 / CR2 leverage correction of group means), or a Mammen multiplier bootstrap of the same
        influence functions (which also gives a simultaneous band for the event-time effects).
    n_boot : int
        Bootstrap draws.
    seed : int, optional
        Seed of the bootstrap.
    pretrend_leads : int, optional
        How many pre-adoption event times (nearest first, excluding -1) enter the joint pre-trend test
        (default 5; capped at the number of units minus two). The Wald statistic takes Hotelling's
        small-sample form, ``F(k, G-k)``; with many leads relative to units it over-rejects, which is why
        the default is small.
    estimand : {"sample", "population"}
        ``"sample"`` (default): the ATT of the treated units in the data, with inference conditional on
        the realised cohort sizes. ``"population"``: the ATT of a super-population from which cohorts are
        drawn; the influence function then also carries the estimation of the cohort shares (wider).
    compare_twfe : bool
        Also fit plain two-way fixed effects on the same panel (``twfe_effect``, up to ``post_end``).
    seasonality : {"auto", "unit_weekday", "none"}
        ``"unit_weekday"``: remove each unit's own weekday pattern by comparing every day with the unit's
        mean of the same weekday over the base window (needs a daily date column). ``"none"``: no
        seasonal matching. ``"auto"`` (default): ``"unit_weekday"`` for daily date panels, else
        ``"none"``.
    base_periods : int, optional
        Number of pre-adoption periods averaged into the base (default 28 with ``"unit_weekday"``, else 1,
        the universal base ``g-1``). At least 7 with ``"unit_weekday"``. Cohorts adopting before a full
        week is observed are dropped with a warning; shorter pre-periods are truncated.
    post_end : same type as ``time``, optional
        Last period that enters the overall ATT (e.g. the campaign's end, when the estimand is the
        effect from adoption to the campaign's end). Event-time effects still cover every period.
    treated_variance : {"auto", "cohort", "placebo", "pooled"}
        How the treated units' noise enters the standard error. ``"cohort"``: deviations from the
        cohort's mean (Callaway and Sant'Anna's influence function); a single-unit cohort then adds no
        variance. ``"placebo"``: the treated units' spread around the pooled effect, measured on
        effect-free placebo windows (the adoption schedule moved back before the first adoption) and
        rescaled by the controls' change in spread; Welch-Satterthwaite degrees of freedom. ``"pooled"``:
        the spread around the pooled effect after adoption (conservative when effects differ between
        units). ``"auto"`` (default): ``"cohort"`` when every cohort has at least 5 units, else
        ``"placebo"`` (``"pooled"``, with a warning, when fewer than 5 placebo windows fit).

    Returns
    -------
    StaggeredResult
    """
    if (cohort is None) == (treated is None):
        raise ValueError("Give exactly one of `cohort` (adoption period per unit) or `treated` "
                         "(unit-by-time 0/1 indicator).")
    if control_group not in ("never_treated", "not_yet_treated"):
        raise ValueError(f"control_group must be 'never_treated' or 'not_yet_treated', got {control_group!r}.")
    if estimand not in ("sample", "population"):
        raise ValueError(f"estimand must be 'sample' or 'population', got {estimand!r}.")
    population = estimand == "population"
    if inference not in ("analytic", "bootstrap"):
        raise ValueError(f"inference must be 'analytic' or 'bootstrap', got {inference!r}.")
    if treated_variance not in ("auto", "cohort", "placebo", "pooled"):
        raise ValueError("treated_variance must be 'auto', 'cohort', 'placebo' or 'pooled', "
                         f"got {treated_variance!r}.")
    if seasonality not in ("auto", "none", "unit_weekday"):
        raise ValueError(f"seasonality must be 'auto', 'none' or 'unit_weekday', got {seasonality!r}.")
    if base_periods is not None and (int(base_periods) != base_periods or base_periods < 1):
        raise ValueError(f"base_periods must be a positive whole number of periods, got {base_periods!r}.")
    _check_columns(data, outcome=outcome, unit=unit, time=time, cohort=cohort, treated=treated)
    df = data[[c for c in dict.fromkeys([unit, time, outcome, cohort or treated])]].copy()
    if df[[unit, time, outcome]].isna().any().any():
        raise ValueError(f"Missing values in {unit!r}, {time!r} or {outcome!r}; fill or drop them first.")
    if df.duplicated([unit, time]).any():
        raise ValueError(f"Several rows share the same ({unit}, {time}); aggregate to one row per unit and period.")
    Y = df.pivot(index=unit, columns=time, values=outcome).sort_index(axis=1)
    if Y.isna().any().any():
        bad = Y.index[Y.isna().any(axis=1)][:5].tolist()
        raise ValueError(f"The panel is unbalanced: units such as {bad} miss some periods. staggered_did "
                         "needs every unit observed in every period.")
    times = Y.columns.to_numpy()
    T = len(times)
    units = Y.index
    seasonality, season = _resolve_seasonality(seasonality, times, time)
    k_base = int(base_periods) if base_periods is not None else (28 if season is not None else 1)
    if season is not None and k_base < 7:
        raise ValueError(f"With seasonality='unit_weekday' the base must span at least a week "
                         f"(base_periods >= 7), got {k_base}.")
    if post_end is not None:
        try:
            end_pos = int(np.searchsorted(times, np.asarray(post_end, dtype=times.dtype), side="right")) - 1
        except (TypeError, ValueError) as exc:
            raise ValueError(f"post_end={post_end!r} cannot be compared with the {time!r} column.") from exc
    else:
        end_pos = T - 1
    n = len(units)
    Ym = Y.to_numpy(float)
    if treated is not None:
        dd = _as_binary(df[treated], treated)
        first = df.loc[dd == 1].groupby(unit)[time].min()
        coh = first.reindex(units)
    else:
        coh = df.groupby(unit)[cohort].agg(lambda s: s.dropna().iloc[0] if s.notna().any() else np.nan)
        if (df.groupby(unit)[cohort].nunique() > 1).any():
            raise ValueError(f"{cohort!r} must be constant within each unit (its adoption period).")
        coh = coh.reindex(units)
    gpos = np.full(n, np.inf)
    has = coh.notna().to_numpy()
    if has.any():
        gpos[has] = np.searchsorted(times, coh[has].to_numpy(), side="left").astype(float)
    warns: list[str] = []
    gpos[gpos >= T] = np.inf  # adopting after the panel ends: never treated within it
    first_period = gpos == 0
    if first_period.any():
        warns.append(f"{int(first_period.sum())} unit(s) treated from the first period have no pre-period "
                     "and were dropped.")
        keep = ~first_period
        Ym, gpos, units = Ym[keep], gpos[keep], units[keep]
        n = len(units)
    cohorts = np.unique(gpos[np.isfinite(gpos)]).astype(int)
    if len(cohorts) == 0:
        raise ValueError("No unit adopts treatment within the panel.")
    never = ~np.isfinite(gpos)
    if control_group == "never_treated" and not never.any():
        raise ValueError("No never-treated unit: use control_group='not_yet_treated'.")
    member = {int(g): (gpos == g).astype(float) for g in cohorts}
    pg = {int(g): float(member[int(g)].mean()) for g in cohorts}

    t_idx = np.arange(T)
    # Base of each comparison. Universal (k = 1, no season): period g-1, as in Callaway and Sant'Anna.
    # Averaged: each unit's mean over the k periods before adoption (by weekday with seasonality), the
    # same days for the cohort and its controls, so no post-adoption value enters any base.
    averaged = k_base > 1 or season is not None
    n_season = 7 if season is not None else 1
    s_of_t = season if season is not None else np.zeros(T, dtype=int)

    def base_means(lo: int, hi: int) -> np.ndarray:
        """Each unit's mean over periods [lo, hi), by season: n x n_season (NaN for absent seasons)."""
        out = np.full((n, n_season), np.nan)
        s = s_of_t[lo:hi]
        for v in np.unique(s):
            out[:, v] = Ym[:, lo:hi][:, s == v].mean(axis=1)
        return out

    if averaged:
        # Placebo differences for pre-adoption cells: Y_t minus the unit's base over the k periods before
        # t (what the estimator would report had adoption been at t); they do not depend on the cohort.
        Dpre = np.full((n, T), np.nan)
        for t in range(k_base, T):
            bm = base_means(t - k_base, t)
            Dpre[:, t] = Ym[:, t] - bm[:, s_of_t[t]]
    def group_time(gp: np.ndarray, coh_list, t_hi: int, post_only: bool) -> dict:
        """Every ATT(g, t) for cohorts ``coh_list`` of the adoption positions ``gp``, t <= t_hi.

        Returns the cell estimates and, per unit and cell, the treated part of the influence function
        before centring (``TD``: n/ng * (D - mc) on the cohort's units), the cohort indicator scaled
        the same way (``TM``) and the control part (``CI``); the cohort-centred influence function is
        ``TD - TM * att + CI``.
        """
        out = {k: [] for k in ("att", "TD", "TM", "CI", "g", "t", "nt", "nc")}
        dropped = []
        for g in coh_list:
            b = g - 1
            gi = gp == g
            hi = t_hi + 1
            lo = g if post_only else 0
            if lo >= hi:
                continue
            tt = t_idx[lo:hi]
            if averaged:
                bm = base_means(max(0, g - k_base), g)
                if np.isnan(bm).any():
                    dropped.append(g)
                    continue
                D = Ym[:, lo:hi] - bm[:, s_of_t[lo:hi]]
                if not post_only:
                    D = np.where(tt[None, :] >= g, D, Dpre[:, lo:hi])
            else:
                D = Ym[:, lo:hi] - Ym[:, [b]]
            ng = gi.sum()
            if control_group == "never_treated":
                C = np.broadcast_to((~np.isfinite(gp))[:, None], D.shape)
            else:
                C = (gp[:, None] > np.maximum(tt, b)[None, :]) & ~gi[:, None]
            nc = C.sum(axis=0)
            mg = D[gi].mean(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mc = (np.where(C, D, 0.0)).sum(axis=0) / nc
                TD = (n / ng) * gi[:, None] * (D - mc)
                CI = -(n / nc) * C * (D - mc)
            ok = (nc > 0) & (tt != b) if not averaged else (nc > 0) & np.isfinite(mg)
            out["att"].append((mg - mc)[ok])
            out["TD"].append(np.where(np.isfinite(TD[:, ok]), TD[:, ok], 0.0))
            out["TM"].append(np.broadcast_to((n / ng) * gi[:, None], (n, int(ok.sum()))))
            out["CI"].append(np.where(np.isfinite(CI[:, ok]), CI[:, ok], 0.0))
            out["g"].append(np.full(ok.sum(), g))
            out["t"].append(tt[ok])
            out["nt"].append(np.full(ok.sum(), ng))
            out["nc"].append(nc[ok])
        res = {k: (np.column_stack(v) if k in ("TD", "TM", "CI") else np.concatenate(v)) if v else None
               for k, v in out.items()}
        res["dropped"] = dropped
        return res

    gt_all = group_time(gpos, cohorts, T - 1, post_only=False)
    dropped_cohorts = gt_all["dropped"]
    if dropped_cohorts:
        if len(dropped_cohorts) == len(cohorts):
            raise ValueError("No cohort has a complete base period: every adoption comes before each weekday "
                             "has been observed once. Use seasonality='none' or a longer pre-period.")
        warns.append(f"{len(dropped_cohorts)} cohort(s) adopting in the first week of the panel have no "
                     "pre-adoption day for some weekday and were left out.")
    att = gt_all["att"]
    TD, TM, CI = gt_all["TD"], gt_all["TM"], gt_all["CI"]
    IFm = TD - TM * att[None, :] + CI
    cg = gt_all["g"]
    ct = gt_all["t"]
    ev = ct - cg
    G = n
    df_t = G - 1
    ssc = G / (G - 1)

    # Small-sample factor of each unit's squared influence: m / (m - 1) for a unit of a group of m
    # units (its cohort, or the never-treated units). The cohort-centred influence function is a
    # deviation from the group's mean, whose squares sum to (m - 1) / m of the group's variance; this is
    # the HC2 / CR2 (Bell-McCaffrey) leverage correction of the saturated group-means regression, and the
    # same factor the pooled treated-side variance uses. A single-unit group has zero deviations.
    grp_key = np.where(np.isfinite(gpos), gpos, -1.0)
    _, grp_inv, grp_cnt = np.unique(grp_key, return_inverse=True, return_counts=True)
    grp_m = grp_cnt[grp_inv].astype(float)
    w_grp = np.where(grp_m > 1, grp_m / np.maximum(grp_m - 1, 1), 1.0)

    def se_of(inf: np.ndarray, w: np.ndarray | float = ssc) -> np.ndarray:
        ww = w[:, None] if isinstance(w, np.ndarray) else w
        return np.sqrt((ww * inf ** 2).sum(axis=0)) / n

    post = (ev >= 0) & (ct <= end_pos)
    if not post.any():
        raise ValueError("No post-adoption period with controls available"
                         + (" on or before post_end." if post_end is not None else "."))

    # which treated-side variance: within cohorts, or pooled across the treated units
    used_cohorts = np.array([g for g in cohorts if g not in set(dropped_cohorts)])
    sizes = np.array([int((gpos == g).sum()) for g in used_cohorts])
    tv = treated_variance
    if tv == "auto":
        tv = "cohort" if sizes.min() >= _MIN_COHORT else "placebo"
    treated_units = np.isin(gpos, used_cohorts)
    n_t = int(treated_units.sum())
    if tv != "cohort" and n_t < 2:
        warns.append("Only one treated unit: its noise cannot be told from its effect; the interval "
                     "uses the within-cohort (control-only) variance and is too narrow.")
        tv = "cohort"
    ctrl_units = np.abs(CI).sum(axis=1) > 0
    n_c = max(int(ctrl_units.sum()), 2)
    f_t, f_c = n_t / max(n_t - 1, 1), n_c / (n_c - 1)

    def pooled_parts(est_v: float, sel: np.ndarray, TDx, TMx, CIx, attx, gx) -> tuple:
        """Treated (pooled-centred) and control influence functions of one aggregate."""
        idx = np.flatnonzero(sel)
        p = np.array([pg[int(gx[k])] for k in idx])
        w = p / p.sum()
        return TDx[:, idx] @ w - est_v * (TMx[:, idx] @ w), CIx[:, idx] @ w

    est, inf_o = _aggregate(att, IFm, cg, post, pg, member, population)
    share_o = inf_o - _aggregate(att, IFm, cg, post, pg, member, False)[1]
    n_placebo = 0
    df_o = float(df_t)
    if tv == "cohort":
        inf_use = inf_o
    else:
        it_real, ic_real = pooled_parts(est, post, TD, TM, CI, att, cg)
        vt_unit = f_t * it_real ** 2  # pooled on the real window: noise plus effect heterogeneity
        vc = f_c * (ic_real ** 2).sum()
        if tv == "placebo":
            # placebo windows: the whole adoption schedule moved back by k periods, so that every
            # placebo cell lies before the first real adoption and every base inside the panel
            g_min = int(used_cohorts.min())
            base_need = k_base if averaged else 1
            ks = [k for k in range(end_pos - g_min + 1, g_min - base_need + 1) if k > 0]
            acc_t = np.zeros(n)
            acc_c = 0.0
            for k in ks:
                gp_k = np.where(np.isfinite(gpos), gpos - k, np.inf)
                res_k = group_time(gp_k, [int(g) - k for g in used_cohorts], end_pos - k, post_only=True)
                if res_k["att"] is None or len(res_k["dropped"]):
                    continue
                sel_k = res_k["t"] >= res_k["g"]
                pg_k = {int(g) - k: pg[int(g)] for g in used_cohorts}
                idx = np.flatnonzero(sel_k)
                pk = np.array([pg_k[int(res_k["g"][j])] for j in idx])
                wk = pk / pk.sum()
                est_k = float(wk @ res_k["att"][idx])
                it_k = res_k["TD"][:, idx] @ wk - est_k * (res_k["TM"][:, idx] @ wk)
                ic_k = res_k["CI"][:, idx] @ wk
                acc_t += it_k ** 2
                acc_c += f_c * float((ic_k ** 2).sum())
                n_placebo += 1
            if n_placebo >= _MIN_PLACEBOS:
                # treated units' dispersion in effect-free windows, rescaled by the change in the
                # controls' dispersion between those windows and the real one
                scale = vc / (acc_c / n_placebo) if acc_c > 0 else 1.0
                vt_unit = f_t * acc_t / n_placebo * scale
            else:
                warns.append(f"Only {n_placebo} placebo window(s) fit before the first adoption: the "
                             "treated-side variance uses the spread of the treated units' effects "
                             "(conservative when effects differ between units).")
                tv = "pooled"
        vt = float(vt_unit.sum())
        vs = ssc * float((share_o ** 2).sum())
        # per-unit magnitudes whose squares add up to the variance (used by the bootstrap)
        inf_use = np.where(treated_units, np.sqrt(vt_unit), 0.0) + np.where(
            treated_units, 0.0, np.sqrt(f_c) * ic_real) + np.sqrt(ssc) * share_o
        V = vt + vc + vs
        # Welch-Satterthwaite degrees of freedom for the two independent parts
        denom = vt ** 2 / max(n_t - 1, 1) + vc ** 2 / max(n_c - 1, 1)
        df_o = float(min(G - 1, V ** 2 / denom)) if denom > 0 else float(G - 1)
    e_vals = np.unique(ev)
    e_est, e_inf = [], []
    for e in e_vals:
        sel_e = ev == e
        v, f = _aggregate(att, IFm, cg, sel_e, pg, member, population)
        if tv != "cohort":
            # event-time effects: treated units centred on the pooled effect (exact for the
            # effect-free pre-adoption placebos; conservative after adoption when effects vary)
            it_e, ic_e = pooled_parts(v, sel_e, TD, TM, CI, att, cg)
            share_e = f - _aggregate(att, IFm, cg, sel_e, pg, member, False)[1]
            f = np.sqrt(f_t / ssc) * it_e + np.sqrt(f_c / ssc) * ic_e + share_e
        e_est.append(v)
        e_inf.append(f)
    e_est = np.array(e_est)
    E_inf = np.column_stack(e_inf)

    # cohort-centred influence functions take the per-group factor; the pooled / placebo ones carry
    # their own group factors already (f_t, f_c) and take G / (G - 1) on the cohort-share part
    w_unit = w_grp if tv == "cohort" else np.full(n, ssc)
    q = stats.t.ppf(1 - alpha / 2, df_t)
    if inference == "analytic":
        se_o = float(se_of(inf_o[:, None], w_grp)[0]) if tv == "cohort" else float(np.sqrt(V) / n)
        e_se = se_of(E_inf, w_unit)
        crit_band = None
    else:
        rng = np.random.default_rng(seed)
        s5 = np.sqrt(5.0)
        pr = (s5 + 1) / (2 * s5)
        Vb = np.where(rng.random((n_boot, n)) < pr, (1 - s5) / 2, (1 + s5) / 2)
        boot_o = Vb @ (inf_use * np.sqrt(w_grp) if tv == "cohort" else inf_use) / n
        boot_e = Vb @ (E_inf * np.sqrt(w_unit)[:, None]) / n
        iqr = stats.norm.ppf(0.75) - stats.norm.ppf(0.25)

        def bse(b: np.ndarray) -> np.ndarray:
            return (np.quantile(b, 0.75, axis=0) - np.quantile(b, 0.25, axis=0)) / iqr

        se_o = float(bse(boot_o[:, None])[0])
        e_se = bse(boot_e)
        with np.errstate(invalid="ignore", divide="ignore"):
            tmax = np.nanmax(np.abs(boot_e) / np.where(e_se > 0, e_se, np.nan), axis=1)
        crit_band = float(np.quantile(tmax, 1 - alpha))
    lo, hi, pval = _t_summary(est, se_o, df_o, alpha)
    et = pd.DataFrame({"event_time": e_vals.astype(int), "estimate": e_est, "se": e_se,
                       "ci_low": e_est - q * e_se, "ci_high": e_est + q * e_se,
                       "p_value": 2 * stats.t.sf(np.abs(e_est / np.where(e_se > 0, e_se, np.nan)), df_t)})
    if crit_band is not None:
        et["band_low"] = e_est - crit_band * e_se
        et["band_high"] = e_est + crit_band * e_se
    if not averaged:
        ref = {c: np.nan for c in et.columns}
        ref.update(event_time=-1, estimate=0.0)
        et = pd.concat([et, pd.DataFrame([ref])], ignore_index=True)
    et = et.sort_values("event_time", ignore_index=True)
    gt = pd.DataFrame({"cohort": times[cg], "time": times[ct], "event_time": ev, "att": att,
                       "se": se_of(IFm, w_grp), "n_treated": gt_all["nt"], "n_control": gt_all["nc"]})

    # joint pre-trend test on the nearest leads
    pf = pp = None
    # with the universal base, event time -1 is the reference (zero by construction)
    lead_idx = [i for i, e in enumerate(e_vals) if e <= (-1 if averaged else -2)][::-1]
    k = min(len(lead_idx), max(1, n - 2), 5 if pretrend_leads is None else int(pretrend_leads))
    if k > 0:
        sel = lead_idx[:k]
        b = e_est[sel]
        El = E_inf[:, sel] * np.sqrt(w_unit)[:, None]
        Vl = El.T @ El / n ** 2
        Vinv = np.linalg.pinv(Vl)
        rank = int(np.linalg.matrix_rank(Vl))
        if rank > 0:
            # Hotelling's small-sample form: the covariance is estimated from G clusters.
            if G - rank > 0:
                pf = float(b @ Vinv @ b / rank * (G - rank) / (G - 1))
                pp = float(stats.f.sf(pf, rank, G - rank))
            if pp is not None and pp < alpha:
                warns.append(f"Pre-trend test fails (F = {pf:.3g}, p = {pp:.3g} over {k} pre-adoption "
                             "periods): adopters were already diverging from the controls, so parallel "
                             "trends is doubtful.")
    n_tr = int(np.isfinite(gpos).sum())
    if n_tr < _FEW_TREATED:
        warns.append(f"Only {n_tr} treated unit(s): unit-clustered errors understate the uncertainty.")
    if n < _FEW_CLUSTERS:
        warns.append(f"Only {n} units: the influence-function errors are unreliable with so few clusters.")

    treated_post = np.isfinite(gpos)[:, None] & (t_idx[None, :] >= gpos[:, None])
    in_window = treated_post & (t_idx[None, :] <= end_pos)
    cf = float(Ym[in_window].mean() - est)
    rel = est / cf if cf != 0 else None
    rlo, rhi = (lo / cf, hi / cf) if rel is not None else (None, None)
    if rel is not None and cf < 0:
        rlo, rhi = rhi, rlo

    twfe = None
    if compare_twfe:
        Te = end_pos + 1
        panel = pd.DataFrame({"u": np.repeat(np.arange(n), Te), "t": np.tile(t_idx[:Te], n),
                              "y": Ym[:, :Te].ravel(), "d": treated_post[:, :Te].ravel().astype(float)})
        fit = _fe_ols(panel["y"].to_numpy(), panel[["d"]].to_numpy(), ["treated"],
                      [panel["u"].to_numpy(), panel["t"].to_numpy()], None, intercept=False)
        twfe = float(fit.coef[0])
    return StaggeredResult(design="staggered_did", metric=outcome, effect=est, ci_low=lo, ci_high=hi,
                           p_value=pval, relative_effect=rel, alpha=alpha, relative_ci_low=rlo,
                           relative_ci_high=rhi, warnings=tuple(warns), se=se_o, group_time=gt,
                           event_times=et, pretrend_f=pf, pretrend_p=pp, twfe_effect=twfe,
                           control_group=control_group, n_units=n, n_treated_units=n_tr, inference=inference,
                           seasonality=seasonality, base_periods=k_base, treated_variance=tv,
                           n_placebo_windows=n_placebo, df=df_o,
                           post_end=None if post_end is None else _scalar(times[end_pos]))


def _scalar(v: Any) -> Any:
    """A numpy time value as a plain Python / pandas scalar."""
    return pd.Timestamp(v) if isinstance(v, np.datetime64) else (v.item() if hasattr(v, "item") else v)


def _resolve_seasonality(seasonality: str, times: np.ndarray, time: str) -> tuple[str, np.ndarray | None]:
    """Resolve ``"auto"`` and return (name, weekday of every period or None)."""
    is_dt = np.issubdtype(times.dtype, np.datetime64)
    if seasonality == "none":
        return "none", None
    if not is_dt:
        if seasonality == "unit_weekday":
            raise ValueError(f"seasonality='unit_weekday' needs dates in {time!r}; got {times.dtype} values.")
        return "none", None
    idx = pd.DatetimeIndex(times)
    daily = len(idx) > 1 and pd.Series(idx).diff().median() == pd.Timedelta(days=1)
    if seasonality == "auto" and not daily:
        return "none", None
    if not daily:
        raise ValueError("seasonality='unit_weekday' needs a daily panel (consecutive days).")
    return "unit_weekday", idx.day_of_week.to_numpy()


def staggered_panel(geo_sales_daily: pd.DataFrame, geo_assignment: pd.DataFrame, campaign_id: str, *,
                    metric: str = "revenue", start=None, end=None) -> pd.DataFrame:
    """Region x day panel for one staggered campaign, with each region's adoption date.

    Parameters
    ----------
    geo_sales_daily : pandas.DataFrame
        ``region``, ``date`` and the metric column.
    geo_assignment : pandas.DataFrame
        ``campaign_id``, ``region``, ``group`` (treatment, control) and ``start_date`` (each treated
        region's adoption date; empty for controls, or the campaign start for every treated region).
    campaign_id : str
        The campaign.
    metric : str
        Outcome column of ``geo_sales_daily`` (default ``"revenue"``).
    start, end : date-like, optional
        Keep only days in ``[start, end]``: e.g. a pre-period clear of other campaigns, and the end of the
        campaign's effect window (after it the effect is no longer the one to measure).

    Returns
    -------
    pandas.DataFrame
        ``region``, ``date``, ``metric`` (the chosen column, same name), ``cohort`` (adoption date, NaT for
        control regions) and ``treated`` (1 from the adoption date on), balanced over the regions of the
        campaign and the days every one of them reports. Feed it to ``staggered_did(panel, outcome=metric,
        unit="region", time="date", cohort="cohort")``.
    """
    for name, tab, cols in (("geo_sales_daily", geo_sales_daily, ("region", "date", metric)),
                            ("geo_assignment", geo_assignment, ("campaign_id", "region", "group"))):
        miss = [c for c in cols if c not in tab]
        if miss:
            raise ValueError(f"{name} lacks column(s) {miss}.")
    ga = geo_assignment[geo_assignment["campaign_id"].astype(str) == str(campaign_id)]
    if ga.empty:
        known = sorted(geo_assignment["campaign_id"].astype(str).unique())[:10]
        raise ValueError(f"Campaign {campaign_id!r} has no geo assignment; campaigns with one: {known}.")
    ga = ga.drop_duplicates("region")
    grp = ga["group"].astype(str).str.lower()
    if "start_date" in ga:
        adopt = pd.to_datetime(ga["start_date"], errors="coerce")
    else:
        adopt = pd.Series(pd.NaT, index=ga.index)
    if (grp == "treatment").any() and adopt[grp == "treatment"].isna().all():
        raise ValueError(f"geo_assignment has no start_date for campaign {campaign_id!r}'s treated regions; "
                         "a staggered analysis needs each region's adoption date.")
    cohort = pd.Series(np.where(grp == "treatment", adopt, pd.NaT), index=ga["region"].astype(str).to_numpy(),
                       dtype="datetime64[ns]")
    sales = geo_sales_daily.loc[geo_sales_daily["region"].astype(str).isin(cohort.index),
                                ["region", "date", metric]].copy()
    sales["region"] = sales["region"].astype(str)
    sales["date"] = pd.to_datetime(sales["date"]).astype("datetime64[ns]")
    if start is not None:
        sales = sales[sales["date"] >= pd.Timestamp(start)]
    if end is not None:
        sales = sales[sales["date"] <= pd.Timestamp(end)]
    if sales.empty:
        raise ValueError("No sales rows for the campaign's regions in the requested dates.")
    sales = sales.groupby(["region", "date"], as_index=False)[metric].sum()
    counts = sales.groupby("date")["region"].nunique()
    full_days = counts.index[counts == sales["region"].nunique()]
    sales = sales[sales["date"].isin(full_days)].sort_values(["region", "date"], ignore_index=True)
    sales["cohort"] = sales["region"].map(cohort).astype("datetime64[ns]")
    sales["treated"] = (sales["cohort"].notna() & (sales["date"] >= sales["cohort"])).astype(int)
    return sales
