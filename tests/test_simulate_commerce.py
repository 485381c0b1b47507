"""Tests of the commerce and voice components of the simulator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.config import ATTRIBUTION_TAIL_DAYS
from analysis.simulate import commerce, voice
from analysis.simulate.world import World

ORDER_COLS = ["order_id", "created_at", "customer_id", "revenue", "discount_code", "utm_source", "utm_campaign",
              "utm_content", "affiliate_id", "new_customer", "region"]
CONTRACT_COLUMNS = {
    "orders": ORDER_COLS,
    "web_sessions_daily": ["date", "utm_source", "utm_campaign", "utm_content", "sessions"],
    "geo_assignment": ["campaign_id", "region", "group"],
    "geo_sales_daily": ["region", "date", "revenue", "orders"],
    "brand_lift_survey": ["campaign_id", "respondent_id", "group", "question", "response"],
    "comments": ["comment_id", "post_id", "created_at", "text", "likes", "author_id"],
    "mentions": ["mention_id", "created_at", "source", "text"],
    "content_reviews": ["post_id", "reviewer", "criterion", "score"],
    "creator_feedback": ["campaign_id", "creator_id", "question", "score", "comment"],
}


def _fake_world(seed: int = 3, days: int = 240) -> World:
    """A small hand-built world: 4 campaigns, 6 creators each, one post per creator."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2025-01-06", periods=days, freq="D")
    world = World(seed=seed, dates=dates, timezone="America/New_York", currency="USD", brand="Glow",
                  brand_account="@glow", truth={"seed": seed, "campaigns": {}})
    starts = [70, 115, 160, 200]
    camps, contracts, posts, exposure = [], [], [], []
    designs = {}
    for c, s in enumerate(starts):
        cid = f"CMP{c + 1:02d}"
        start, end = dates[s], dates[min(s + 27, days - 1)]
        camps.append({"campaign_id": cid, "brand": "Glow", "name": f"Campaign {c + 1}", "objective": "conversions",
                      "start_date": start, "end_date": end, "budget": 20000.0, "currency": "USD",
                      "brand_account": "@glow", "timezone": "America/New_York"})
        designs[cid] = {"geo": c == 0, "survey": c in (0, 2), "staggered": c == 1}
        for k in range(6):
            crid = f"CR{c}{k}"
            contracts.append({"campaign_id": cid, "creator_id": crid, "fee": 1000.0, "product_cost": 50.0,
                              "deliverables": 1, "discount_code": f"GLOW{c}{k}" if k < 5 else "",
                              "utm_content": f"{cid.lower()}_{crid.lower()}",
                              "affiliate_id": f"AF{c}{k}" if k % 2 == 0 else "",
                              "usage_rights_start": start, "usage_rights_end": end,
                              "usage_channels": "tiktok", "spark_ads_authorized": False})
            post_day = s + int(rng.integers(0, 21))
            pid = f"P{c}{k}"
            posts.append({"post_id": pid, "creator_id": crid, "campaign_id": cid,
                          "posted_at": (dates[post_day] + pd.Timedelta(hours=18)).tz_localize("UTC")})
            v0 = rng.uniform(5e4, 4e5)
            for j in range(min(30, days - post_day)):
                views = int(v0 * 0.6**j)
                exposure.append({"post_id": pid, "creator_id": crid, "campaign_id": cid,
                                 "date": dates[post_day + j], "views": views,
                                 "link_clicks": int(views * 0.008)})
        # an organic post of the first creator
        posts.append({"post_id": f"O{c}", "creator_id": f"CR{c}0", "campaign_id": None,
                      "posted_at": (dates[s - 10] + pd.Timedelta(hours=15)).tz_localize("UTC")})
    world.tables["campaigns"] = pd.DataFrame(camps)
    world.tables["contracts"] = pd.DataFrame(contracts)
    posts = pd.DataFrame(posts)
    posts["campaign_id"] = posts["campaign_id"].astype("str")
    world.tables["posts"] = posts
    world.tables["creators"] = pd.DataFrame({"creator_id": [f"CR{c}{k}" for c in range(4) for k in range(6)],
                                             "handle": [f"@maker{c}{k}" for c in range(4) for k in range(6)]})
    world.exposure = pd.DataFrame(exposure)
    world.designs = designs
    return world


