"""Assemble the daily series one brand account's attribution needs.

Works from a processed directory, an ``analysis.data.Dataset`` or a plain dict of
DataFrames (processed or raw column layout: ``post_daily`` is derived from the
cumulative ``post_metrics`` snapshots when absent; local dates are derived from UTC
timestamps in the campaign's time zone when ``posted_date`` / ``created_date`` are absent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.config import ATTRIBUTION_TAIL_DAYS
from analysis.conversions import read_table

#: Views enter the model in thousands (coefficients are per 1,000 views).
VIEW_SCALE = 1_000.0


def _dates(s: pd.Series) -> pd.Series:
    out = pd.to_datetime(s)
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_localize(None)
    return out.dt.normalize().astype("datetime64[ns]")


def _local_dates(df: pd.DataFrame, date_col: str, ts_col: str, tz: pd.Series | str | None) -> pd.Series:
    """Local calendar dates: ``date_col`` when present, else ``ts_col`` converted to ``tz``."""
    if date_col in df.columns and df[date_col].notna().all():
        return _dates(df[date_col])
    ts = pd.to_datetime(df[ts_col], utc=True)
    if tz is None:
        return ts.dt.tz_localize(None).dt.normalize().astype("datetime64[ns]")
    if isinstance(tz, str):
        return ts.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize().astype("datetime64[ns]")
    out = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    for zone, idx in tz.fillna("UTC").groupby(tz.fillna("UTC")).groups.items():
        out.loc[idx] = ts.loc[idx].dt.tz_convert(zone).dt.tz_localize(None).dt.normalize()
    return out


def post_daily_views(data: Any) -> pd.DataFrame:
    """Daily increments per post (``post_id, date, views, profile_views, follows``).

    Uses the processed ``post_daily`` table; derives the increments from the cumulative
    ``post_metrics`` snapshots (non-negative differences) when only those are available.
    """
    pdl = read_table(data, "post_daily", required=False)
    cols = ["views", "profile_views", "follows", "link_clicks"]
    if pdl is not None:
        out = pdl.copy()
    else:
        pm = read_table(data, "post_metrics", required=False)
        if pm is None:
            raise ValueError("the data has neither a post_daily nor a post_metrics table: "
                             "post exposure (daily views) is needed for attribution")
        pm = pm.copy()
        pm["date"] = _dates(pm["date"])
        pm = pm.sort_values(["post_id", "date"]).drop_duplicates(["post_id", "date"], keep="last")
        present = [c for c in cols if c in pm.columns]
        cum = pm.groupby("post_id")[present].cummax()
        inc = cum.groupby(pm["post_id"]).diff().fillna(cum).clip(lower=0)
        out = pd.concat([pm[["post_id", "date"]], inc], axis=1)
    out["date"] = _dates(out["date"])
    out["post_id"] = out["post_id"].astype(str)
    for c in cols:
        if c not in out.columns:
            out[c] = 0.0
        out[c] = pd.to_numeric(out[c], errors="coerce").fillna(0.0).astype(float)
    # days with a snapshot (post_daily's filled days between snapshots carry no increment)
    out["observed"] = out["observed"].fillna(True).astype(bool) if "observed" in out.columns else True
    return out[["post_id", "date", *cols, "observed"]]


#: Share of a campaign's views reported in increments covering this many days or more (snapshots missing,
#: or a first snapshot days after the post went live) above which the attribution warns about timing.
LUMPED_SPAN_DAYS = 3
LUMPED_VIEW_SHARE = 0.05
#: Words of the warning given when that share is exceeded (the post-mortem looks for them).
LUMPED_PHRASE = "of the campaign posts' views were reported in increments covering"


def lumped_view_share(pdv: pd.DataFrame, posts: pd.DataFrame) -> float:
    """Share of the posts' views reported in one increment covering ``LUMPED_SPAN_DAYS`` days or more.

    ``pdv`` is :func:`post_daily_views` (``observed`` marks snapshot days); ``posts`` has ``post_id`` and
    ``posted_date``. An increment covers the days since the post's previous snapshot, or since it went live
    for its first one (:func:`spread_snapshots` spreads it over those days).
    """
    return _lumped_share(_snapshot_spans(pdv, posts))


def _lumped_share(snap: pd.DataFrame) -> float:
    total = float(snap["views"].sum())
    if total <= 0:
        return 0.0
    return float(snap.loc[snap["span"] >= LUMPED_SPAN_DAYS, "views"].sum()) / total


#: Posts whose last snapshot is at least this many days after posting define the settled view curve.
SETTLED_AGE_DAYS = 28
#: Fewest posts reporting at an age for the pooled view curve to use that age.
MIN_CURVE_POSTS = 5
#: Columns of :func:`post_daily_views` that are counts accumulated by the post.
COUNT_COLUMNS = ("views", "profile_views", "follows", "link_clicks")


def _snapshot_spans(pdv: pd.DataFrame, posts: pd.DataFrame) -> pd.DataFrame:
    """The snapshot rows of ``pdv`` with each post's age (days since it went live) and the days each covers."""
    snap = pdv[pdv["observed"] & pdv["post_id"].isin(posts["post_id"])].sort_values(["post_id", "date"]).copy()
    posted = snap["post_id"].map(posts.drop_duplicates("post_id").set_index("post_id")["posted_date"])
    live = posted - pd.Timedelta(days=1)
    prev = snap.groupby("post_id")["date"].shift()
    prev = prev.fillna(live).fillna(snap["date"] - pd.Timedelta(days=1))
    snap["age"] = (snap["date"] - posted).dt.days.fillna(0).astype(int)
    snap["span"] = (snap["date"] - prev).dt.days.clip(lower=1).astype(int)
    return snap


