"""Context for KPIs: published benchmarks and the brand's own history.

``resources/benchmarks.csv`` holds published TikTok benchmarks with their sources
(see the table's ``source`` and ``note`` columns). Each row says its ``base`` (followers or
views) and the registry metric whose definition it matches; a value is only ever compared with a
benchmark of the same metric, so follower and view bases are never mixed.

:func:`tier_percentiles` places each creator of a campaign

- against the published distribution for its follower band (engagement by followers,
  likes + comments + shares, the benchmark's own definition): the percentile assumes a
  log-normal distribution through the published quartiles,
  ``sigma = (ln p75 - ln p25) / (2 z_0.75)``;
- against the brand's own history: other creators of the same tier in the data (every campaign),
  empirical mid-rank percentile of engagement rate by views and of completion rate;
- against its own organic posts: the share of its organic posts (final snapshots) with a lower
  engagement rate / completion rate (mid-rank).

Tiers follow :data:`analysis.config.TIERS` (one convention among several); the published bands
are matched by follower count, not by tier name.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.config import RESOURCES_DIR, TIERS
from analysis.conversions import campaign_windows, read_table
from analysis.kpis import compute_metrics, compute_post_level, kpi_table

BENCHMARKS_FILE = RESOURCES_DIR / "benchmarks.csv"


def benchmark_table(metric: str | None = None, *, base: str | None = None) -> pd.DataFrame:
    """The shipped benchmark table, optionally filtered by registry metric and base."""
    t = pd.read_csv(BENCHMARKS_FILE)
    if metric is not None:
        t = t[t["metric"] == metric]
    if base is not None:
        if base not in ("followers", "views"):
            raise ValueError("base must be 'followers' or 'views'")
        t = t[t["base"] == base]
    return t.reset_index(drop=True)


def tier_of(followers: float, tiers: tuple[tuple[str, int, float], ...] = TIERS) -> str | None:
    """Tier name for a follower count (None when unknown)."""
    if followers is None or np.isnan(followers):
        return None
    for name, lo, hi in tiers:
        if lo <= followers < hi:
            return name
    return None


def published_percentile(value: float, followers: float,
                         metric: str = "engagement_rate_followers_lcs") -> tuple[float, pd.Series | None]:
    """Percentile (0-100) of ``value`` in the published distribution for ``followers``.

    Uses the first benchmark row of ``metric`` whose follower band holds ``followers`` and that
    publishes quartiles, through a log-normal fitted to them. Returns ``(nan, None)`` when no row
    applies or the value is not positive.
    """
    t = benchmark_table(metric).dropna(subset=["p25", "median", "p75"])
    hi = t["followers_max"].fillna(np.inf)
    row = t[(t["followers_min"].fillna(0) <= followers) & (followers < hi)]
    if row.empty or not (value > 0):
        return float("nan"), (row.iloc[0] if not row.empty else None)
    r = row.iloc[0]
    sigma = (np.log(r["p75"]) - np.log(r["p25"])) / (2 * stats.norm.ppf(0.75))
    z = (np.log(value) - np.log(r["median"])) / sigma
    return float(100 * stats.norm.cdf(z)), r


def _mid_rank(sample: np.ndarray, value: float) -> float:
    sample = sample[np.isfinite(sample)]
    if len(sample) == 0 or not np.isfinite(value):
        return float("nan")
    return float(stats.percentileofscore(sample, value, kind="mean"))


def tier_percentiles(data: Any, campaign_id: str | None = None, *, window: str = "campaign") -> pd.DataFrame:
    """Each campaign creator's engagement and completion as percentiles.

    Parameters
    ----------
    data : path or Dataset
        Processed data.
    campaign_id : str, optional
        Creators of one campaign (all campaigns by default).
    window : {"campaign", "post_campaign"}
        KPI window.

    Returns
    -------
    pandas.DataFrame
        ``campaign_id, creator_id, followers, tier``, the creator's
        ``engagement_rate_followers_lcs``, ``engagement_rate``, ``completion_rate``;
        ``pct_published_er_followers`` with ``benchmark_median`` and ``benchmark_source``;
        ``pct_tier_er``, ``pct_tier_completion`` (against same-tier creators in the data; ``n_tier``
        of them); ``pct_organic_er``, ``pct_organic_completion`` (against the creator's organic
        posts; ``n_organic`` of them). Percentiles are 0-100, NaN where undefined.
    """
    if campaign_id is not None:
        campaign_windows(read_table(data, "campaigns"), campaign_id)  # ValueError naming the known ids
    history = kpi_table(data, level="creator", window=window)
    creators = read_table(data, "creators")
    fol = creators.set_index("creator_id")["followers"].astype(float)
    tier = (creators.set_index("creator_id")["tier"] if "tier" in creators
            else fol.map(tier_of))
    history = history.assign(followers=history["creator_id"].map(fol), tier=history["creator_id"].map(tier))
    rows = history if campaign_id is None else history[history["campaign_id"] == campaign_id]
    if campaign_id is not None and rows.empty:
        raise ValueError(f"no creators found for campaign {campaign_id!r}")

    # organic posts: final snapshot of every post without a campaign
    posts = read_table(data, "posts")
    organic = posts[posts["campaign_id"].isna() | (posts["campaign_id"].astype("string") == "")]
    org = pd.DataFrame(columns=["creator_id", "engagement_rate", "completion_rate"])
    if not organic.empty:
        win = organic[["post_id", "creator_id"]].assign(window_end=pd.Timestamp("2262-01-01").as_unit("ms"))
        pl = compute_post_level(read_table(data, "post_metrics"), win)
        org = compute_metrics(pl, metrics=["engagement_rate", "completion_rate"])

    out = []
    for r in rows.itertuples(index=False):
        pct, bench = published_percentile(r.engagement_rate_followers_lcs, r.followers)
        peers = history[(history["tier"] == r.tier) & ~((history["campaign_id"] == r.campaign_id)
                                                        & (history["creator_id"] == r.creator_id))]
        own = org[org["creator_id"] == r.creator_id]
        out.append({
            "campaign_id": r.campaign_id, "creator_id": r.creator_id, "followers": r.followers, "tier": r.tier,
            "engagement_rate_followers_lcs": r.engagement_rate_followers_lcs,
            "engagement_rate": r.engagement_rate, "completion_rate": r.completion_rate,
            "pct_published_er_followers": pct,
            "benchmark_median": float(bench["median"]) if bench is not None else np.nan,
            "benchmark_source": bench["source"] if bench is not None else None,
            "pct_tier_er": _mid_rank(peers["engagement_rate"].to_numpy(float), r.engagement_rate),
            "pct_tier_completion": _mid_rank(peers["completion_rate"].to_numpy(float), r.completion_rate),
            "n_tier": int(len(peers)),
            "pct_organic_er": _mid_rank(own["engagement_rate"].to_numpy(float), r.engagement_rate),
            "pct_organic_completion": _mid_rank(own["completion_rate"].to_numpy(float), r.completion_rate),
            "n_organic": int(len(own)),
        })
    return pd.DataFrame(out)