@pytest.fixture(scope="module")
def world() -> World:
    w = _fake_world()
    commerce.add_commerce(w)
    voice.add_voice(w)
    return w


@pytest.fixture(scope="module")
def orders_hidden() -> pd.DataFrame:
    return commerce.simulate_orders(_fake_world())


def test_tables_have_contract_columns(world):
    for name, cols in CONTRACT_COLUMNS.items():
        assert name in world.tables, name
        assert list(world.tables[name].columns[: len(cols)]) == cols, name
    orders = world.tables["orders"]
    assert isinstance(orders["created_at"].dtype, pd.DatetimeTZDtype)
    assert orders["order_id"].is_unique
    assert orders["new_customer"].dtype == bool
    assert set(orders["region"]) <= set(commerce.region_ids())
    assert 30 <= orders["revenue"].mean() <= 65
    # returning customers exist
    assert orders["customer_id"].duplicated().any()


def test_code_leakage_and_direct_differs_from_incremental(world, orders_hidden):
    hid = orders_hidden
    coded = hid["discount_code"].str.startswith("GLOW").fillna(False)
    leaked = coded & (hid["via"] == "baseline")
    assert leaked.sum() > 0
    assert hid.loc[leaked, "leaked"].all()
    caused = hid["via"] != "baseline"
    untracked = caused & hid["discount_code"].isna() & hid["utm_campaign"].isna() & hid["affiliate_id"].isna()
    assert untracked.sum() > 0
    # caused orders bring more new customers than baseline orders
    assert hid.loc[caused, "new_customer"].mean() > hid.loc[~caused, "new_customer"].mean() + 0.15
    for cid, t in world.truth["campaigns"].items():
        conv = t["conversions"]
        assert conv["incremental"]["orders"] > 0
        assert conv["direct"]["orders"] != conv["incremental"]["orders"]
        assert conv["leaked_orders"] <= conv["direct"]["orders"]
    assert sum(t["conversions"]["leaked_orders"] for t in world.truth["campaigns"].values()) > 0


def test_conversion_truth_recounts_from_orders(world, orders_hidden):
    camp = world.tables["campaigns"].set_index("campaign_id")
    k = world.tables["contracts"]
    orders = world.tables["orders"]
    local = orders["created_at"].dt.tz_convert(world.timezone).dt.tz_localize(None).dt.normalize()
    for cid, t in world.truth["campaigns"].items():
        lo = camp.at[cid, "start_date"]
        hi = camp.at[cid, "end_date"] + pd.Timedelta(days=ATTRIBUTION_TAIL_DAYS)
        codes = set(k.loc[(k.campaign_id == cid) & (k.discount_code != ""), "discount_code"])
        affs = set(k.loc[(k.campaign_id == cid) & (k.affiliate_id != ""), "affiliate_id"])
        tracked = (orders["discount_code"].isin(codes) | orders["utm_campaign"].eq(cid).fillna(False)
                   | orders["affiliate_id"].isin(affs))
        direct = tracked & local.between(lo, hi)
        assert int(direct.sum()) == t["conversions"]["direct"]["orders"]
        assert orders.loc[direct, "revenue"].sum() == pytest.approx(t["conversions"]["direct"]["revenue"])
        hid = orders_hidden
        caused = (hid["campaign_id"] == cid).fillna(False) & hid["date"].between(lo, hi)
        assert int(caused.sum()) == t["conversions"]["incremental"]["orders"]
        # per creator: the caused orders of each of the campaign's creators, adding up to the total
        by = t["conversions"]["by_creator"]
        assert by == hid.loc[caused, "creator_id"].astype(str).value_counts().to_dict()
        assert sum(by.values()) == t["conversions"]["incremental"]["orders"]
        assert set(by) <= set(k.loc[k.campaign_id == cid, "creator_id"].astype(str))


def test_web_sessions_include_campaign_clicks(world):
    ws = world.tables["web_sessions_daily"]
    assert {"organic", "google", "direct", "tiktok"} <= set(ws["utm_source"])
    tt = ws[ws["utm_source"] == "tiktok"]
    assert set(tt["utm_content"]) <= set(world.tables["contracts"]["utm_content"])
    clicks = world.exposure["link_clicks"].sum()
    assert 0.75 * clicks < tt["sessions"].sum() < 0.95 * clicks
    assert not ws.duplicated(["date", "utm_source", "utm_campaign", "utm_content"]).any()