#: A typical TikTok video's cumulative share of its views by age in days (0 = its first day), as tracked
#: by Trendpop over 90 days ("The new TikTok video lifecycle: a closer look at a video's growth rate over
#: time"): 32% in the first 24 hours, 38% in 48 hours, 55% in the first week, about all of them by 90 days.
PUBLISHED_VIEW_SHARE: dict[int, float] = {0: 0.32, 1: 0.38, 6: 0.55, 89: 1.0}


#: Words of the timing warning when the published curve was assumed (the post-mortem looks for them).
ASSUMED_CURVE_PHRASE = "spread along a typical TikTok video's published view curve"
#: Words of the timing warning when a curve supplied by the caller was assumed.
SUPPLIED_CURVE_PHRASE = "spread along the view curve supplied (view_curve=; view_curve_data in the report notebooks)"
#: The published curve in words (the timing warning).
PUBLISHED_CURVE_TEXT = "Trendpop: 32% of the views on the first day, 55% in the first week, all by 90 days"


def published_view_curve() -> np.ndarray:
    """The view curve assumed when the posts' own snapshots give none (:data:`PUBLISHED_VIEW_SHARE`).

    ``F[a]`` is the share of a post's views by age ``a`` (``a = 0 .. 89``); between the published ages it
    rises linearly in ``log(age + 1)``, so the daily views of the tail fall off like ``1 / age``.
    """
    ages = np.array(list(PUBLISHED_VIEW_SHARE), float)
    share = np.array(list(PUBLISHED_VIEW_SHARE.values()), float)
    return np.interp(np.log1p(np.arange(int(ages[-1]) + 1)), np.log1p(ages), share)


def view_curve(snap: pd.DataFrame) -> np.ndarray:
    """Pooled cumulative share of a post's views by age, from the posts' own snapshots.

    Each settled post with two snapshots or more (last snapshot at least ``SETTLED_AGE_DAYS`` after
    posting, or every such post when fewer than ``MIN_CURVE_POSTS`` are settled) gives its cumulative
    views at each reported age as a share of its last reported total. The shares are averaged by age
    (ages reported by at least ``MIN_CURVE_POSTS`` posts), made non-decreasing (isotonic regression,
    weighted by the posts at each age) and interpolated between the ages reported along the published
    curve's shape (:func:`published_view_curve`; evenly beyond its 90 days), from 0 the day before
    posting. Returns ``F`` with ``F[a]`` the share by age ``a`` (``a = 0 .. max age``); empty when fewer
    than two ages qualify (single snapshots, or every post reported at one age only, say nothing about
    the shape).
    """
    from scipy.optimize import isotonic_regression

    s = snap[snap["age"] >= 0]
    if s.empty:
        return np.zeros(0)
    cum = s.groupby("post_id")["views"].cumsum()
    total = s.groupby("post_id")["views"].transform("sum")
    last_age = s.groupby("post_id")["age"].transform("max")
    ok = (total > 0) & (s.groupby("post_id")["age"].transform("size") >= 2)  # one snapshot shows no shape
    settled = ok & (last_age >= SETTLED_AGE_DAYS)
    use = settled if s.loc[settled, "post_id"].nunique() >= MIN_CURVE_POSTS else ok
    share = (cum / total)[use]
    by = share.groupby(s.loc[use, "age"]).agg(["mean", "size"])
    by = by[by["size"] >= MIN_CURVE_POSTS]
    if len(by) < 2:  # one age (every post's last snapshot at the same age) says nothing about the shape
        return np.zeros(0)
    fit = isotonic_regression(by["mean"].to_numpy(float), weights=by["size"].to_numpy(float)).x
    ages = np.arange(int(by.index.max()) + 1)
    clock = _published_clock(np.arange(-1, len(ages)))
    return np.interp(clock[1:], clock[np.r_[-1, by.index.to_numpy(int)] + 1], np.r_[0.0, np.clip(fit, 0.0, 1.0)])


