"""Persistence of engagement with the brand's own videos after a campaign (pinned seeds)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.attribution import own_content_persistence
from analysis.simulate import generate

SEED = 1


@pytest.fixture(scope="module")
def world():
    return generate(seed=SEED, campaigns=3, days=365, show_progress=False)


def _uplift(tables: dict, campaign_id: str, factor: float, days: int = 30) -> dict:
    b = tables["brand_account_daily"].copy()
    end = pd.Timestamp(tables["campaigns"].set_index("campaign_id").loc[campaign_id, "end_date"])
    d = pd.to_datetime(b["date"])
    m = (d > end) & (d <= end + pd.Timedelta(days=days))
    b.loc[m, "video_views"] = np.round(b.loc[m, "video_views"].astype(float) * factor).astype("int64")
    return {**tables, "brand_account_daily": b}


def test_no_lasting_effect_is_covered(world):
    # the simulator's own videos do not respond to campaigns: every interval should cover 1
    tables, truth = world
    for cid in truth["campaigns"]:
        r = own_content_persistence(tables, cid)
        assert r.ci_low <= 1.0 <= r.ci_high, (cid, r.ci_low, r.ci_high)
        assert r.calibration >= 1.0 and r.placebos >= 5
        assert r.ci_low < r.ratio < r.ci_high


def test_planted_uplift_moves_the_ratio_by_its_size(world):
    tables, truth = world
    cid = sorted(truth["campaigns"])[-1]
    base = own_content_persistence(tables, cid)
    up = own_content_persistence(_uplift(tables, cid, 1.3), cid)
    assert up.ratio / base.ratio == pytest.approx(1.3, rel=0.04)
    big = own_content_persistence(_uplift(tables, cid, 3.0), cid)
    assert big.ci_low > 1.0  # a tripling is detected


def test_daily_frame_and_counterfactual_agree_with_the_ratio(world):
    tables, truth = world
    cid = sorted(truth["campaigns"])[0]
    r = own_content_persistence(tables, cid)
    after = r.daily[r.daily["period"] == "after"]
    assert len(after) == 30
    # Poisson score equation of the after-indicator: observed = fitted over those days
    assert after["observed"].sum() == pytest.approx(r.ratio * after["counterfactual"].sum(), rel=0.02)
    assert r.incremental_views == pytest.approx(after["observed"].sum() - after["counterfactual"].sum())


def test_outputs_are_tidy_and_serialisable(world):
    tables, truth = world
    r = own_content_persistence(tables, sorted(truth["campaigns"])[0])
    s = r.summary()
    assert list(s["ratio"]) == [r.ratio] and {"ci_low", "ci_high", "p_value", "days_after_end"} <= set(s.columns)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["ratio"] == pytest.approx(r.ratio) and d["placebos"] == r.placebos
    assert "CI" in r.reading() and f"{r.days} days" in r.reading()
    import matplotlib

    matplotlib.use("Agg")
    ax = r.plot()
    assert ax.get_ylabel() == "own video views per day"


def test_missing_video_views_is_a_clear_error(world):
    tables, truth = world
    t = {**tables, "brand_account_daily": tables["brand_account_daily"].drop(columns=["video_views"])}
    with pytest.raises(ValueError, match="video_views"):
        own_content_persistence(t, sorted(truth["campaigns"])[0])
    with pytest.raises(ValueError, match="positive"):
        own_content_persistence(tables, sorted(truth["campaigns"])[0], days=0)


@pytest.mark.parametrize(("ratio", "lo", "hi", "words"), [
    (0.51, 0.03, 8.89, "drew 49% fewer views per day than the counterfactual (95% CI -97% to +789%): no lasting"),
    (1.30, 1.10, 1.55, "drew 30% more views per day than the counterfactual (95% CI +10% to +55%): the campaign left"),
    (0.80, 0.70, 0.90, "drew 20% fewer views per day than the counterfactual (95% CI -30% to -10%): the brand's"),
])
def test_reading_says_more_or_fewer_in_words(ratio, lo, hi, words):
    """'drew 49% fewer views', not 'drew -49% views'."""
    from analysis.attribution.persistence import PersistenceResult

    r = PersistenceResult(campaign_id="C1", days=30, ratio=ratio, ci_low=lo, ci_high=hi, p_value=0.5,
                          observed_mean=1.0, counterfactual_mean=1.0, incremental_views=0.0)
    assert words in r.reading()