def test_geo_truth_and_treated_sales_rise(world):
    lift = world.truth["campaigns"]["CMP01"]["lift"]
    geo = [e for e in lift if e["design"] == "geo"]
    assert len(geo) == 1
    g = geo[0]
    assert 0.04 <= g["relative_effect"] <= 0.12
    assert g["effect"] > 0
    sales = world.tables["geo_sales_daily"]
    assert len(sales) == 30 * len(world.dates)
    ga = world.tables["geo_assignment"]
    ga1 = ga[ga["campaign_id"] == "CMP01"]
    assert set(ga1.loc[ga1["group"] == "treatment", "region"]) == set(g["treated_regions"])
    assert 10 <= len(g["treated_regions"]) <= 15
    # treated share of sales is higher during the campaign than before it
    start, end = pd.Timestamp(g["window"]["start"]), pd.Timestamp(g["window"]["end"])
    sales = sales.assign(treated=sales["region"].isin(g["treated_regions"]))
    daily = sales.pivot_table(index="date", columns="treated", values="revenue", aggfunc="sum")
    ratio = daily[True] / daily[False]
    pre = ratio[(ratio.index < start) & (ratio.index >= start - pd.Timedelta(days=56))].mean()
    post = ratio[(ratio.index >= start) & (ratio.index <= end)].mean()
    assert post > pre * 1.02


def test_staggered_truth(world):
    lift = world.truth["campaigns"]["CMP02"]["lift"]
    st = [e for e in lift if e["design"] == "staggered"]
    assert len(st) == 1
    assert 0.04 <= st[0]["relative_effect"] <= 0.12
    ga = world.tables["geo_assignment"]
    ga2 = ga[ga["campaign_id"] == "CMP02"]
    treated = ga2[ga2["group"] == "treatment"]
    assert treated["start_date"].notna().all()
    assert ga2.loc[ga2["group"] == "control", "start_date"].isna().all()
    assert treated["start_date"].nunique() > 1                     # adoption is staggered
    assert set(treated["region"]) == set(st[0]["adoption"])
    # no geo design on campaigns without one
    assert not [e for e in world.truth["campaigns"]["CMP04"].get("lift", []) if e["design"] in ("geo", "staggered")]


def test_survey_truth_matches_huge_sample():
    rng = np.random.default_rng(11)
    a = commerce.stats.norm.ppf(0.2) * np.sqrt(1 + commerce.SURVEY_LOADING**2)
    d = commerce._shift_for(a, 0.26)
    n = 2_000_000
    u = rng.normal(size=n)
    w = rng.gamma(commerce.SURVEY_EXPOSURE_SHAPE, 1 / commerce.SURVEY_EXPOSURE_SHAPE, n)
    exposed = (a + commerce.SURVEY_LOADING * u + d * w + rng.normal(size=n)) > 0
    control = (a + commerce.SURVEY_LOADING * u + rng.normal(size=n)) > 0
    assert exposed.mean() - control.mean() == pytest.approx(0.06, abs=0.0015)
    assert commerce.survey_probability(a, d) - commerce.survey_probability(a, 0) == pytest.approx(0.06, abs=1e-8)


def test_survey_table_and_truth(world):
    s = world.tables["brand_lift_survey"]
    assert set(s["campaign_id"]) == {"CMP01", "CMP03"}
    assert set(s["question"]) == set(commerce.SURVEY_BASE_RATES)
    for cid in ("CMP01", "CMP03"):
        sub = s[s["campaign_id"] == cid]
        n = sub.groupby(["group", "question"])["respondent_id"].nunique()
        assert n.between(400, 1500).all()
        entries = [e for e in world.truth["campaigns"][cid]["lift"] if e["design"] == "survey"]
        assert len(entries) == 4
        assert sum(e["effect"] == 0 for e in entries) == 1
        assert all(0 <= e["effect"] <= 0.081 for e in entries)
        # answers are correlated within a respondent (latent propensity)
        wide = sub[sub["group"] == "control"].pivot(index="respondent_id", columns="question", values="response")
        assert wide.corr().where(~np.eye(4, dtype=bool)).stack().mean() > 0.1


def test_deterministic_per_seed():
    a, b, c = _fake_world(5), _fake_world(5), _fake_world(6)
    for w in (a, b, c):
        commerce.add_commerce(w)
        voice.add_voice(w)
    for name in CONTRACT_COLUMNS:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    assert a.truth == b.truth
    assert not a.tables["orders"]["revenue"].equals(c.tables["orders"]["revenue"])


