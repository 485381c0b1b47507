"""Scorecards: direction-aware attainment, pacing and statuses."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis.scorecard import objectives, scorecard

KPIS = {"campaign_id": "C1", "views": 1_200_000, "reach": 900_000, "cpm": 8.0, "engagement_rate": 0.03,
        "completion_rate": 0.4, "orders": 50, "cpa": 40.0}
TARGETS = pd.DataFrame({"campaign_id": ["C1", "C1", "C1", "C1", "C2"],
                        "kpi": ["views", "cpm", "reach", "cpa", "views"],
                        "target": [1_000_000, 10.0, 1_000_000, 30.0, 5.0]})


def test_objectives_shipped_and_validated():
    o = objectives()
    assert set(o) == {"awareness", "launch", "traffic", "engagement", "conversions"}
    assert "views" in o["awareness"]["primary"] and "cpa" in o["conversions"]["primary"]
    with pytest.raises(ValueError, match="unknown metric 'likez'"):
        objectives({"x": {"primary": ["likez"]}})


def test_finished_campaign_statuses():
    sc = scorecard(KPIS, TARGETS, "awareness")
    v = sc.line("views")
    assert v.attainment == pytest.approx(1.2) and v.status == "met" and v.role == "primary"
    assert v.text == "Views: 1.2M against a target of 1.0M (120%): met."
    c = sc.line("cpm")  # lower is better: target / value
    assert c.attainment == pytest.approx(10 / 8) and c.status == "met"
    assert sc.line("reach").status == "missed" and sc.line("reach").attainment == pytest.approx(0.9)
    assert sc.line("cpa").role == "targeted" and sc.line("cpa").status == "missed"  # 30/40
    assert sc.line("completion_rate").status is None and "no target" in sc.line("completion_rate").text


def test_pacing_while_running():
    # 40% of the window elapsed, 500k views against 1M: paced attainment 125%
    sc = scorecard({**KPIS, "views": 500_000, "reach": 300_000, "cpm": 12.0}, TARGETS, "awareness",
                   elapsed_share=0.4)
    assert sc.line("views").paced_attainment == pytest.approx(1.25) and sc.line("views").status == "on track"
    assert sc.line("reach").status == "at risk"  # 0.3/0.4 = 75%
    assert sc.line("cpm").paced_attainment == pytest.approx(10 / 12) and sc.line("cpm").status == "at risk"
    assert sc.line("views").text == ("Views so far: 500.0k against a target of 1.0M (50% of it, 125% of the "
                                     "pro-rata target): on track."), sc.line("views").text


def test_undefined_values_and_mapping_targets():
    sc = scorecard({"views": 10.0, "cpa": float("nan")}, {"cpa": 20.0}, "conversions")
    assert sc.line("cpa").status == "undefined" and "undefined" in sc.line("cpa").text
    assert sc.line("orders").value is None


def test_outputs_and_errors():
    sc = scorecard(pd.DataFrame([KPIS]), TARGETS, "awareness")
    df = sc.summary()
    assert list(df["metric"][:3]) == ["views", "reach", "cpm"]
    json.dumps(sc.to_dict())
    ax = sc.plot()
    assert len(ax.patches) == 4
    with pytest.raises(ValueError, match="unknown objective"):
        scorecard(KPIS, TARGETS, "fame")
    with pytest.raises(ValueError, match="elapsed_share"):
        scorecard(KPIS, TARGETS, "awareness", elapsed_share=0)