def _published_clock(ages: np.ndarray) -> np.ndarray:
    """Strictly increasing stand-in for age in which the published curve rises linearly (0 the day before
    posting): between two ages the snapshots report, the pooled curve follows the published shape, and
    beyond the published ages it rises evenly."""
    pub = published_view_curve()
    a = np.asarray(ages, int)
    # the small even slope keeps the clock increasing where the published curve is flat (after 90 days)
    return np.where(a < 0, 0.0, pub[np.clip(a, 0, len(pub) - 1)]) + 1e-4 * (a + 1)


def spread_snapshots(pdv: pd.DataFrame, posts: pd.DataFrame, *, curve: np.ndarray | None = None) -> pd.DataFrame:
    """Spread each increment reported over several days across the days it covers.

    An increment covers the days since the post's previous snapshot (since it went live, for its first).
    Reported with daily snapshots, it is that day's count and is kept. Reported after a gap (a missing
    snapshot, weekly exports, or a first snapshot days after posting), it is divided over the days it
    covers in proportion to the rise of the pooled view curve (:func:`view_curve`) over the post's ages on
    those days, or of the published typical curve (:func:`published_view_curve`) when the snapshots give
    none (one snapshot per post); evenly where the curve is flat or ends. Every count column is divided
    with the views' weights; each post's totals are unchanged. Rows of ``pdv`` that are not snapshots
    (days filled in with no increment) are dropped; the spread rows have ``observed`` False. ``curve`` is
    :func:`view_curve` of these posts when the caller has it already.
    """
    snap = _snapshot_spans(pdv, posts)
    if curve is None:
        curve = view_curve(snap)
    return _spread(pdv, snap, curve if len(curve) else published_view_curve())


def _spread(pdv: pd.DataFrame, snap: pd.DataFrame, curve: np.ndarray) -> pd.DataFrame:
    """:func:`spread_snapshots` given the posts' snapshot spans and view curve."""
    if snap.empty:
        return pdv
    rep = snap.loc[snap.index.repeat(snap["span"])].copy()
    back = rep.groupby(level=0).cumcount(ascending=False).to_numpy()
    rep["date"] = rep["date"] - pd.to_timedelta(back, unit="D")
    age = rep["age"].to_numpy() - back
    rise = np.zeros(len(rep))
    if len(curve):
        inside = (age >= 0) & (age < len(curve))
        prev = np.where(age - 1 >= 0, curve[np.clip(age - 1, 0, len(curve) - 1)], 0.0)
        rise[inside] = curve[age[inside]] - prev[inside]
    key = rep.index.to_numpy()
    tot = pd.Series(rise).groupby(key).transform("sum").to_numpy()
    n = pd.Series(key).groupby(key).transform("size").to_numpy()
    w = np.where(tot > 1e-12, rise / np.where(tot > 1e-12, tot, 1.0), 1.0 / n)
    for c in COUNT_COLUMNS:
        if c in rep.columns:
            rep[c] = rep[c].to_numpy(float) * w
    rep["observed"] = back == 0
    rest = pdv[~pdv["post_id"].isin(snap["post_id"])]
    out = pd.concat([rest, rep[pdv.columns]], ignore_index=True)
    return out.sort_values(["post_id", "date"], kind="stable").reset_index(drop=True)


#: Days with follower movement needed before "never a gain and a loss on the same day" reads as net-only data.
NET_ONLY_MIN_DAYS = 28


