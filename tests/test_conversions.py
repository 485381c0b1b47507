"""Direct conversion attribution: matching, window, de-duplication, sessions, summaries."""

from __future__ import annotations

import json

import pytest

from analysis import conversions
from test_kpis import make_processed


@pytest.fixture
def processed(tmp_path):
    return make_processed(tmp_path / "processed")


def test_direct_orders_matching_and_dedup(processed):
    o = conversions.direct_orders(processed, "C1").set_index("order_id")
    assert sorted(o.index) == ["o-1", "o-2", "o-3"]
    assert o.loc["o-1", "channel"] == "discount_code" and o.loc["o-1", "creator_id"] == "A"  # " anna10" normalised
    # o-2 carries A's affiliate id and B's discount code: affiliate wins, credited once
    assert o.loc["o-2", "channel"] == "affiliate" and o.loc["o-2", "creator_id"] == "A"
    assert o.loc["o-3", "channel"] == "utm" and o.loc["o-3", "creator_id"] == "B"
    assert set(conversions.ORDER_COLUMNS) <= set(o.reset_index().columns)


def test_attribution_tail(processed):
    assert "o-4" not in set(conversions.direct_orders(processed, "C1")["order_id"])
    # o-4 (2024-05-01) is 52 days after C1's end: inside a 60-day tail
    assert "o-4" in set(conversions.direct_orders(processed, "C1", tail_days=60)["order_id"])
    # o-3 (10 days after the end) drops with no tail
    assert "o-3" not in set(conversions.direct_orders(processed, "C1", tail_days=0)["order_id"])
    post = conversions.direct_orders(processed, "C1", window="post_campaign")
    assert set(post["order_id"]) == {"o-3", "o-4"}


def test_all_campaigns_each_order_once(processed):
    o = conversions.direct_orders(processed)
    assert o["order_id"].is_unique
    assert set(o["order_id"]) == {"o-1", "o-2", "o-3", "o-6"}
    assert o.set_index("order_id").loc["o-6", "campaign_id"] == "C2"


def test_direct_sessions(processed):
    s = conversions.direct_sessions(processed, "C1").set_index("creator_id")["sessions"]
    assert s.to_dict() == {"A": 100.0, "B": 40.0}


def test_direct_summary(processed):
    s = conversions.direct_summary(processed, "C1")
    assert s.orders == 3 and s.revenue == pytest.approx(160.0) and s.new_customers == 2
    by = s.by_channel.set_index("channel")
    assert by.loc["affiliate", "orders"] == 1 and by.loc["utm", "revenue"] == pytest.approx(30.0)
    cr = s.by_creator.set_index("creator_id")
    assert cr.loc["A", "orders"] == 2 and cr.loc["A", "revenue"] == pytest.approx(130.0)
    assert cr.loc["B", "revenue_utm"] == pytest.approx(30.0)
    assert s.summary().iloc[-1]["orders"] == 3
    d = json.loads(json.dumps(s.to_dict()))
    assert d["orders"] == 3 and d["revenue"] == 160.0
    ax = s.plot()
    assert len(ax.patches) > 0
    # largest revenue first; ids shown through the labels given (unknown ids as they are)
    named = s.plot(labels={"A": "@alpha"})
    ticks = [t.get_text() for t in named.get_xticklabels()]
    assert ticks[0] == "@alpha" and "B" in ticks


def test_missing_orders_table(tmp_path):
    root = make_processed(tmp_path / "p", optional=False)
    o = conversions.direct_orders(root, "C1")
    assert o.empty and "no orders table" in o.attrs["notes"][0]
    assert conversions.direct_sessions(root, "C1") is None
    assert conversions.direct_summary(root, "C1").orders == 0


def test_errors(processed, tmp_path):
    with pytest.raises(ValueError, match="unknown campaign 'Z'"):
        conversions.direct_orders(processed, "Z")
    with pytest.raises(ValueError, match="does not exist"):
        conversions.direct_orders(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="window must be"):
        conversions.direct_orders(processed, "C1", window="forever")
