"""Tests of the simulator's core: determinism, the contract's tables, truth and calibration.

Calibration targets come from docs/simulator.md (published figures: engagement by
followers per tier, completion by video length, brand follower growth).
"""

from __future__ import annotations

import filecmp
import json

import numpy as np
import pandas as pd
import pytest

from analysis.config import ATTRIBUTION_TAIL_DAYS, DEFAULT_SEED
from analysis.simulate import generate, simulate
from analysis.simulate.core import OBJECTIVE_KPIS, build_core, tier_of

CONTRACT_COLUMNS = {
    "campaigns": ["campaign_id", "brand", "name", "objective", "start_date", "end_date", "budget", "currency",
                  "brand_account", "timezone"],
    "campaign_targets": ["campaign_id", "kpi", "target"],
    "creators": ["creator_id", "handle", "followers", "niche", "country"],
    "creator_audience": ["creator_id", "dimension", "bucket", "share"],
    "contracts": ["campaign_id", "creator_id", "fee", "product_cost", "deliverables", "discount_code",
                  "utm_content", "affiliate_id", "usage_rights_start", "usage_rights_end", "usage_channels",
                  "spark_ads_authorized"],
    "posts": ["post_id", "creator_id", "campaign_id", "posted_at", "caption", "duration_s", "disclosure_label",
              "sound_id", "sound_licensed"],
    "post_metrics": ["post_id", "date", "views", "reach", "likes", "comments", "shares", "saves",
                     "avg_watch_time_s", "completion_rate", "profile_views", "follows", "link_clicks",
                     "paid_views"],
    "brand_account_daily": ["brand_account", "date", "followers", "new_followers", "lost_followers",
                            "profile_views", "video_views"],
    "paid_media_daily": ["date", "channel", "spend", "impressions"],
    "web_sessions_daily": ["date", "utm_source", "utm_campaign", "utm_content", "sessions"],
    "orders": ["order_id", "created_at", "customer_id", "revenue", "discount_code", "utm_source", "utm_campaign",
               "utm_content", "affiliate_id", "new_customer", "region"],
    "comments": ["comment_id", "post_id", "created_at", "text", "likes", "author_id"],
    "mentions": ["mention_id", "created_at", "source", "text"],
    "geo_assignment": ["campaign_id", "region", "group"],
    "geo_sales_daily": ["region", "date", "revenue", "orders"],
    "brand_lift_survey": ["campaign_id", "respondent_id", "group", "question", "response"],
    "content_reviews": ["post_id", "reviewer", "criterion", "score"],
    "creator_feedback": ["campaign_id", "creator_id", "question", "score", "comment"],
}


@pytest.fixture(scope="module")
def world():
    """The core of the default data set (10 campaigns, 365 days, default seed)."""
    return build_core(seed=DEFAULT_SEED, campaigns=10, days=365)


@pytest.fixture(scope="module")
def final_posts(world):
    """One row per post: its final reported snapshot joined with the creator."""
    pm = world.tables["post_metrics"]
    final = pm.groupby("post_id").last()
    cr = world.tables["creators"].set_index("creator_id")
    df = world.tables["posts"].set_index("post_id").join(final).join(cr, on="creator_id")
    df["tier"] = tier_of(df["followers"])
    return df


def _read(raw, name, **kw) -> pd.DataFrame:
    return pd.read_csv(raw / f"{name}.csv", dtype=str, keep_default_na=False, **kw)


# --- determinism and files -----------------------------------------------------------------

def test_same_seed_gives_byte_identical_files(sim_raw, tmp_path):
    simulate(tmp_path / "again", seed=7, campaigns=4, days=240, show_progress=False)
    names = sorted(p.name for p in sim_raw.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "again").iterdir())
    match, mismatch, errors = filecmp.cmpfiles(sim_raw, tmp_path / "again", names, shallow=False)
    assert mismatch == [] and errors == []


def test_other_seed_gives_other_data(sim_raw):
    tables, truth = generate(seed=8, campaigns=4, days=240, show_progress=False)
    assert truth["seed"] == 8
    assert tables["posts"]["caption"].tolist() != _read(sim_raw, "posts")["caption"].tolist()


def test_write_is_atomic_and_leaves_no_temporary_directory(sim_raw):
    leftovers = [p for p in sim_raw.parent.iterdir() if p.name.startswith(f".{sim_raw.name}.")]
    assert leftovers == []