def net_only_followers(brand: pd.DataFrame) -> bool:
    """Whether the brand's new and lost followers are only the split of the net daily change.

    TikTok Studio's ``FollowerHistory`` reports the net change alone; its conversion keeps it as
    ``net_followers`` and sets ``new_followers`` to the gains and ``lost_followers`` to the losses of that net
    change. Such data (the column, or at least ``NET_ONLY_MIN_DAYS`` days with a gain or a loss and never both
    on one day) carry no unfollows on days the account grew.
    """
    if "net_followers" in brand.columns and brand["net_followers"].notna().any():
        return True
    if not {"new_followers", "lost_followers"} <= set(brand.columns):
        return False
    new = pd.to_numeric(brand["new_followers"], errors="coerce")
    lost = pd.to_numeric(brand["lost_followers"], errors="coerce")
    ok = new.notna() & lost.notna()
    moved = ok & ((new > 0) | (lost > 0))
    return int(moved.sum()) >= NET_ONLY_MIN_DAYS and not bool((ok & (new > 0) & (lost > 0)).any())


#: The warning of :func:`build_panel` on net-only follower data.
NET_ONLY_WARNING = ("brand_account_daily has only the net daily change of followers (never new and lost "
                    "followers on one day, as in TikTok Studio's FollowerHistory): new followers are the days' net "
                    "gains, so the incremental followers are net of the unfollows on the same days (of the "
                    "campaign's new followers and the brand's usual churn alike) and understate the follows the "
                    "campaign brought; the retention of the gained followers cannot be measured")


#: Days of history before a campaign below which its baseline is said to rest mostly on the days after it.
MIN_PRE_DAYS = 28


#: Shares of a campaign's post views before its start and after its window's end above which a warning says
#: their follows fall outside the attribution window (posts that went live early, or late).
OUTSIDE_WINDOW_SHARE = {"before": 0.01, "after": 0.05}

#: Median days between the brand account's rows at or above which they are read as weekly (or sparser)
#: totals rather than days with some missing: the attribution refuses them (:class:`NotDailyData`).
NOT_DAILY_STEP = 7


class BrandDataUnusable(ValueError):
    """The brand account's data cannot carry an attribution; a report says why and leaves the section out."""


class WindowOutsideData(BrandDataUnusable):
    """The brand account's daily data do not overlap the campaign and its attribution tail."""


class NotDailyData(BrandDataUnusable):
    """The brand account's rows are weekly (or sparser) totals, not days."""


@dataclass
class Panel:
    """Everything the models need for one brand account, on a complete daily calendar."""

    campaign_id: str
    campaigns: pd.DataFrame          # the brand account's campaigns (start_date, end_date, window_end)
    dates: pd.DatetimeIndex
    brand: pd.DataFrame              # brand_account_daily reindexed on ``dates``
    controls: np.ndarray             # baseline design (n x q), intercept first
    control_names: list[str]
    units: pd.DataFrame              # one row per exposure column: campaign_id, creator_id
    views: np.ndarray                # daily views per unit, thousands (n x m)
    posts: pd.DataFrame              # campaign posts of this brand: post_id, creator_id, campaign_id, posted_date
    post_views: np.ndarray           # daily views per post, thousands (n x n_posts), columns follow ``posts``
    post_daily: pd.DataFrame         # the brand's campaign posts' daily increments
    creators: pd.DataFrame | None
    timezone: str | None
    warnings: list[str] = field(default_factory=list)
    #: Cumulative share of a post's views by age that the spreading used (``F[a]``, ``a = 0 ..``) and where
    #: it came from: ``"posts"`` (the posts' own snapshots), ``"supplied"`` or ``"published"``.
    view_curve: np.ndarray = field(default_factory=lambda: np.zeros(0))
    view_curve_source: str = "posts"

    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(self.campaigns.loc[self.campaign_id, "start_date"])

    @property
    def end(self) -> pd.Timestamp:
        return pd.Timestamp(self.campaigns.loc[self.campaign_id, "end_date"])

    @property
    def window_end(self) -> pd.Timestamp:
        return pd.Timestamp(self.campaigns.loc[self.campaign_id, "window_end"])

    @property
    def observed_window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The campaign plus its tail, cut to the brand account's data (:attr:`dates`)."""
        return max(self.start, self.dates[0]), min(self.window_end, self.dates[-1])

    def window_mask(self, campaign_id: str | None = None) -> np.ndarray:
        cid = self.campaign_id if campaign_id is None else campaign_id
        row = self.campaigns.loc[cid]
        return np.asarray((self.dates >= row["start_date"]) & (self.dates <= row["window_end"]))


def _lags(x: np.ndarray, lags: range) -> np.ndarray:
    out = np.zeros((len(x), len(lags)))
    for j, k in enumerate(lags):
        out[k:, j] = x[: len(x) - k] if k else x
    return out