# ------------------------------------------------------------------------------------------ voice

def test_comments_labels_languages_and_payloads(world):
    com = world.tables["comments"]
    assert com["comment_id"].is_unique
    assert set(com["post_id"]) <= set(world.tables["posts"]["post_id"])
    labels = {}
    for cid, t in world.truth["campaigns"].items():
        s = t["sentiment"]
        labels.update(s["labels"])
        assert s["n_comments"] == len(s["labels"])
        shares = [s[f"share_{k}"] for k in ("positive", "negative", "neutral", "spam")]
        assert sum(shares) == pytest.approx(1.0)
    assert set(labels.values()) == {"positive", "neutral", "negative", "spam"}
    assert set(labels) <= set(com["comment_id"])
    text = com["text"]
    assert text.str.contains("<script>alert(1)</script>", regex=False).any()
    assert text.str.contains("<img src=x onerror=alert(1)>", regex=False).any()
    hidden = voice.simulate_comments(_fake_world())
    assert hidden["comment_id"].tolist() == com["comment_id"].tolist()
    assert {"es", "pt", "fr", "de"} <= set(hidden["language"])
    assert (hidden["language"] != "en").mean() > 0.05
    on_campaigns = hidden.dropna(subset=["campaign_id"]).set_index("comment_id")["label"]
    assert on_campaigns.sort_index().equals(pd.Series(labels, dtype="str").sort_index().rename("label"))
    # campaigns differ in their true mix
    pos = [t["sentiment"]["share_positive"] for t in world.truth["campaigns"].values()]
    assert max(pos) - min(pos) > 0.03
    # created after the post
    posted = world.tables["posts"].set_index("post_id")["posted_at"]
    assert (com["created_at"] >= com["post_id"].map(posted)).all()


def test_sarcasm_is_negative(world):
    com = world.tables["comments"].set_index("comment_id")
    labels = {}
    for t in world.truth["campaigns"].values():
        labels.update(t["sentiment"]["labels"])
    lab = pd.Series(labels)
    sarcastic = com.loc[lab.index, "text"].str.contains("another ad", regex=False)
    assert sarcastic.any()
    assert (lab[sarcastic] == "negative").all()


def test_mentions_reviews_feedback(world):
    m = world.tables["mentions"]
    assert set(m["source"]) == {"dm", "mention", "review"}
    r = world.tables["content_reviews"]
    assert r["score"].between(1, 5).all()
    assert r["reviewer"].nunique() == 3
    assert set(r["criterion"]) == {"brand_fit", "hook", "clarity", "authenticity"}
    for cid, t in world.truth["campaigns"].items():
        assert 0 < t["review_icc"] < 1
        assert t["review_noise_sd"] > 0
    f = world.tables["creator_feedback"]
    assert f["score"].between(1, 5).all()
    assert set(zip(f["campaign_id"], f["creator_id"])) <= set(
        zip(world.tables["contracts"]["campaign_id"], world.tables["contracts"]["creator_id"]))


# ------------------------------------------------------------------------------ on the full simulator

@pytest.fixture(scope="module")
def generated():
    from analysis.simulate import generate

    return generate(seed=7, campaigns=4, days=240, show_progress=False)


def _icc_2_1(wide: np.ndarray) -> float:
    """Single-rater absolute-agreement ICC(2,1) (Shrout and Fleiss) of a targets x raters matrix."""
    n, k = wide.shape
    gm = wide.mean()
    rows, cols = wide.mean(axis=1), wide.mean(axis=0)
    msr = k * ((rows - gm) ** 2).sum() / (n - 1)
    msc = n * ((cols - gm) ** 2).sum() / (k - 1)
    mse = ((wide - rows[:, None] - cols[None, :] + gm) ** 2).sum() / ((n - 1) * (k - 1))
    return float((msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n))