def test_every_canonical_table_has_the_contract_columns(sim_raw):
    for name, cols in CONTRACT_COLUMNS.items():
        path = sim_raw / f"{name}.csv"
        assert path.exists(), name
        header = path.read_text(encoding="utf-8").split("\n", 1)[0].split(",")
        assert [c for c in header if c in cols] == cols, name  # extra columns are allowed
        assert len(_read(sim_raw, name)) > 0, name


def test_csv_formats(sim_raw):
    posts = _read(sim_raw, "posts")
    assert posts["posted_at"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00").all()
    assert set(posts["sound_licensed"]) == {"true", "false"}
    assert set(posts["disclosure_label"]) <= {"none", "paid_partnership", "promotional"}
    assert (posts.loc[posts["campaign_id"] == "", "disclosure_label"] == "none").all()
    assert posts["post_id"].is_unique
    pm = _read(sim_raw, "post_metrics")
    assert pm["date"].str.fullmatch(r"\d{4}-\d\d-\d\d").all()
    assert not pm.duplicated(["post_id", "date"]).any()
    con = _read(sim_raw, "contracts")
    assert set(con["spark_ads_authorized"]) <= {"true", "false"}
    for col in ("discount_code", "utm_content", "affiliate_id"):
        assert con[col].is_unique, col


def test_invalid_sizes_raise_plain_errors(tmp_path):
    with pytest.raises(ValueError, match="days must be at least"):
        simulate(tmp_path, days=30)
    with pytest.raises(ValueError, match="campaigns must be at least 1"):
        simulate(tmp_path, campaigns=0)


def test_cli_reports_a_bad_size_without_traceback(tmp_path, capsys):
    from analysis.cli import main

    assert main(["simulate", "--out", str(tmp_path / "x"), "--days", "20"]) == 2
    assert "days must be at least" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# --- truth and designs --------------------------------------------------------------------

def test_truth_structure_matches_the_tables(sim_raw, sim_truth):
    campaigns = _read(sim_raw, "campaigns")
    contracts = _read(sim_raw, "contracts")
    posts = _read(sim_raw, "posts")
    assert sim_truth["seed"] == 7
    assert sorted(sim_truth["campaigns"]) == sorted(campaigns["campaign_id"])
    for cid, t in sim_truth["campaigns"].items():
        row = campaigns.set_index("campaign_id").loc[cid]
        assert t["window"] == {"start": row["start_date"], "end": row["end_date"]}
        members = set(contracts.loc[contracts["campaign_id"] == cid, "creator_id"])
        f = t["followers"]
        assert set(f["by_creator"]) == members
        assert sum(f["by_creator"].values()) == f["incremental"] > 0
        assert 0 <= f["lost_within_60d"] < f["incremental"]
        assert set(t["compliance"]) == {"noncompliant_post_ids", "unlicensed_sound_post_ids", "expired_rights"}
        cposts = set(posts.loc[posts["campaign_id"] == cid, "post_id"])
        assert set(t["compliance"]["noncompliant_post_ids"]) <= cposts
        assert set(t["compliance"]["unlicensed_sound_post_ids"]) <= cposts
        for e in t["compliance"]["expired_rights"]:
            assert e["creator_id"] in members and e["usage_rights_end"] < e["planned_use_end"]
        assert set(t["inflated_creator_ids"]) <= members


def test_small_data_set_has_every_design(sim_raw, sim_truth):
    designs = {cid: t["designs"] for cid, t in sim_truth["campaigns"].items()}
    for kind in ("geo", "survey", "staggered"):
        assert any(d[kind] for d in designs.values()), kind
    _check_exclusive_windows(_read(sim_raw, "campaigns"), designs)


def test_default_data_set_has_designs_and_pre_period(world):
    d = world.designs
    assert sum(v["geo"] for v in d.values()) >= 2
    assert sum(v["survey"] for v in d.values()) >= 2
    assert sum(v["staggered"] for v in d.values()) >= 1
    camps = world.tables["campaigns"]
    assert 8 <= len(camps) <= 12
    assert (camps["start_date"].min() - world.dates[0]).days >= 60
    length = (camps["end_date"] - camps["start_date"]).dt.days + 1
    assert length.between(14, 42).all()
    assert camps["objective"].nunique() == 5
    _check_exclusive_windows(camps.astype({"start_date": str, "end_date": str}), d)


def _check_exclusive_windows(campaigns: pd.DataFrame, designs: dict) -> None:
    c = campaigns.set_index("campaign_id")
    spans = sorted((pd.Timestamp(c.at[cid, "start_date"]),
                    pd.Timestamp(c.at[cid, "end_date"]) + pd.Timedelta(days=ATTRIBUTION_TAIL_DAYS))
                   for cid, d in designs.items() if d["geo"] or d["staggered"])
    for (_, end1), (start2, _) in zip(spans, spans[1:]):
        assert start2 > end1


def test_staggered_campaign_spreads_creator_start_weeks(world):
    posts = world.tables["posts"]
    for cid, d in world.designs.items():
        if d["staggered"]:
            start = world.campaign_window(cid)[0]
            local = posts.loc[posts["campaign_id"] == cid].copy()
            local["day"] = local["posted_at"].dt.tz_convert(world.timezone).dt.tz_localize(None).dt.normalize()
            first = local.groupby("creator_id")["day"].min()
            assert ((first - start).dt.days // 7).nunique() >= 3


def test_contract_costs_are_close_to_budget(world):
    con = world.tables["contracts"]
    cost = (con["fee"] + con["product_cost"]).groupby(con["campaign_id"]).sum()
    budget = world.tables["campaigns"].set_index("campaign_id")["budget"]
    ratio = cost / budget.loc[cost.index]
    assert ratio.between(0.9, 1.06).all()
    assert con.groupby("campaign_id").size().between(5, 25).all()
    # some creators work with the brand more than once (repeat collaborations)
    assert (con.groupby("creator_id")["campaign_id"].nunique() > 1).sum() >= 3


def test_targets_use_the_objectives_registry_metrics(world):
    tg = world.tables["campaign_targets"].merge(world.tables["campaigns"][["campaign_id", "objective"]])
    assert tg.groupby("campaign_id").size().between(2, 4).all()
    assert all(k in OBJECTIVE_KPIS[o] for k, o in zip(tg["kpi"], tg["objective"]))
    assert (tg["target"] > 0).all()


def test_audience_shares_sum_to_one(world):
    aud = world.tables["creator_audience"]
    sums = aud.groupby(["creator_id", "dimension"])["share"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-9)
    assert set(aud["dimension"]) == {"age", "gender", "country"}
    assert aud["creator_id"].nunique() == len(world.tables["creators"])


def test_compliance_truth_matches_captions_and_labels(world):
    posts = world.tables["posts"]
    camp = posts[posts["campaign_id"].notna()]
    bad = set().union(*(t["compliance"]["noncompliant_post_ids"] for t in world.truth["campaigns"].values()))
    early_ad = camp["caption"].str[:100].str.contains(r"#ad\b", regex=True)
    disclosed = (camp["disclosure_label"] != "none") | early_ad
    assert set(camp.loc[~disclosed, "post_id"]) == bad
    assert len(bad) >= len(world.truth["campaigns"]) // 2
    buried = camp["caption"].str.contains(r"#ad\b", regex=True) & ~early_ad
    invalid = camp["caption"].str.contains(r"#(?:sp|spon|collab)\b", regex=True)
    assert buried.any() and invalid.any()
    unlic = set().union(*(t["compliance"]["unlicensed_sound_post_ids"] for t in world.truth["campaigns"].values()))
    assert unlic == set(camp.loc[~camp["sound_licensed"], "post_id"]) and unlic


# --- calibration ---------------------------------------------------------------------------

#: Median engagement by followers ((likes + comments + shares) / followers) per tier, genuine creators;
#: published medians (nano 7.8%, micro ~5%, mid ~3%, macro ~2.3%, mega ~1.8%) with tolerances for a
#: single data set of about a hundred creators.
TIER_TOLERANCE = {"nano": (0.055, 0.11), "micro": (0.038, 0.068), "mid": (0.02, 0.042),
                  "macro": (0.015, 0.032), "mega": (0.008, 0.03)}


def test_engagement_by_followers_falls_with_tier(world, final_posts):
    genuine = final_posts[~final_posts["creator_id"].isin(world.truth["creators"]["inflated_creator_ids"])]
    erf = ((genuine["likes"] + genuine["comments"] + genuine["shares"]) / genuine["followers"])
    med = erf.groupby(genuine["tier"]).median()
    for tier, (lo, hi) in TIER_TOLERANCE.items():
        assert lo <= med[tier] <= hi, (tier, med[tier])
    assert med["nano"] > med["micro"] > med["mid"] > med["macro"]


def test_inflated_creators_engage_far_below_their_tier(world, final_posts):
    inflated = set(world.truth["creators"]["inflated_creator_ids"])
    assert inflated
    erf = (final_posts["likes"] + final_posts["comments"] + final_posts["shares"]) / final_posts["followers"]
    by_creator = erf.groupby([final_posts["creator_id"], final_posts["tier"]]).median().reset_index(name="erf")
    tier_med = by_creator[~by_creator["creator_id"].isin(inflated)].groupby("tier")["erf"].median()
    infl = by_creator[by_creator["creator_id"].isin(inflated)]
    ratio = infl["erf"].to_numpy() / tier_med.loc[infl["tier"]].to_numpy()
    assert np.median(ratio) < 0.5


def test_engagement_by_views_median_between_3_and_6_percent(final_posts):
    eng = final_posts[["likes", "comments", "shares", "saves"]].sum(axis=1)
    er = eng / final_posts["views"]
    assert 0.03 <= er.median() <= 0.06


@pytest.mark.parametrize(("seconds", "published"), [(7, 0.894), (30, 0.548), (60, 0.382)])
def test_completion_rate_falls_with_duration(final_posts, seconds, published):
    near = final_posts[(final_posts["duration_s"] - seconds).abs() <= max(1, 0.1 * seconds)]
    assert len(near) >= 20
    assert abs(near["completion_rate"].median() - published) <= 0.04


def test_watch_time_consistent_with_completion(world):
    pm = world.tables["post_metrics"].merge(world.tables["posts"][["post_id", "duration_s"]])
    frac = pm["avg_watch_time_s"] / pm["duration_s"]
    assert (frac >= pm["completion_rate"] - 0.01).all() and (frac <= 1.0).all()


def test_reach_never_exceeds_views(world):
    pm = world.tables["post_metrics"]
    assert (pm["reach"] <= pm["views"]).all()
    big = pm[pm["views"] >= 100]
    ratio = big["reach"] / big["views"]
    assert ratio.between(0.5, 0.96).all()
    assert 0.6 <= ratio.median() <= 0.95


def test_views_are_heavy_tailed(final_posts):
    v = final_posts["views"]
    assert v.quantile(0.99) / v.median() > 20
    # within a tier too (viral outliers), not only across tiers
    micro = final_posts.loc[final_posts["tier"] == "micro", "views"]
    assert micro.quantile(0.99) / micro.median() > 8


def test_cumulative_snapshots_saturate_within_three_weeks(world):
    pm = world.tables["post_metrics"].merge(world.tables["posts"][["post_id", "posted_at"]])
    local = pm["posted_at"].dt.tz_convert(world.timezone).dt.tz_localize(None).dt.normalize()
    pm["age"] = (pm["date"] - local).dt.days
    pm["organic_views"] = pm["views"] - pm["paid_views"]  # spark-ads boosts follow the ad flight instead
    final = pm.groupby("post_id")["organic_views"].transform("last")
    day21 = pm[(pm["age"] == 21) & (final > 0)]
    assert len(day21) >= 50
    share = day21["organic_views"] / final[day21.index]
    assert share.median() >= 0.95
    assert (share >= 0.85).mean() >= 0.9


def test_reporting_glitches_are_present_but_rare(world):
    pm = world.tables["post_metrics"]
    same = pm["post_id"].eq(pm["post_id"].shift())
    drop = same & (pm["views"] < pm["views"].shift())
    gap = same & ((pm["date"] - pm["date"].shift()).dt.days > 1)
    assert 0 < drop.mean() < 0.01
    assert 0.005 < gap.mean() < 0.04


def test_brand_follower_growth_two_to_three_percent_a_month(world):
    b = world.tables["brand_account_daily"]
    monthly = (b["followers"].iloc[-1] / b["followers"].iloc[0]) ** (30 / len(b)) - 1
    assert 0.01 <= monthly <= 0.05
    flow = b["followers"].diff().iloc[1:]
    np.testing.assert_array_equal(flow.to_numpy(), (b["new_followers"] - b["lost_followers"]).iloc[1:].to_numpy())


def test_campaign_follows_are_a_meaningful_share_of_new_followers(world):
    shares = [t["followers"]["share_of_new_followers_in_window"] for t in world.truth["campaigns"].values()]
    assert 0.15 <= float(np.median(shares)) <= 0.6


def test_truth_follows_match_the_caused_follow_events(world):
    cf = world.caused_follows
    for cid, t in world.truth["campaigns"].items():
        start, end = world.campaign_window(cid)
        last = min(end + pd.Timedelta(days=ATTRIBUTION_TAIL_DAYS), world.dates[-1])
        sel = cf[(cf["campaign_id"] == cid) & cf["follow_date"].between(start, last)]
        assert int(sel["follows"].sum()) == t["followers"]["incremental"]
        lost = sel["lost_within_60d"].sum() / max(sel["follows"].sum(), 1)
        assert 0.03 < lost < 0.35


def test_follow_lag_is_not_geometric(world):
    cf = world.caused_follows
    lag = (cf["follow_date"] - cf["view_date"]).dt.days
    counts = cf.groupby(lag)["follows"].sum()
    assert counts.idxmax() > 0  # a geometric lag would peak on the day of the view
    assert lag.max() <= 28
    pmf = np.array(world.truth["parameters"]["follow_lag_pmf"])
    assert int(pmf.argmax()) > 0 and pmf[1] > pmf[0]


def test_exposure_is_the_true_daily_views_of_campaign_posts(world):
    ex = world.exposure
    assert list(ex.columns[:6]) == ["post_id", "creator_id", "campaign_id", "date", "views", "link_clicks"]
    assert (ex[["views", "link_clicks"]] >= 0).all().all()
    camp_posts = set(world.tables["posts"].dropna(subset=["campaign_id"])["post_id"])
    assert set(ex["post_id"]) == camp_posts
    # the reported final snapshot equals the true total unless a glitch hit the last day (never)
    final = world.tables["post_metrics"].groupby("post_id")["views"].last()
    total = ex.groupby("post_id")["views"].sum()
    pd.testing.assert_series_equal(total.sort_index(), final.loc[total.index].sort_index(), check_names=False)


def test_funnel_truth_gives_each_creators_follows_per_view(world):
    """truth["creators"]["funnel"]: visit x follow rate (x repeat multiplier) is the caused follows per view."""
    funnel = world.truth["creators"]["funnel"]
    ex = world.exposure
    assert set(funnel) == set(ex["creator_id"])
    q = np.array([r["brand_visit_rate"] for r in funnel.values()])
    f = np.array([r["brand_follow_rate"] for r in funnel.values()])
    assert (q > 0).all() and (q < 0.05).all() and (f > 0).all() and (f < 1).all()
    mult = {(cid, c): r["multiplier"] for cid, t in world.truth["campaigns"].items()
            for c, r in t["repeat"]["creators"].items()}
    views = ex.groupby(["campaign_id", "creator_id"])["views"].sum()
    caused = world.caused_follows.groupby(["campaign_id", "creator_id"])["follows"].sum().reindex(views.index,
                                                                                                 fill_value=0)
    expected = np.array([views[k] * funnel[k[1]]["brand_visit_rate"] * mult.get(k, 1.0)
                         * funnel[k[1]]["brand_follow_rate"] for k in views.index])
    big = expected > 100  # Poisson noise under 10%
    assert big.sum() >= 20
    ratio = caused.to_numpy()[big] / expected[big]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.05) and (np.abs(ratio - 1) < 0.35).all()


def test_world_streams_are_independent_and_deterministic(world):
    a = world.rng("commerce").random(3)
    b = world.rng("commerce").random(3)
    c = world.rng("voice").random(3)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_truth_json_is_plain_json(sim_raw):
    truth = json.loads((sim_raw / "truth.json").read_text())
    assert isinstance(truth["seed"], int)
    assert all(isinstance(v, int) for t in truth["campaigns"].values() for v in t["followers"]["by_creator"].values())


# ---------------------------------------------------------------- repeat collaborations


@pytest.fixture(scope="module")
def repeat_worlds():
    """The same small world with the repeat effect off, at its default and strong (x3)."""
    return {eff: build_core(seed=11, campaigns=6, days=300, repeat_effect=eff) for eff in (1.0, 1.2, 3.0)}


def test_repeat_truth_records_multipliers_and_collaborations(repeat_worlds):
    w = repeat_worlds[1.2]
    rt = w.truth["repeat"]
    assert rt["population_multiplier"] == 1.2 and rt["sigma_log"] > 0
    con = w.tables["contracts"]
    starts = w.tables["campaigns"].set_index("campaign_id")["start_date"]
    counts = con.groupby("creator_id")["campaign_id"].nunique()
    assert set(rt["creators"]) == set(counts[counts > 1].index) and rt["n_repeat_creators"] >= 5
    for crid, c in rt["creators"].items():
        camps = sorted(con.loc[con["creator_id"] == crid, "campaign_id"], key=lambda k: (starts[k], k))
        assert c["first_campaign"] == camps[0] and c["later_campaigns"] == camps[1:]
        assert c["multiplier"] > 0
        for i, cid in enumerate(camps[1:], start=2):
            entry = w.truth["campaigns"][cid]["repeat"]["creators"][crid]
            assert entry == {"collaboration": i, "first_campaign": camps[0], "multiplier": c["multiplier"]}
        assert crid not in w.truth["campaigns"][camps[0]]["repeat"]["creators"]
    logm = np.log([c["multiplier"] for c in rt["creators"].values()])
    assert rt["sample_multiplier"] == pytest.approx(np.exp(logm.mean()), rel=1e-5)


def test_repeat_effect_changes_only_the_caused_follows(repeat_worlds):
    off, on = repeat_worlds[1.0], repeat_worlds[3.0]
    for name in off.tables:
        if name in ("brand_account_daily", "campaign_targets"):
            continue
        pd.testing.assert_frame_equal(off.tables[name], on.tables[name], obj=name)
    assert off.truth["repeat"]["sigma_log"] == 0.0
    assert all(c["multiplier"] == 1.0 for c in off.truth["repeat"]["creators"].values())
    new_off, new_on = (w.tables["brand_account_daily"]["new_followers"] for w in (off, on))
    assert not new_off.equals(new_on)
    # first collaborations are untouched: same caused follows with and without the effect
    for cid in off.truth["campaigns"]:
        rep = set(on.truth["campaigns"][cid]["repeat"]["creators"])
        for crid, n in off.truth["campaigns"][cid]["followers"]["by_creator"].items():
            if crid not in rep:
                assert on.truth["campaigns"][cid]["followers"]["by_creator"][crid] == n, (cid, crid)


def test_realised_repeat_ratio_follows_the_multipliers(repeat_worlds):
    off, strong = repeat_worlds[1.0].truth, repeat_worlds[3.0].truth
    # no effect: per-view response is a creator constant, so the realised ratio is near 1 (binomial noise)
    assert 0.85 < off["repeat"]["realised_ratio"] < 1.15
    s = strong["repeat"]
    assert s["realised_ratio"] == pytest.approx(s["sample_multiplier"], rel=0.15)
    per = [(np.log(c["realised_ratio"]), np.log(c["multiplier"])) for c in s["creators"].values()
           if c["realised_ratio"]]
    r, m = np.array(per).T
    assert np.corrcoef(r, m)[0, 1] > 0.3  # per-creator spread (sd 0.2 on log) is small against binomial noise
    # caused follows stay consistent with the brand account and with the follow events
    w = repeat_worlds[3.0]
    for cid, t in w.truth["campaigns"].items():
        sel = w.caused_follows[w.caused_follows["campaign_id"] == cid]
        assert int(sel["follows"].sum()) >= t["followers"]["incremental"] > 0
    assert (w.caused_follows["follows"] > 0).all()
    assert (w.caused_follows["lost_within_60d"] <= w.caused_follows["follows"]).all()


def test_repeat_effect_below_one_thins_and_null_scale_stays_null():
    weak = build_core(seed=11, campaigns=6, days=300, repeat_effect=0.4)
    assert weak.truth["repeat"]["realised_ratio"] == pytest.approx(weak.truth["repeat"]["sample_multiplier"],
                                                                   rel=0.2)
    assert (weak.caused_follows["lost_within_60d"] <= weak.caused_follows["follows"]).all()
    null = build_core(seed=11, campaigns=6, days=300, effect_scale=0.0, repeat_effect=3.0)
    assert sum(t["followers"]["incremental"] for t in null.truth["campaigns"].values()) == 0
    assert null.caused_follows["follows"].sum() == 0


def test_repeat_effect_must_be_positive():
    with pytest.raises(ValueError, match="repeat_effect must be a positive number"):
        generate(seed=1, campaigns=2, days=240, repeat_effect=0.0)


def test_noise_free_baseline_changes_only_the_brand_accounts_noise():
    noisy = build_core(seed=11, campaigns=4, days=300)
    calm = build_core(seed=11, campaigns=4, days=300, baseline_noise=0.0)
    half = build_core(seed=11, campaigns=4, days=300, baseline_noise=0.5)
    for name in noisy.tables:
        if name != "brand_account_daily":
            pd.testing.assert_frame_equal(noisy.tables[name], calm.tables[name], obj=name)
    for cid, t in noisy.truth["campaigns"].items():  # the caused follows are the same; only their share moves
        same = {k: v for k, v in t["followers"].items() if k != "share_of_new_followers_in_window"}
        assert same == {k: calm.truth["campaigns"][cid]["followers"][k] for k in same}
    pd.testing.assert_frame_equal(noisy.caused_follows, calm.caused_follows)

    def baseline(w):  # new followers minus the campaign-caused arrivals of each day
        cf = w.caused_follows
        day = (pd.to_datetime(cf["follow_date"]) - w.dates[0]).dt.days.to_numpy()
        inside = day < len(w.dates)
        caused = np.bincount(day[inside], weights=cf["follows"].to_numpy(float)[inside],
                             minlength=len(w.dates))
        return w.tables["brand_account_daily"]["new_followers"].to_numpy(float) - caused

    rough = [np.std(np.diff(baseline(w))) for w in (noisy, half, calm)]
    assert rough[0] > rough[1] > rough[2]
    # without noise the day-to-day change is the weekly pattern and own posting: 0.32-0.53 of the noisy one
    # on seeds 1-16 (the bound leaves room for other seeds; an inert knob gives 1)
    assert rough[2] < 0.7 * rough[0]
    with pytest.raises(ValueError, match="baseline_noise must be a number of 0 or more"):
        build_core(seed=11, campaigns=2, days=240, baseline_noise=-1.0)


def test_weekly_exports_keep_the_weekday_and_each_posts_last_snapshot(world):
    from analysis.simulate import weekly_exports

    tables = world.tables
    before = tables["post_metrics"].copy()
    weekly = weekly_exports(tables, weekday=2)
    pm, wk = tables["post_metrics"], weekly["post_metrics"]
    pd.testing.assert_frame_equal(pm, before)  # the input is not modified
    day = pd.to_datetime(wk["date"])
    last = day == day.groupby(wk["post_id"]).transform("max")
    assert ((day.dt.day_of_week == 2) | last).all() and (day.dt.day_of_week == 2).mean() > 0.5
    assert 0.1 < len(wk) / len(pm) < 0.3
    # the same settled totals, in fewer and larger steps
    pd.testing.assert_series_equal(wk.groupby("post_id")["views"].last(), pm.groupby("post_id")["views"].last())
    assert all(weekly[k] is tables[k] for k in tables if k != "post_metrics")
    with pytest.raises(ValueError, match="weekday must be 0"):
        weekly_exports(tables, weekday=7)


def test_totals_exports_keep_one_snapshot_per_post_with_its_settled_totals(world):
    from analysis.simulate import totals_exports

    tables = world.tables
    before = tables["post_metrics"].copy()
    pm = tables["post_metrics"]
    settled = pm.sort_values(["post_id", "date"]).groupby("post_id").last()
    for on_last_day in (False, True):
        once = totals_exports(tables, on_last_day=on_last_day)["post_metrics"]
        pd.testing.assert_frame_equal(pm, before)  # the input is not modified
        assert once["post_id"].is_unique and set(once["post_id"]) == set(pm["post_id"])
        got = once.set_index("post_id").loc[settled.index]
        pd.testing.assert_series_equal(got["views"], settled["views"])
        if on_last_day:
            assert (got["date"] == tables["brand_account_daily"]["date"].max()).all()
        else:
            pd.testing.assert_series_equal(got["date"], settled["date"])
    assert all(totals_exports(tables)[k] is tables[k] for k in tables if k != "post_metrics")
