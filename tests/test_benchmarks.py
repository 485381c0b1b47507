"""Benchmarks: the shipped table and percentiles against tier, history and organic posts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis import benchmarks
from test_kpis import make_processed


def test_table_has_sources_and_single_base():
    t = benchmarks.benchmark_table()
    assert t["source"].notna().all() and set(t["base"]) <= {"followers", "views"}
    # one metric, one base: follower and view bases are never mixed
    assert (t.groupby("metric")["base"].nunique() == 1).all()
    nano = benchmarks.benchmark_table("engagement_rate_followers_lcs", base="followers").iloc[0]
    assert nano["median"] == pytest.approx(0.0784)


def test_published_percentile_lognormal():
    # at the published median: 50th percentile; at p75: 75th, by construction
    assert benchmarks.published_percentile(0.0784, 5000)[0] == pytest.approx(50.0)
    # the log-normal goes through the median exactly and matches the inter-quartile spread, so the
    # published (slightly skewed) quartiles land near, not exactly on, the 25th and 75th percentiles
    sig = (np.log(0.1231) - np.log(0.0492)) / (2 * stats.norm.ppf(0.75))
    p75 = benchmarks.published_percentile(0.1231, 5000)[0]
    assert p75 == pytest.approx(100 * stats.norm.cdf(np.log(0.1231 / 0.0784) / sig)) and 70 < p75 < 80
    p25 = benchmarks.published_percentile(0.0171, 200_000)[0]
    assert 20 < p25 < 30
    pct, row = benchmarks.published_percentile(0.02, 2_000_000)
    sigma = (np.log(0.0289) - np.log(0.0112)) / (2 * stats.norm.ppf(0.75))
    assert pct == pytest.approx(100 * stats.norm.cdf(np.log(0.02 / 0.0184) / sigma))
    assert row["tier"] == "500k+"
    assert np.isnan(benchmarks.published_percentile(0.0, 5000)[0])


def test_tier_of():
    assert benchmarks.tier_of(9_999) == "nano" and benchmarks.tier_of(10_000) == "micro"
    assert benchmarks.tier_of(2e6) == "mega" and benchmarks.tier_of(float("nan")) is None


def test_tier_percentiles(tmp_path):
    root = make_processed(tmp_path / "p")
    t = benchmarks.tier_percentiles(root, "C1").set_index("creator_id")
    a = t.loc["A"]
    # A in C1: (70+7+4) / (2 posts x 5000 followers)
    assert a["engagement_rate_followers_lcs"] == pytest.approx(81 / 10000)
    assert a["pct_published_er_followers"] == pytest.approx(benchmarks.published_percentile(81 / 10000, 5000)[0])
    assert a["benchmark_source"].startswith("SociaVault")
    # own organic posts o1 (12/200 = 6%), o2 (39/300 = 13%); A's C1 rate (81+3)/1500 = 5.6%: below both
    assert a["engagement_rate"] == pytest.approx(84 / 1500)
    assert a["n_organic"] == 2 and a["pct_organic_er"] == pytest.approx(0.0)
    # completion (0.3*1000 + 0.5*500)/1500 = 0.367: between o2 (0.4)... and below o1 (0.5) -> 0%
    assert a["pct_organic_completion"] == pytest.approx(0.0)
    # same-tier history: A's other campaign (C2: 50/400 = 12.5%) is higher -> 0th percentile
    assert a["n_tier"] == 1 and a["pct_tier_er"] == pytest.approx(0.0)
    b = t.loc["B"]
    assert b["n_tier"] == 0 and np.isnan(b["pct_tier_er"])
    # B: organic o3 65/5000 = 1.3% < B's 270/10000 = 2.7%
    assert b["pct_organic_er"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="unknown campaign"):
        benchmarks.tier_percentiles(root, "nope")
