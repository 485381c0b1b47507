"""Many-seed calibration of the simulator (``make validate``).

The fast suite checks the calibration targets on the default seed; this study repeats the key checks on
20 seeds so a target met by one lucky draw does not pass. Tolerances are those of ``tests/test_simulate.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.simulate.core import build_core, tier_of

pytestmark = pytest.mark.slow

SEEDS = range(100, 120)
#: Tier medians of engagement by followers must land in these bands (published medians: nano 7.8%,
#: micro ~5%, mid ~3%, macro ~2.3%).
BANDS = {"nano": (0.05, 0.12), "micro": (0.035, 0.07), "mid": (0.018, 0.045), "macro": (0.012, 0.035)}


def _summaries(seed: int) -> dict[str, float]:
    world = build_core(seed=seed, campaigns=10, days=365)
    pm = world.tables["post_metrics"]
    final = pm.groupby("post_id").last()
    cr = world.tables["creators"].set_index("creator_id")
    df = world.tables["posts"].set_index("post_id").join(final).join(cr, on="creator_id")
    df["tier"] = tier_of(df["followers"])
    genuine = df[~df["creator_id"].isin(world.truth["creators"]["inflated_creator_ids"])]
    erf = (genuine["likes"] + genuine["comments"] + genuine["shares"]) / genuine["followers"]
    out = {f"erf_{k}": float(v) for k, v in erf.groupby(genuine["tier"]).median().items()}
    er_views = df[["likes", "comments", "shares", "saves"]].sum(axis=1) / df["views"]
    out["er_views"] = float(er_views.median())
    for s in (7, 30, 60):
        near = df[(df["duration_s"] - s).abs() <= max(1, 0.1 * s)]
        out[f"completion_{s}"] = float(near["completion_rate"].median())
    b = world.tables["brand_account_daily"]
    out["monthly_growth"] = float((b["followers"].iloc[-1] / b["followers"].iloc[0]) ** (30 / len(b)) - 1)
    out["tail"] = float(df["views"].quantile(0.99) / df["views"].median())
    return out


@pytest.fixture(scope="module")
def study():
    return [_summaries(s) for s in SEEDS]


def test_tier_medians_across_seeds(study):
    for tier, (lo, hi) in BANDS.items():
        vals = np.array([s[f"erf_{tier}"] for s in study if f"erf_{tier}" in s])
        assert len(vals) >= 15
        assert np.mean((vals >= lo) & (vals <= hi)) >= 0.9, (tier, vals.round(4))


def test_by_view_engagement_and_completion_across_seeds(study):
    assert all(0.03 <= s["er_views"] <= 0.06 for s in study)
    for sec, published in ((7, 0.894), (30, 0.548), (60, 0.382)):
        vals = np.array([s[f"completion_{sec}"] for s in study])
        assert np.all(np.abs(vals - published) <= 0.05), (sec, vals.round(3))


def test_growth_and_heavy_tail_across_seeds(study):
    growth = np.array([s["monthly_growth"] for s in study])
    # Published: 2-3% a month for brand accounts (over 5% under 50k followers); a viral campaign can push
    # one simulated year above 5%.
    assert 0.02 <= np.median(growth) <= 0.04, growth.round(4)
    assert np.mean((growth >= 0.01) & (growth <= 0.05)) >= 0.85, growth.round(4)
    assert all(s["tail"] > 20 for s in study)
