"""Retention of the followers a campaign brought: excess unfollows against baseline churn."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import warnings as warnings_module

import numpy as np
import pandas as pd

from analysis.attribution._data import build_panel
from analysis.attribution.followers import FollowerAttribution, _f, attribute_followers


@dataclass(frozen=True)
class RetentionResult:
    """How many of a campaign's incremental followers were lost again, against baseline churn.

    ``curve`` has one row per horizon (days after the campaign start): the cohort's incremental
    followers gained by then, the excess unfollows (observed lost followers minus a baseline of
    ``churn rate x follower stock`` fitted on the days outside the campaign window, with day-of-week
    terms), the cohort's lost rate and the baseline churn over the same horizon, and net followers kept.
    """

    campaign_id: str
    curve: pd.DataFrame = field(repr=False)
    baseline_daily_churn: float
    gained: float
    warnings: tuple[str, ...] = ()

    def summary(self) -> pd.DataFrame:
        return self.curve.copy()

    def plot(self, ax=None):
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        c = self.curve
        ax.plot(c["horizon_days"], 100 * c["cohort_lost_rate"], "o-", label="campaign cohort")
        ax.plot(c["horizon_days"], 100 * c["baseline_lost_rate"], "s--", label="baseline churn")
        ax.set_xlabel("days after campaign start")
        ax.set_ylabel("share of gained followers lost (%)")
        ax.set_title(f"{self.campaign_id}: retention of gained followers")
        ax.legend()
        return ax

    def to_dict(self) -> dict:
        return {"campaign_id": self.campaign_id, "baseline_daily_churn": _f(self.baseline_daily_churn),
                "gained": _f(self.gained),
                "curve": [{k: _f(v) for k, v in r.items()} for r in self.curve.to_dict("records")],
                "warnings": list(self.warnings)}


def _trailing(x: np.ndarray, days: int) -> np.ndarray:
    """Sum of ``x`` over the ``days`` days before each day (excluding the day itself)."""
    c = np.concatenate(([0.0], np.cumsum(x)))
    i = np.arange(len(x))
    return c[i] - c[np.maximum(i - days, 0)]


def follower_retention(data: Any, campaign_id: str, *, horizons: tuple[int, ...] = (30, 60, 90),
                       followers: FollowerAttribution | None = None,
                       unfollow_days: int = 60) -> RetentionResult:
    """Lost-follower rate of the campaign's cohort over ``horizons`` days against baseline churn.

    Parameters
    ----------
    data : path, Dataset or dict of DataFrames
    campaign_id : str
    horizons : tuple of int
        Days after the campaign's start.
    followers : FollowerAttribution, optional
        A finished follower attribution to reuse (else one is run without bootstrap).
    unfollow_days : int
        Days after a follow within which its unfollows are sought: excess unfollows beyond baseline
        churn are shared between campaigns by the followers each brought in that many days before.
    """
    import statsmodels.api as sm

    panel = build_panel(data, campaign_id)
    fa = followers or attribute_followers(data, campaign_id, n_boot=0)
    b = panel.brand
    warnings: list[str] = []
    if "lost_followers" not in b.columns or "followers" not in b.columns:
        raise ValueError("brand_account_daily needs followers and lost_followers for retention")
    lost = b["lost_followers"].to_numpy(float)
    stock = b["followers"].shift(1).bfill().to_numpy(float)
    dow = pd.get_dummies(panel.dates.day_of_week, drop_first=True).to_numpy(float)
    X = np.column_stack([stock, stock[:, None] * dow])
    # baseline churn fitted outside every campaign's window and the 90 days after it
    quiet = np.ones(len(panel.dates), dtype=bool)
    for _, r in panel.campaigns.iterrows():
        quiet &= ~np.asarray((panel.dates >= r["start_date"]) & (panel.dates <= r["window_end"] + pd.Timedelta(days=90)))
    ok = quiet & np.isfinite(lost) & np.isfinite(stock)
    if ok.sum() < 30:
        warnings.append("fewer than 30 days without campaigns: baseline churn fitted on all days")
        ok = np.isfinite(lost) & np.isfinite(stock)
    with warnings_module.catch_warnings():
        warnings_module.simplefilter("ignore")  # identity link: fitted rates are checked below
        fit = sm.GLM(lost[ok], X[ok], family=sm.families.Poisson(link=sm.families.links.Identity())).fit()
    expected = np.maximum(X @ fit.params, 0.0)
    rate = float(np.sum(expected[ok]) / np.sum(stock[ok]))
    excess = np.nan_to_num(lost - expected)
    inc = fa.daily.set_index("date")["incremental"].reindex(panel.dates).fillna(0.0).to_numpy()
    inc = np.where(fa.daily["in_window"].to_numpy(), inc, 0.0)
    # unfollows come 1-60 days after the follow: excess unfollows on a day are shared between the
    # campaigns in proportion to the followers each brought in the 60 days before (overlapping
    # campaigns would otherwise be charged each other's losses)
    recent = _trailing(np.maximum(inc, 0.0), unfollow_days)
    all_recent = recent.copy()
    for other in panel.campaigns.index:
        if other == panel.campaign_id:
            continue
        row = panel.campaigns.loc[other]
        if row["window_end"] + pd.Timedelta(days=unfollow_days) < panel.start or \
                row["start_date"] > panel.start + pd.Timedelta(days=max(horizons)):
            continue
        try:
            fo = attribute_followers(data, other, n_boot=0)
        except ValueError:
            continue
        io = fo.daily.set_index("date")["incremental"].reindex(panel.dates).fillna(0.0).to_numpy()
        io = np.where(fo.daily["in_window"].to_numpy(), io, 0.0)
        all_recent += _trailing(np.maximum(io, 0.0), unfollow_days)
    share = np.divide(recent, all_recent, out=np.zeros_like(recent), where=all_recent > 0)
    excess = excess * share
    start = panel.start
    rows = []
    for h in horizons:
        m = np.asarray((panel.dates >= start) & (panel.dates < start + pd.Timedelta(days=h)))
        if panel.dates[-1] < start + pd.Timedelta(days=h - 1):
            warnings.append(f"the data end before {h} days after the start: that horizon is truncated")
        gained = float(inc[m & fa.daily["in_window"].to_numpy()].sum())
        ex = float(excess[m].sum())
        # baseline: a follower gained uniformly over the horizon faces churn for about half of it
        base = 1 - (1 - rate) ** (h / 2)
        rows.append({"horizon_days": h, "gained": gained, "excess_lost": ex,
                     "cohort_lost_rate": ex / gained if gained > 0 else np.nan,
                     "baseline_lost_rate": base, "net_kept": gained - ex})
    return RetentionResult(campaign_id=panel.campaign_id, curve=pd.DataFrame(rows), baseline_daily_churn=rate,
                           gained=float(fa.incremental), warnings=tuple(warnings))
