"""The metric registry: names, formulas, formatting and the generated docs."""

from __future__ import annotations

import dataclasses

import pytest

from analysis import metrics
from analysis.config import PROJ_ROOT
from analysis.metrics import REGISTRY, Metric, format_value, metric

CONTRACT_NAMES = ("views reach likes comments shares saves engagements engagement_rate engagement_rate_reach "
                  "engagement_rate_followers completion_rate avg_watch_time_s profile_views follows link_clicks "
                  "ctr sessions orders conversion_rate revenue aov new_customers follower_growth "
                  "follower_growth_pct cost cpm cpv cpe cpc cpa roas roi emv").split()


def test_registry_has_contract_names_and_extras():
    assert set(CONTRACT_NAMES) <= set(REGISTRY)
    for extra in ("engagement_rate_tiktok_one", "avg_share_watched", "profile_view_rate"):
        assert extra in REGISTRY


def test_metrics_are_frozen_and_validated():
    m = metric("cpm")
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.scale = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="unknown base quantity"):
        Metric("x", "X", ("nope",))
    with pytest.raises(ValueError, match="direction"):
        Metric("x", "X", ("views",), direction="up")
    with pytest.raises(ValueError, match="unknown metric 'nope'; known metrics: views"):
        metric("nope")


def test_formulas_and_directions():
    assert metric("engagement_rate").numerator == ("likes", "comments", "shares", "saves")
    assert metric("engagement_rate").denominator == ("views",)
    assert "saves" not in metric("engagement_rate_tiktok_one").numerator
    assert metric("cpm").scale == 1000 and metric("cpm").formula() == "1000 x cost / views"
    assert metric("roi").formula() == "(revenue - cost) / cost"
    assert metric("completion_rate").formula() == "completed_views / views_with_completion"
    assert metric("avg_watch_time_s").formula() == "watch_time_s / views_with_watch_time"
    assert metric("avg_share_watched").formula() == "watch_time_with_duration_s / duration_views_s"
    lower = {n for n, m in REGISTRY.items() if m.direction == "lower"}
    assert lower == {"cost", "cpm", "cpv", "cpe", "cpc", "cpa"}
    assert metric("views").additive and not metric("ctr").additive
    assert metric("orders").level == "creator" and metric("follower_growth_pct").level == "campaign"
    assert metric("ctr").level == "post"


def test_emv_defaults_and_override(tmp_path):
    v = metrics.emv_values()
    assert v["views"] * 1000 == pytest.approx(10.0) and v["likes"] == pytest.approx(0.15)
    assert metrics.emv_values({"views": 0.02})["views"] == 0.02
    f = tmp_path / "emv.yaml"
    f.write_text("values:\n  shares: 0.5\n")
    assert metrics.emv_values(f)["shares"] == 0.5 and metrics.emv_values(f)["likes"] == 0.15
    assert metric("emv").weights == "emv" and "ROI" in metric("emv").description


@pytest.mark.parametrize("name,value,text", [
    ("views", 1_234_567, "1.2M"), ("views", 950, "950"), ("likes", 12_300, "12.3k"),
    ("engagement_rate", 0.0345, "3.45%"), ("cpm", 12.5, "$12.50"), ("revenue", 1_250_000, "$1.2M"),
    ("roi", -0.25, "-25.0%"), ("roi", 1.7186, "172%"), ("completion_rate", 0.45123, "45.1%"),
    ("engagement_rate", 0.001, "0.10%"), ("revenue", 8015.98, "$8,016"), ("revenue", 999.5, "$999.50"),
    ("cost", -4859.01, "-$4,859"), ("roas", 2.1, "2.10x"), ("avg_watch_time_s", 7.26, "7.3 s"),
    ("cpa", float("nan"), "n/a"), ("cpa", None, "n/a"),
    ("cpv", 0.0032, "$0.0032"), ("cpv", 0.06, "$0.060"), ("cpv", 0.0, "$0.00"), ("cpe", -0.004, "-$0.0040"),
])
def test_format_value(name, value, text):
    assert format_value(name, value) == text


def test_format_currency_symbol():
    assert format_value("cost", 99, currency="EUR ") == "EUR 99.00"


def test_base_quantities():
    assert "views" in metrics.base_quantities("post")
    assert set(metrics.base_quantities("creator")) == {"cost", "orders", "revenue", "new_customers", "sessions"}
    assert all(q in metrics.base_quantities() for m in REGISTRY.values() for q in m.quantities)


def test_committed_docs_equal_rendered():
    committed = (PROJ_ROOT / "docs" / "metrics.md").read_text()
    assert committed == metrics.render_markdown(), "regenerate: python -m analysis.metrics docs/metrics.md"
    for name in REGISTRY:
        assert f"`{name}`" in committed


def test_rate_denominators_are_restricted_to_reported_rows():
    # a view-weighted rate's numerator and denominator need the same observed columns
    for name in ("completion_rate", "avg_watch_time_s", "avg_share_watched"):
        m = metric(name)
        (num,), (den,) = m.numerator, m.denominator
        need = [set(f) | set(o) for f, o in (metrics.DERIVED[num], metrics.DERIVED[den])]
        assert need[0] == need[1], name
    assert metrics.DERIVED["views_with_completion"] == (("views",), ("completion_rate",))
    assert set(metrics.DERIVED) <= set(metrics.BASE_QUANTITIES)


def test_docs_explain_intervals_and_observed_rows():
    text = metrics.render_markdown()
    assert "## Intervals" in text and "`views_with_completion`" in text
    for method in ("bootstrap", "bca", "delta", "delta_log"):
        assert f'`"{method}"`' in text