def baseline_controls(dates: pd.DatetimeIndex, brand: pd.DataFrame, paid: pd.DataFrame | None, *,
                      trend_knot_days: int = 120) -> tuple[np.ndarray, list[str], list[str]]:
    """Baseline design: intercept, piecewise-linear trend, day of week, own posting, paid media.

    Own posting (``video_views``) and paid impressions enter with lags 0-3 and the mean of lags
    4-10 (thousands), so their own carry-over is not credited to creators.
    """
    n = len(dates)
    warn: list[str] = []
    t = np.arange(n, dtype=float) / 365.0
    cols = [np.ones(n), t]
    names = ["intercept", "trend"]
    for k in range(trend_knot_days, n - trend_knot_days // 2, trend_knot_days):
        cols.append(np.maximum(0.0, t - k / 365.0))
        names.append(f"trend_knot_{k}")
    dow = np.asarray(dates.day_of_week)
    for d in range(1, 7):
        cols.append((dow == d).astype(float))
        names.append(f"dow_{d}")

    def lagged(x: np.ndarray, label: str, concave: bool = False) -> None:
        x = np.nan_to_num(x, nan=float(np.nanmean(x)) if np.isfinite(x).any() else 0.0) / VIEW_SCALE
        if np.allclose(x, x[0]):
            return
        lagm = _lags(x, range(0, 11))
        for j in range(4):
            cols.append(lagm[:, j])
            names.append(f"{label}_lag{j}")
        cols.append(lagm[:, 4:].mean(axis=1))
        names.append(f"{label}_lag4_10")
        if concave:
            # paid media saturates: the first impressions of a day move more than the last ones
            sq = _lags(np.sqrt(np.maximum(x, 0.0)), range(0, 4))
            on = _lags((x > 0).astype(float), range(0, 4))
            for j in range(2):
                cols.append(sq[:, j])
                names.append(f"{label}_sqrt_lag{j}")
                cols.append(on[:, j])
                names.append(f"{label}_active_lag{j}")

    if "video_views" in brand.columns:
        lagged(brand["video_views"].to_numpy(float), "own_video_views")
    else:
        warn.append("brand_account_daily has no video_views: the brand's own posting is not controlled for")
    if paid is not None and len(paid):
        p = paid.copy()
        p["date"] = _dates(p["date"])
        if "channel" in p.columns:
            # boosted creator posts (Spark Ads) are part of the creators' exposure (post paid views),
            # not of the brand's own paid media
            spark = p["channel"].astype(str).str.lower().str.contains("spark")
            p = p[~spark]
        col = "impressions" if "impressions" in p.columns else "spend"
        s = p.groupby("date")[col].sum().reindex(dates, fill_value=0.0)
        lagged(s.to_numpy(float), f"paid_{col}", concave=True)
    return np.column_stack(cols), names, warn


#: Retail holiday season: seven-day blocks ending on Christmas Eve, Christmas week and New Year week,
#: as (month, day) of each block's first day.
HOLIDAY_WEEKS: tuple[tuple[int, int], ...] = ((11, 13), (11, 20), (11, 27), (12, 4), (12, 11), (12, 18), (12, 25),
                                              (1, 1))


def holiday_controls(dates: pd.DatetimeIndex, *, min_days: int = 3) -> tuple[np.ndarray, list[str]]:
    """Indicators of the retail holiday season's weeks (one column per week and year in ``dates``).

    Online orders and revenue rise from mid-November to Christmas (Black Friday, Cyber Monday, gift
    shopping); a piecewise-linear trend cannot follow a six-week bump and would tilt towards it, so the
    weeks before a campaign that ends in October or November would be over-predicted. Each block of
    :data:`HOLIDAY_WEEKS` gets its own level; blocks with fewer than ``min_days`` days in the data are
    left out.
    """
    cols, names = [], []
    d = pd.DatetimeIndex(dates)
    for year in sorted(set(d.year)):
        for month, day in HOLIDAY_WEEKS:
            start = pd.Timestamp(year=year, month=month, day=day)
            ind = np.asarray((d >= start) & (d < start + pd.Timedelta(days=7)), dtype=float)
            if ind.sum() >= min_days:
                cols.append(ind)
                names.append(f"holiday_{start:%Y_%m_%d}")
    if not cols:
        return np.zeros((len(d), 0)), []
    return np.column_stack(cols), names


def measured_view_curve(data: Any, campaign_id: str | None = None) -> np.ndarray:
    """The pooled view curve of a data set's campaign posts, measured on their own snapshots.

    Pass it as ``view_curve=`` to the attribution of a campaign whose posts were exported once (one
    snapshot each), in place of the published typical curve: for example the curve of an earlier campaign
    of the same brand whose post metrics were exported daily or weekly.

    Parameters
    ----------
    data : path, Dataset or dict of DataFrames
        The data set whose post metrics hold the curve (every campaign post of the brand account is pooled).
    campaign_id : str, optional
        A campaign of that data set, choosing the brand account (default: the first campaign).

    Returns
    -------
    numpy.ndarray
        ``F[a]``, the cumulative share of a post's views by age ``a`` in days (``F[0]`` on its first day).

    Raises
    ------
    ValueError
        When the data set's snapshots give no curve (fewer than ``MIN_CURVE_POSTS`` posts with two snapshots
        at the same ages).
    """
    if campaign_id is None:
        ids = read_table(data, "campaigns")["campaign_id"].astype(str)
        if ids.empty:
            raise ValueError("the data set has no campaigns: there are no campaign posts to measure a curve on")
        campaign_id = ids.iloc[0]
    panel = build_panel(data, campaign_id)
    if panel.view_curve_source != "posts":
        raise ValueError(f"the post metrics of this data set give no view curve (it needs {MIN_CURVE_POSTS} posts "
                         "or more with two snapshots at the same ages): export them daily or weekly")
    return panel.view_curve


def check_view_curve(curve: Any) -> np.ndarray | None:
    """``curve`` as a cumulative share of views by age (``F[a]``, ``a = 0 ..``), or a readable error."""
    if curve is None:
        return None
    try:
        F = np.asarray(curve, dtype=float)
    except (TypeError, ValueError):
        F = np.zeros(0)
    if F.ndim != 1 or len(F) < 2 or not np.isfinite(F).all():
        raise ValueError("view_curve must be a sequence of at least two finite numbers: the cumulative share "
                         "of a post's views by age in days (F[0] on its first day), e.g. "
                         "analysis.attribution.measured_view_curve(other_data)")
    if (np.diff(F) < -1e-9).any() or F[0] < 0 or F[-1] <= 0:
        raise ValueError("view_curve must be a non-decreasing cumulative share of views, starting at 0 or more "
                         "and ending above 0")
    return F / F[-1]


def _outside_window_warnings(dates: pd.DatetimeIndex, views: np.ndarray, posts: pd.DataFrame,
                             start: pd.Timestamp, end: pd.Timestamp, wend: pd.Timestamp) -> list[str]:
    """Warnings for a campaign whose post views fall before its start or after its window's end."""
    out = []
    total = float(views.sum())
    before = float(views[np.asarray(dates < start)].sum()) / total
    after = float(views[np.asarray(dates > wend)].sum()) / total
    if before > OUTSIDE_WINDOW_SHARE["before"]:
        early = posts[posts["posted_date"] < start]
        out.append(f"{before:.0%} of the campaign posts' views came before the campaign's start_date "
                   f"({start:%d %b %Y}; {len(early)} post{'s' if len(early) != 1 else ''} went live up to "
                   f"{(start - early['posted_date'].min()).days if len(early) else 0} days early): what they "
                   "brought then (follows, orders) is outside the attribution window and not counted; set "
                   "start_date to the first post's day to count it")
    if after > OUTSIDE_WINDOW_SHARE["after"]:
        late = posts[posts["posted_date"] > end]
        out.append(f"{after:.0%} of the campaign posts' views came after the campaign's end plus its tail "
                   f"({wend:%d %b %Y}; {len(late)} post{'s' if len(late) != 1 else ''} went live after the "
                   "end_date): what they brought then is not counted; set end_date to the last post's day to "
                   "count it")
    return out


def build_panel(data: Any, campaign_id: str, *, tail_days: int = ATTRIBUTION_TAIL_DAYS,
                trend_knot_days: int = 120, fallback_curve: Any = None) -> Panel:
    """Read the tables and build the :class:`Panel` of the campaign's brand account.

    ``fallback_curve`` (cumulative share of a post's views by age in days, for example the
    :attr:`Panel.view_curve` of a campaign exported daily) replaces the published typical curve where the
    posts' snapshots give no curve of their own.
    """
    supplied = check_view_curve(fallback_curve)
    campaigns = read_table(data, "campaigns").copy()
    campaigns["campaign_id"] = campaigns["campaign_id"].astype(str)
    campaign_id = str(campaign_id)
    if campaign_id not in set(campaigns["campaign_id"]):
        known = ", ".join(sorted(campaigns["campaign_id"]))
        raise ValueError(f"unknown campaign {campaign_id!r}; known campaigns: {known}")
    campaigns["start_date"] = _dates(campaigns["start_date"])
    campaigns["end_date"] = _dates(campaigns["end_date"])
    campaigns["window_end"] = campaigns["end_date"] + pd.Timedelta(days=tail_days)
    row = campaigns.set_index("campaign_id").loc[campaign_id]
    account = row.get("brand_account") if "brand_account" in campaigns.columns else None
    tz = row.get("timezone") if "timezone" in campaigns.columns else None
    tz = str(tz) if isinstance(tz, str) and tz else None

    bad = read_table(data, "brand_account_daily").copy()
    if account is not None and "brand_account" in bad.columns and pd.notna(account):
        bad = bad[bad["brand_account"].astype(str) == str(account)]
        campaigns = campaigns[campaigns["brand_account"].astype(str) == str(account)]
    if bad.empty:
        raise ValueError(f"brand_account_daily has no rows for the brand account {account!r} of campaign "
                         f"{campaign_id!r}")
    bad["date"] = _dates(bad["date"])
    bad = bad.sort_values("date").drop_duplicates("date", keep="last")
    step = np.diff(bad["date"].to_numpy()).astype("timedelta64[D]").astype(int)
    if len(step) >= 2 and np.median(step) >= NOT_DAILY_STEP:
        raise NotDailyData(
            f"brand_account_daily, column date: its {len(bad)} rows ({bad['date'].iloc[0]:%Y-%m-%d} to "
            f"{bad['date'].iloc[-1]:%Y-%m-%d}) are a median {int(np.median(step))} days apart; rule: one row per "
            "day. Weekly or monthly totals would be read as single days; export the account's daily data "
            "(TikTok Studio's FollowerHistory and Overview give one row per day)")
    dates = pd.date_range(bad["date"].min(), bad["date"].max(), freq="D")
    brand = bad.set_index("date").reindex(dates)
    if "new_followers" not in brand.columns:
        if {"followers", "lost_followers"} <= set(brand.columns):
            brand["new_followers"] = brand["followers"].diff() + brand["lost_followers"]
        else:
            raise ValueError("brand_account_daily needs new_followers (or followers and lost_followers)")
    warnings: list[str] = [NET_ONLY_WARNING] if net_only_followers(bad) else []
    wend = row["end_date"] + pd.Timedelta(days=tail_days)
    if row["start_date"] > dates[-1] or wend < dates[0]:
        raise WindowOutsideData(
            f"brand_account_daily: the brand account's data ({dates[0]:%Y-%m-%d} to {dates[-1]:%Y-%m-%d}) do not "
            f"overlap campaign {campaign_id!r} and its {tail_days}-day tail ({row['start_date']:%Y-%m-%d} to "
            f"{wend:%Y-%m-%d})")
    if row["start_date"] < dates[0]:
        warnings.append(f"the brand account's data begin on {dates[0]:%d %b %Y}, "
                        f"{(dates[0] - row['start_date']).days} days after the campaign's start "
                        f"({row['start_date']:%d %b %Y}): what the campaign brought before then is not counted")
    if wend > dates[-1]:
        warnings.append(f"the brand account's data end on {dates[-1]:%d %b %Y}, before the end of the campaign "
                        f"plus its {tail_days}-day tail ({wend:%d %b %Y}): the counts stop there and are partial")
    gaps = brand["new_followers"].isna().to_numpy()
    if gaps.any():
        inside = gaps & np.asarray((dates >= row["start_date"]) & (dates <= wend))
        first = ", ".join(f"{d:%Y-%m-%d}" for d in dates[gaps][:3]) + (", ..." if gaps.sum() > 3 else "")
        warnings.append(f"brand_account_daily has no new_followers on {int(gaps.sum())} day(s) of its calendar "
                        f"({first}): the model is fitted without them"
                        + (f"; the {int(inside.sum())} inside the campaign's window count at the model's own "
                           "estimate of the campaign's effect" if inside.any() else ""))
    n = int((brand["video_views"].isna().to_numpy() & ~gaps).sum()) if "video_views" in brand.columns else 0
    if n:
        warnings.append(f"brand_account_daily has no video_views on {n} day(s) that have new_followers: the "
                        "brand's own posting is taken at its mean on those days")
    if row["start_date"] < dates[0] + pd.Timedelta(days=MIN_PRE_DAYS):
        warnings.append(f"fewer than {MIN_PRE_DAYS} days of brand account history before the campaign: the baseline "
                        "rests mostly on the days after it")

    paid = read_table(data, "paid_media_daily", required=False)
    controls, names, w = baseline_controls(dates, brand, paid, trend_knot_days=trend_knot_days)
    warnings += w

    posts = read_table(data, "posts").copy()
    posts["post_id"] = posts["post_id"].astype(str)
    posts["creator_id"] = posts["creator_id"].astype(str)
    posts = posts[posts["campaign_id"].notna() & (posts["campaign_id"].astype(str) != "")]
    posts["campaign_id"] = posts["campaign_id"].astype(str)
    posts = posts[posts["campaign_id"].isin(campaigns["campaign_id"])].copy()
    tzs = posts["campaign_id"].map(campaigns.set_index("campaign_id")["timezone"]) \
        if "timezone" in campaigns.columns else tz
    posts["posted_date"] = _local_dates(posts, "posted_date", "posted_at", tzs)
    posts = posts.sort_values(["campaign_id", "creator_id", "posted_date", "post_id"]).reset_index(drop=True)
    if not (posts["campaign_id"] == campaign_id).any():
        raise ValueError(f"campaign {campaign_id!r} has no posts: there is no exposure to attribute")

    pdv = post_daily_views(data)
    pdv = pdv[pdv["post_id"].isin(posts["post_id"])]
    snap = _snapshot_spans(pdv, posts)  # once: for the warning, the view curve and the spread
    lumped = _lumped_share(snap[snap["post_id"].isin(posts.loc[posts["campaign_id"] == campaign_id, "post_id"])])
    curve = view_curve(snap)
    source = "posts" if len(curve) else ("supplied" if supplied is not None else "published")
    if source != "posts":
        curve = supplied if supplied is not None else published_view_curve()
    if lumped > LUMPED_VIEW_SHARE:
        none = f"the snapshots give no view curve (it needs {MIN_CURVE_POSTS} posts or more with two snapshots " \
               "at the same ages), so they are "
        how = {"posts": "they are spread over the days they cover along the posts' pooled view curve, so their "
                        "timing, and the carry-over fitted to it, is approximate",
               "supplied": f"{none}{SUPPLIED_CURVE_PHRASE}: their timing is assumed from that curve, not measured "
                           "here, and the attribution is only as good as the curve",
               "published": f"{none}{ASSUMED_CURVE_PHRASE} ({PUBLISHED_CURVE_TEXT}): their timing is assumed, "
                            "not measured, and the attribution is unreliable (export the post metrics at least "
                            "weekly)"}[source]
        warnings.append(f"{lumped:.0%} {LUMPED_PHRASE} {LUMPED_SPAN_DAYS} or more days (snapshots missing, or a "
                        f"post's first snapshot days after it went live): {how}")
    pdv = _spread(pdv, snap, curve)
    pdv = pdv[(pdv["date"] >= dates[0]) & (pdv["date"] <= dates[-1])]
    wide = pdv.pivot_table(index="date", columns="post_id", values="views", aggfunc="sum", fill_value=0.0)
    wide = wide.reindex(index=dates, columns=posts["post_id"], fill_value=0.0).fillna(0.0)
    post_views = wide.to_numpy(float) / VIEW_SCALE
    units = posts[["campaign_id", "creator_id"]].drop_duplicates().reset_index(drop=True)
    key = pd.MultiIndex.from_frame(posts[["campaign_id", "creator_id"]])
    ukey = pd.MultiIndex.from_frame(units)
    col_unit = ukey.get_indexer(key)
    views = np.zeros((len(dates), len(units)))
    np.add.at(views.T, col_unit, post_views.T)
    target = (posts["campaign_id"] == campaign_id).to_numpy()
    if post_views[:, target].sum() <= 0:
        raise ValueError(f"campaign {campaign_id!r} has no post views inside the brand account's dates "
                         f"({dates[0].date()} to {dates[-1].date()})")
    warnings += _outside_window_warnings(dates, post_views[:, target].sum(axis=1), posts[target],
                                         row["start_date"], row["end_date"], wend)
    creators = read_table(data, "creators", required=False)
    return Panel(campaign_id=campaign_id, campaigns=campaigns.set_index("campaign_id"), dates=dates,
                 brand=brand, controls=controls, control_names=names, units=units, views=views,
                 posts=posts, post_views=post_views, post_daily=pdv, creators=creators, timezone=tz,
                 warnings=warnings, view_curve=curve, view_curve_source=source)
