"""Retention of the followers a campaign brought: excess unfollows against baseline churn."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import warnings as warnings_module

import numpy as np
import pandas as pd

from analysis._blas import one_blas_thread
from analysis.attribution._data import build_panel, net_only_followers
from analysis.attribution.followers import FollowerAttribution, _f, attribute_followers
from analysis.htmlsafe import NotebookRepr


class NoUnfollowData(ValueError):
    """The brand account's data do not record unfollows (only the net daily change of followers)."""


#: A day's lost followers are a one-day spike (a platform purge of inactive or fake accounts, a mass
#: unfollow) when they exceed the median of the 14 days around it by this many robust standard deviations
#: (1.4826 x the median absolute deviation there) and are at least ``SPIKE_RATIO`` times that median.
SPIKE_MADS = 10.0
SPIKE_RATIO = 3.0
#: Days either side of a day that its spike test compares it with.
SPIKE_HALF_WINDOW = 7
#: Opening words of the warning naming the spike days.
SPIKE_PHRASE = "lost followers spiked on single days"


def _neighbour_median(x: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median, median absolute deviation and count of the :data:`SPIKE_HALF_WINDOW` days either side of
    every day, the day itself left out (so that a spike does not raise its own yardstick)."""
    nb = pd.concat([x.shift(k) for k in range(-SPIKE_HALF_WINDOW, SPIKE_HALF_WINDOW + 1) if k], axis=1)
    med = nb.median(axis=1, skipna=True)
    mad = nb.sub(med, axis=0).abs().median(axis=1, skipna=True)
    return med.to_numpy(), mad.to_numpy(), nb.notna().sum(axis=1).to_numpy()


def unfollow_spikes(lost: np.ndarray) -> np.ndarray:
    """Days whose lost followers are a one-day spike (:data:`SPIKE_MADS`, :data:`SPIKE_RATIO`).

    A campaign's cohort leaves over weeks and raises the days around each day as much as the day itself;
    a purge removes thousands of accounts on one day. Each day is compared with the 14 days around it
    (a Hampel filter); days with fewer than 7 of them observed are not tested.
    """
    x = np.asarray(lost, float)
    med, mad, n = _neighbour_median(pd.Series(x))
    spread = np.maximum(1.4826 * mad, 1.0)
    with np.errstate(invalid="ignore"):
        return ((n >= SPIKE_HALF_WINDOW) & np.isfinite(x) & (x - med > SPIKE_MADS * spread)
                & (x >= SPIKE_RATIO * np.maximum(med, 1.0)))


@dataclass(frozen=True)
class RetentionResult(NotebookRepr):
    """How many of a campaign's incremental followers were lost again, against baseline churn.

    ``curve`` has one row per horizon (days after the campaign start): the cohort's incremental
    followers gained by then, the excess unfollows charged to the campaign (observed lost followers
    minus a baseline of ``churn rate x follower stock`` fitted on the days outside every campaign,
    with day-of-week terms, and split between overlapping campaigns by a distributed-lag fit), the
    cohort's lost rate and the baseline churn over the same horizon, and net followers kept.
    ``split`` describes that fit: the campaigns in it, the fitted unfollow kernel (its components
    and mean lag in days) and the loss rate (excess unfollows per modelled follow).
    """

    campaign_id: str
    curve: pd.DataFrame = field(repr=False)
    baseline_daily_churn: float
    gained: float
    warnings: tuple[str, ...] = ()
    split: dict = field(default_factory=dict, repr=False)

    def summary(self) -> pd.DataFrame:
        return self.curve.copy()

    def reading(self) -> str:
        """One plain-language paragraph: followers kept at the longest horizon against baseline churn."""
        c = self.curve.dropna(subset=["gained", "net_kept"])
        c = c[c["gained"] > 0]
        if c.empty:
            return ("The campaign gained no incremental followers, so there is no cohort whose retention could be "
                    "followed.")
        full = c[c["complete"].astype(bool)] if "complete" in c else c
        r = (full if len(full) else c).iloc[-1]
        cut = "" if len(full) else " (the data end before that day, so this is a lower bound on the losses)"
        h, lost, base = int(r["horizon_days"]), float(r["cohort_lost_rate"]), float(r["baseline_lost_rate"])
        text = (f"{h} days after the campaign started, {r['net_kept']:,.0f} of the {r['gained']:,.0f} incremental "
                f"followers gained by then were still following ({r['net_kept'] / r['gained']:.0%}): the campaign's "
                f"cohort lost {lost:.1%} of them against a baseline churn of {base:.1%} over the same {h} days{cut}")
        if np.isfinite(lost) and np.isfinite(base) and base > 0 and lost > 1.5 * base:
            ratio = f"{lost / base:.0f}" if lost / base >= 2.5 else f"{lost / base:.1f}"
            text += f", about {ratio} times the brand's usual rate: followers won by the campaign leave faster"
        elif np.isfinite(lost) and np.isfinite(base) and lost <= base:
            text += ": the new followers stayed at least as well as the brand's usual followers"
        return text + "."

    def plot(self, ax=None):
        from analysis.plotting import axes

        ax = axes(ax, figsize=(6, 4))
        c = self.curve
        ax.plot(c["horizon_days"], 100 * c["cohort_lost_rate"], "o-", label="campaign cohort")
        ax.plot(c["horizon_days"], 100 * c["baseline_lost_rate"], "s--", label="baseline churn")
        ax.set_xlabel("days after campaign start")
        ax.set_ylabel("share of gained followers lost (%)")
        ax.set_title(f"{self.campaign_id}: retention of gained followers")
        ax.legend()
        return ax

    def to_dict(self) -> dict:
        s = self.split
        split = {"campaigns": list(s.get("campaigns", [])), "loss_rate": _f(s.get("loss_rate")),
                 "mean_lag_days": _f(s.get("mean_lag_days")),
                 "kernel": {k: _f(v) for k, v in s.get("kernel", {}).items()}}
        return {"campaign_id": self.campaign_id, "baseline_daily_churn": _f(self.baseline_daily_churn),
                "gained": _f(self.gained),
                "curve": [{k: (bool(v) if k == "complete" else _f(v)) for k, v in r.items()}
                          for r in self.curve.to_dict("records")],
                "warnings": list(self.warnings), "split": split}


def unfollow_kernels(max_lag: int = 60) -> list[tuple[str, np.ndarray]]:
    """Basis kernels for the delay from a follow to its unfollow (weights of lags 0..``max_lag`` days).

    A small generic family: flat (every lag alike), geometric (a constant daily hazard, so
    front-loaded) with mean lags 2, 5, 10 and 20 days, and discretised gamma with shape 2 (a hump)
    with mean lags 8, 15 and 25 days. Each is truncated at ``max_lag`` and sums to one.

    Returns
    -------
    list of (str, numpy.ndarray)
        A label and the weights of each kernel.
    """
    from scipy import stats

    if max_lag < 1:
        raise ValueError(f"unfollow_days must be at least 1 day, got {max_lag}")
    lags = np.arange(max_lag + 1, dtype=float)
    out: list[tuple[str, np.ndarray]] = [("flat", np.ones(max_lag + 1))]
    for m in (2.0, 5.0, 10.0, 20.0):
        out.append((f"geometric(mean={m:g})", (m / (1 + m)) ** lags))
    for m in (8.0, 15.0, 25.0):
        cdf = stats.gamma.cdf(np.r_[lags, max_lag + 1.0], 2.0, scale=m / 2.0)
        out.append((f"gamma(shape=2, mean={m:g})", np.diff(cdf)))
    return [(name, w / w.sum()) for name, w in out]


def _carry_over(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Unfollows expected on each day from daily follows ``x`` (days, or days x campaigns) through the
    kernel ``w`` (weights of lags 0..len(w)-1): a causal convolution along the days."""
    from scipy import signal

    return signal.lfilter(w, [1.0], x, axis=0)


def _modelled(fa: FollowerAttribution, dates: pd.DatetimeIndex) -> np.ndarray:
    """A campaign's modelled daily follows within its attribution window (zero elsewhere, never negative).

    The modelled effect, not the observed-minus-counterfactual increment: a day's residual belongs to no
    campaign in particular, and the increments of overlapping campaigns would each carry all of it.
    """
    d = fa.daily.set_index("date")
    eff = d["modelled_effect"].where(d["in_window"], 0.0).reindex(dates).fillna(0.0).to_numpy(float)
    return np.maximum(eff, 0.0)


def split_excess_unfollows(excess: np.ndarray, follows: np.ndarray, fit_days: np.ndarray, *,
                           max_lag: int = 60) -> tuple[np.ndarray, dict]:
    """Excess unfollows of each campaign from a distributed-lag fit on all overlapping campaigns.

    The daily excess unfollows on ``fit_days`` are regressed, without intercept, on the campaigns'
    summed follows carried over through every kernel of :func:`unfollow_kernels`, with non-negative
    coefficients (``scipy.optimize.nnls``). The coefficients' sum is the loss rate (unfollows per
    follow, capped at one) and their normalised mix is the unfollow kernel. A campaign's excess
    unfollows are the loss rate times its own follows carried over through that kernel. The rate is
    pooled over the campaigns: when their follows rise and fall together, separate rates are not
    identified and a small campaign's rate absorbs the misfit of a large one.

    Parameters
    ----------
    excess : numpy.ndarray
        Observed minus baseline unfollows per day.
    follows : numpy.ndarray
        Days x campaigns modelled daily follows (non-negative).
    fit_days : numpy.ndarray of bool
        The days the regression uses.
    max_lag : int
        Longest delay from a follow to its unfollow, in days.

    Returns
    -------
    (numpy.ndarray, dict)
        Days x campaigns excess unfollows, and ``{"loss_rate", "mean_lag_days", "kernel"}`` where
        ``kernel`` maps each basis kernel to its weight in the fitted mix.
    """
    from scipy.optimize import nnls

    follows = np.atleast_2d(np.asarray(follows, float).T).T
    basis = unfollow_kernels(max_lag)
    B = np.column_stack([_carry_over(follows.sum(axis=1), w) for _, w in basis])
    coef = np.zeros(len(basis))
    if fit_days.sum() >= 2 and np.any(B[fit_days] > 0):
        coef, _ = nnls(B[fit_days], excess[fit_days])
    total = float(coef.sum())
    mix = coef / total if total > 0 else np.r_[1.0, np.zeros(len(basis) - 1)]
    w = sum(c * k for c, (_, k) in zip(mix, basis))
    rate = min(total, 1.0)
    info = {"loss_rate": rate, "mean_lag_days": float(np.dot(np.arange(len(w)), w)),
            "kernel": {name: float(c) for c, (name, _) in zip(mix, basis) if c > 0}}
    return rate * _carry_over(follows, w), info


@one_blas_thread
def follower_retention(data: Any, campaign_id: str, *, horizons: tuple[int, ...] = (30, 60, 90),
                       followers: FollowerAttribution | None = None,
                       unfollow_days: int = 60, view_curve: Any = None) -> RetentionResult:
    """Lost-follower rate of the campaign's cohort over ``horizons`` days against baseline churn.

    Baseline churn is a Poisson regression (identity link) of the brand account's daily lost
    followers on the previous day's follower stock, with day-of-week terms, fitted on the days outside
    every campaign's window and the 90 days after it; the excess unfollows are the observed lost
    followers minus that baseline. Every campaign whose follows can be unfollowed within the horizons
    enters one distributed-lag regression (:func:`split_excess_unfollows`): the excess unfollows are
    regressed on the campaigns' modelled daily follows carried over through a non-negative mix of
    generic delay kernels (flat, geometric, gamma) with one pooled loss rate, and the campaign is
    charged its own follows carried through the fitted kernel times that rate. A campaign that
    overlaps a larger one is so charged for its own follows, not for the larger one's unfollows.

    Parameters
    ----------
    data : path, Dataset or dict of DataFrames
    campaign_id : str
    horizons : tuple of int
        Days after the campaign's start.
    followers : FollowerAttribution, optional
        A finished follower attribution to reuse (else one is run without bootstrap).
    unfollow_days : int
        Longest delay from a follow to its unfollow, in days: the kernels' support, and how long
        after a campaign's window its unfollows are sought.
    view_curve : sequence of float, optional
        Passed on to the follower attributions run here (the campaign's, when ``followers`` is not given,
        and the overlapping campaigns'): the view curve assumed for posts exported once
        (:func:`~analysis.attribution.attribute_followers`).

    Returns
    -------
    RetentionResult
        ``curve`` with ``horizon_days, gained, excess_lost, cohort_lost_rate, baseline_lost_rate,
        net_kept, complete`` (``complete``: the data cover the whole horizon); ``split`` with the
        distributed-lag fit.
    """
    import statsmodels.api as sm

    if not horizons or min(horizons) < 1:
        raise ValueError(f"horizons must be positive numbers of days, got {horizons!r}")
    panel = build_panel(data, campaign_id, fallback_curve=view_curve)
    fa = followers or attribute_followers(data, campaign_id, n_boot=0, view_curve=view_curve)
    b = panel.brand
    warnings: list[str] = []
    if "lost_followers" not in b.columns or "followers" not in b.columns:
        raise ValueError("brand_account_daily needs followers and lost_followers for retention")
    if net_only_followers(b):
        raise NoUnfollowData("brand_account_daily has only the net daily change of followers (never new and lost "
                             "followers on one day, as in TikTok Studio's FollowerHistory), so the unfollows on days "
                             "the account grew are unknown")
    lost = b["lost_followers"].to_numpy(float)
    spikes = unfollow_spikes(lost)
    if spikes.any():
        idx = np.nonzero(spikes)[0]
        around = _neighbour_median(pd.Series(lost))[0]
        listed = "; ".join(f"{panel.dates[i]:%d %b %Y}: {lost[i]:,.0f} (the days around it: about {around[i]:,.0f})"
                           for i in idx[:5])
        more = f" and {len(idx) - 5} more" if len(idx) > 5 else ""
        warnings.append(f"{SPIKE_PHRASE} ({listed}{more}): a platform purge of inactive accounts or a mass unfollow, "
                        "not a cohort leaving over weeks, so they are left out of the churn and unfollow fits; if a "
                        "campaign post caused one (a backlash), count those unfollows against the campaign by hand")
        lost = np.where(spikes, np.nan, lost)
    stock = b["followers"].shift(1).bfill().to_numpy(float)
    dow = pd.get_dummies(panel.dates.day_of_week, drop_first=True).to_numpy(float)
    X = np.column_stack([stock, stock[:, None] * dow])
    # baseline churn fitted outside every campaign's window and the 90 days after it
    quiet = np.ones(len(panel.dates), dtype=bool)
    for _, r in panel.campaigns.iterrows():
        quiet &= ~np.asarray((panel.dates >= r["start_date"])
                             & (panel.dates <= r["window_end"] + pd.Timedelta(days=90)))
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
    # the fit covers the days the campaign's follows can be unfollowed (and the horizons); every
    # campaign whose follows can be unfollowed on one of those days enters it as a regressor
    fit_end = max(panel.window_end + pd.Timedelta(days=unfollow_days),
                  panel.start + pd.Timedelta(days=max(horizons) - 1))
    fit_days = (np.asarray((panel.dates >= panel.start) & (panel.dates <= fit_end)) & np.isfinite(lost)
                & np.isfinite(stock))
    series, ids = [_modelled(fa, panel.dates)], [panel.campaign_id]
    for other in panel.campaigns.index:
        if other == panel.campaign_id:
            continue
        row = panel.campaigns.loc[other]
        if row["window_end"] + pd.Timedelta(days=unfollow_days) < panel.start or row["start_date"] > fit_end:
            continue
        try:
            fo = attribute_followers(data, other, n_boot=0, view_curve=view_curve)
        except ValueError:
            warnings.append(f"overlapping campaign {other} could not be attributed: its unfollows are not separated")
            continue
        series.append(_modelled(fo, panel.dates))
        ids.append(str(other))
    charged, info = split_excess_unfollows(excess, np.column_stack(series), fit_days, max_lag=unfollow_days)
    own = charged[:, 0]
    if info["loss_rate"] >= 1.0:
        warnings.append("the fitted loss rate reached one unfollow per follow: excess unfollows are capped")
    split = {"campaigns": ids, **info}
    start = panel.start
    rows = []
    for h in horizons:
        m = np.asarray((panel.dates >= start) & (panel.dates < start + pd.Timedelta(days=h)))
        complete = bool(panel.dates[-1] >= start + pd.Timedelta(days=h - 1))
        if not complete:
            warnings.append(f"the data end before {h} days after the start: that horizon is truncated")
        gained = float(inc[m & fa.daily["in_window"].to_numpy()].sum())
        ex = float(own[m].sum())
        # baseline: a follower gained uniformly over the horizon faces churn for about half of it
        base = 1 - (1 - rate) ** (h / 2)
        rows.append({"horizon_days": h, "gained": gained, "excess_lost": ex,
                     "cohort_lost_rate": ex / gained if gained > 0 else np.nan,
                     "baseline_lost_rate": base, "net_kept": gained - ex, "complete": complete})
    return RetentionResult(campaign_id=panel.campaign_id, curve=pd.DataFrame(rows), baseline_daily_churn=rate,
                           gained=float(fa.incremental), warnings=tuple(warnings), split=split)