def test_generate_has_commerce_and_voice_truth(generated):
    tables, truth = generated
    for name, cols in CONTRACT_COLUMNS.items():
        assert list(tables[name].columns[: len(cols)]) == cols, name
    campaigns = tables["campaigns"]["campaign_id"].tolist()
    assert sorted(truth["campaigns"]) == sorted(campaigns)
    designs_seen = set()
    for cid in campaigns:
        t = truth["campaigns"][cid]
        assert t["conversions"]["incremental"]["orders"] > 0
        assert t["conversions"]["direct"]["orders"] != t["conversions"]["incremental"]["orders"]
        assert t["sentiment"]["n_comments"] > 0
        for e in t.get("lift", []):
            designs_seen.add(e["design"])
            assert {"design", "metric", "effect", "relative_effect"} <= set(e)
            if e["design"] in ("geo", "staggered"):
                assert 0.04 <= e["relative_effect"] <= 0.12
    assert {"geo", "survey", "staggered"} <= designs_seen
    assert sum(truth["campaigns"][c]["conversions"]["leaked_orders"] for c in campaigns) > 0


def test_generate_staggered_adoption_is_first_post(generated):
    tables, truth = generated
    posts = tables["posts"].dropna(subset=["campaign_id"])
    camp_tz = tables["campaigns"].set_index("campaign_id")["timezone"]
    for cid, t in truth["campaigns"].items():
        for e in t.get("lift", []):
            if e["design"] != "staggered":
                continue
            sub = posts[posts["campaign_id"] == cid]
            local = sub["posted_at"].dt.tz_convert(camp_tz[cid]).dt.tz_localize(None).dt.normalize()
            first = local.groupby(sub["creator_id"]).min()
            by_region = pd.Series(e["creator_region"])
            expected = first.reindex(by_region.index).groupby(by_region.to_numpy()).min()
            ga = tables["geo_assignment"]
            got = ga[(ga["campaign_id"] == cid) & (ga["group"] == "treatment")].set_index("region")["start_date"]
            pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False,
                                           check_index_type=False, check_dtype=False)


def test_generate_review_icc_matches_scores(generated):
    tables, truth = generated
    r = tables["content_reviews"].merge(tables["posts"][["post_id", "campaign_id"]], on="post_id")
    diffs = []
    for cid, sub in r.groupby("campaign_id"):
        wide = sub.pivot_table(index=["post_id", "criterion"], columns="reviewer", values="score").to_numpy()
        diffs.append(_icc_2_1(wide.astype(float)) - truth["campaigns"][cid]["review_icc"])
    assert np.mean(np.abs(diffs)) < 0.1


def test_generate_deterministic(generated):
    from analysis.simulate import generate

    tables, truth = generate(seed=7, campaigns=4, days=240, show_progress=False)
    for name in CONTRACT_COLUMNS:
        pd.testing.assert_frame_equal(tables[name], generated[0][name])
    assert truth == generated[1]


def test_written_csv_keeps_untrusted_text(sim_raw, sim_truth):
    comments = pd.read_csv(sim_raw / "comments.csv", dtype=str)
    assert comments["text"].str.contains("<script>alert(1)</script>", regex=False).any()
    orders = pd.read_csv(sim_raw / "orders.csv", dtype=str)
    assert orders["created_at"].str.endswith("+00:00").all()
    for t in sim_truth["campaigns"].values():
        assert set(t["sentiment"]["labels"]) <= set(comments["comment_id"])


def test_buyers_of_a_geo_campaign_live_in_treated_regions(world, orders_hidden):
    """A geo campaign is seen only in its treatment regions: every order it causes, from a first-time or a
    returning customer, comes from there (what lets the holdout be read on the shop's orders)."""
    geo = next(e for e in world.truth["campaigns"]["CMP01"]["lift"] if e["design"] == "geo")
    hid = orders_hidden
    caused = hid[(hid["campaign_id"] == "CMP01").fillna(False)]
    assert caused["first_timer"].any() and (~caused["first_timer"]).any()
    assert caused["region"].isin(geo["treated_regions"]).all()
    # a returning buyer keeps one region across all their orders
    assert (hid.groupby("customer_id")["region"].nunique() == 1).all()
    baseline = hid[hid["via"] == "baseline"]
    assert not baseline["region"].isin(geo["treated_regions"]).all()
    # a staggered roll-out: each creator's buyers live in the region that creator ran in
    st = next(e for e in world.truth["campaigns"]["CMP02"]["lift"] if e["design"] == "staggered")
    c2 = hid[(hid["campaign_id"] == "CMP02").fillna(False)]
    assert len(c2) > 0
    assert (c2["region"] == c2["creator_id"].map(st["creator_region"])).all()
