"""Persistence: does engagement with the brand's own videos stay higher after the campaign?"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis._blas import one_blas_thread
from analysis.attribution import _engine as E
from analysis.attribution._data import build_panel
from analysis.attribution.followers import _f
from analysis.htmlsafe import NotebookRepr

#: Newey-West lags of the persistence regression's covariance (two weeks of daily data).
PERSISTENCE_HAC_LAGS = 14


@dataclass(frozen=True)
class PersistenceResult(NotebookRepr):
    """Views of the brand's own videos in the days after a campaign, against their counterfactual.

    ``ratio`` is observed over expected daily own-video views in the ``days`` after the campaign's end
    (1 = no lasting effect), from a Poisson regression with a log link of the brand account's daily
    ``video_views`` on trend, day of week, paid media and indicators of every campaign's days; its
    interval uses a heteroskedasticity- and autocorrelation-robust (Newey-West) covariance, widened by
    ``calibration`` from ``placebos`` campaign-free windows of the same length.
    ``daily`` has ``date, observed, counterfactual, period`` (``before``, ``during``, ``after`` or
    ``other``; the counterfactual sets this campaign's indicators to zero).
    """

    campaign_id: str
    days: int
    ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    observed_mean: float
    counterfactual_mean: float
    incremental_views: float
    alpha: float = 0.05
    calibration: float = 1.0
    placebos: int = 0
    daily: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    warnings: tuple[str, ...] = ()

    def summary(self) -> pd.DataFrame:
        """One tidy row: the after-campaign ratio with its interval and the daily means behind it."""
        return pd.DataFrame([{
            "campaign_id": self.campaign_id, "metric": "own video views per day", "days_after_end": self.days,
            "observed_mean": self.observed_mean, "counterfactual_mean": self.counterfactual_mean,
            "ratio": self.ratio, "ci_low": self.ci_low, "ci_high": self.ci_high, "p_value": self.p_value,
            "incremental_views": self.incremental_views,
        }])

    def reading(self) -> str:
        """One plain-language sentence on whether the effect lasted."""
        change = self.ratio - 1
        pct = f"{abs(change):.0%} {'more' if change >= 0 else 'fewer'}"
        span = f"{100 * (self.ci_low - 1):+.0f}% to {100 * (self.ci_high - 1):+.0f}%"
        level = f"{1 - self.alpha:.0%}"
        if self.ci_low > 1:
            verdict = "the campaign left the brand's own videos with more viewers"
        elif self.ci_high < 1:
            verdict = "the brand's own videos drew fewer views than expected afterwards"
        else:
            verdict = "no lasting change in views of the brand's own videos can be told from noise"
        return (f"In the {self.days} days after the campaign the brand's own videos drew {pct} views per day "
                f"than the counterfactual ({level} CI {span}): {verdict}.")

    def plot(self, ax=None):
        """Weekly own-video views, observed and counterfactual, with the campaign and after windows shaded."""
        from analysis.plotting import axes

        ax = axes(ax, figsize=(8, 3.5))
        d = self.daily.set_index("date")
        wk = d[["observed", "counterfactual"]].resample("W").mean()
        ax.plot(wk.index, wk["observed"], color="0.2", lw=1.2, label="observed (weekly mean)")
        ax.plot(wk.index, wk["counterfactual"], color="C0", lw=1.2, ls="--", label="counterfactual")
        for period, color in (("during", "C1"), ("after", "C2")):
            sel = d.index[d["period"] == period]
            if len(sel):
                ax.axvspan(sel.min(), sel.max(), color=color, alpha=0.15, label=f"{period} the campaign")
        ax.set_ylabel("own video views per day")
        ax.set_title(f"{self.campaign_id}: views of the brand's own videos (after/expected {self.ratio:.2f})")
        ax.legend(fontsize=8)
        return ax

    def to_dict(self) -> dict:
        return {"days": self.days, "ratio": _f(self.ratio), "ci_low": _f(self.ci_low), "ci_high": _f(self.ci_high),
                "p_value": _f(self.p_value), "observed_mean": _f(self.observed_mean),
                "counterfactual_mean": _f(self.counterfactual_mean),
                "incremental_views": _f(self.incremental_views), "calibration": _f(self.calibration),
                "placebos": int(self.placebos), "warnings": list(self.warnings)}


@one_blas_thread
def own_content_persistence(data: Any, campaign_id: str, *, days: int = 30, alpha: float = 0.05,
                            hac_lags: int = PERSISTENCE_HAC_LAGS) -> PersistenceResult:
    """Views of the brand's own videos in the ``days`` after the campaign, observed vs expected.

    Followers a campaign brings see the brand's later posts; if they stay interested, the brand's own
    videos draw more views after the campaign than its trend, weekday pattern and paid media predict.
    The brand account's daily ``video_views`` are fitted by a Poisson regression (log link; statsmodels
    GLM) on the baseline terms of the follower model except own-posting lags (intercept, trend with
    knots, day of week, paid media lags), one indicator for each campaign's days (start to end plus the
    attribution tail) and, for this campaign, one for its days and one for the ``days`` after its end.
    The after-indicator's coefficient gives the ratio; its interval uses a Newey-West covariance with
    ``hac_lags`` lags, multiplied by the placebo calibration of the follower model
    (:func:`analysis.attribution._engine.calibration_factor`): the same ratio is estimated for every
    campaign-free window of ``days`` days (one every week), and the root mean square of their
    standardised coefficients, with a Student quantile for its own uncertainty, widens the interval
    when the robust error understates the spread of a short window.

    Parameters
    ----------
    data : path, Dataset or dict of DataFrames
    campaign_id : str
    days : int
        Length of the after-campaign window, in days after the campaign's end date.
    alpha : float
        1 - confidence level of the interval.
    hac_lags : int
        Newey-West lags.

    Returns
    -------
    PersistenceResult

    Raises
    ------
    ValueError
        When ``brand_account_daily`` has no ``video_views``, when the data end before the window, or
        when too few days lie outside every campaign to fit the baseline.
    """
    import statsmodels.api as sm

    if days < 1:
        raise ValueError(f"days must be a positive number of days, got {days!r}")
    panel = build_panel(data, campaign_id)
    b = panel.brand
    if "video_views" not in b.columns or not pd.to_numeric(b["video_views"], errors="coerce").notna().any():
        raise ValueError("brand_account_daily has no video_views: the views of the brand's own videos are needed "
                         "to measure persistence")
    y = pd.to_numeric(b["video_views"], errors="coerce").to_numpy(float)
    dates = panel.dates
    end = panel.end
    after = np.asarray((dates > end) & (dates <= end + pd.Timedelta(days=days)))
    warnings: list[str] = []
    if after.sum() == 0:
        raise ValueError(f"the brand account's data end on {dates[-1].date()}, before the {days} days after the "
                         f"campaign's end ({end.date()})")
    if after.sum() < days:
        warnings.append(f"only {int(after.sum())} of the {days} days after the campaign are in the data")
    keep = [i for i, n in enumerate(panel.control_names) if not n.startswith("own_video_views")]
    base = panel.controls[:, keep]
    during = np.asarray((dates >= panel.start) & (dates <= end))
    cols, names = [base], list(np.asarray(panel.control_names)[keep])
    cols += [during[:, None].astype(float), after[:, None].astype(float)]
    names += ["this_campaign", "after_this_campaign"]
    others = np.zeros(len(dates), dtype=bool)
    overlapping: list[str] = []
    for cid, row in panel.campaigns.iterrows():
        if cid == panel.campaign_id:
            continue
        m = np.asarray((dates >= row["start_date"]) & (dates <= row["window_end"]))
        if not m.any():
            continue
        others |= m
        cols.append(m[:, None].astype(float))
        names.append(f"campaign_{cid}")
        if (m & after).any():
            overlapping.append(str(cid))
    if overlapping:
        who = (f"campaign {overlapping[0]} overlaps" if len(overlapping) == 1 else
               f"campaigns {', '.join(overlapping[:-1])} and {overlapping[-1]} overlap")
        warnings.append(f"{who} the {days} days after this one: {'its' if len(overlapping) == 1 else 'their'} "
                        "days are modelled apart, which leaves fewer days to compare the brand's own-video "
                        "views after the campaign with their baseline")
    X = np.column_stack(cols)
    ok = np.isfinite(y)
    quiet = ok & ~during & ~after & ~others
    if quiet.sum() < base.shape[1] + 30:
        raise ValueError(f"only {int(quiet.sum())} days lie outside every campaign and the {days} days after "
                         "this one: too few to fit the brand's own-video baseline")
    def glm(design: np.ndarray, col: int) -> tuple[Any, float, float]:
        f = sm.GLM(y[ok], design[ok], family=sm.families.Poisson()).fit(cov_type="HAC",
                                                                       cov_kwds={"maxlags": hac_lags})
        return f, float(f.params[col]), float(f.bse[col])

    j = names.index("after_this_campaign")
    fit, coef, se = glm(X, j)
    # placebo windows of the same length on quiet days calibrate the robust standard error
    zp: list[float] = []
    for s0 in range(0, len(dates) - days + 1, E.PLACEBO_STEP):
        m = np.zeros(len(dates), dtype=bool)
        m[s0:s0 + days] = True
        if not quiet[m].all():
            continue
        _, c, s = glm(np.column_stack([X, m.astype(float)]), X.shape[1])
        zp.append(c / s if s > 0 else np.nan)
    factor = E.calibration_factor(np.asarray(zp), alpha, window_days=days)
    if len(zp) < 5:
        how = (f"the interval is widened by the largest calibration factor ({E.CALIBRATION_CAP:g} times the robust "
               "standard error) instead of a measured one" if factor >= E.CALIBRATION_CAP
               else "the interval's calibration rests on them alone")
        warnings.append(f"only {len(zp)} campaign-free placebo windows: {how}")
    se *= factor
    z = float(stats.norm.ppf(1 - alpha / 2))
    X0 = X.copy()
    X0[:, names.index("this_campaign")] = 0.0
    X0[:, j] = 0.0
    cf = np.exp(X0 @ fit.params)
    sel = after & ok
    period = np.where(during, "during", np.where(after, "after", np.where(others, "other", "before")))
    period = np.where((period == "before") & (dates > end), "later", period)
    daily = pd.DataFrame({"date": dates, "observed": y, "counterfactual": cf, "period": period})
    if sel.sum() < 14:
        warnings.append(f"only {int(sel.sum())} observed days after the campaign: the ratio is imprecise")
    return PersistenceResult(
        campaign_id=panel.campaign_id, days=int(days), ratio=float(np.exp(coef)), ci_low=float(np.exp(coef - z * se)),
        ci_high=float(np.exp(coef + z * se)), p_value=float(2 * stats.norm.sf(abs(coef / se))),
        observed_mean=float(y[sel].mean()), counterfactual_mean=float(cf[sel].mean()),
        incremental_views=float((y[sel] - cf[sel]).sum()), alpha=alpha, daily=daily, warnings=tuple(warnings),
        calibration=factor, placebos=len(zp))
