"""Tests of analysis.lift.did against published results and simulated truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.lift.did import did, event_study, staggered_did, staggered_panel


@pytest.fixture(scope="module")
def organ():
    from causaldata import organ_donations

    d = organ_donations.load_pandas().data.copy()
    d["ca"] = (d["State"] == "California").astype(int)
    d["post"] = (d["Quarter_Num"] >= 4).astype(int)  # Q3 2011 onwards
    d["treat"] = d["ca"] * d["post"]
    return d


def _panel_2x2(seed: int, effect: bool = True, n: int = 40, T: int = 12):
    rng = np.random.default_rng(seed)
    tr = rng.random(n) < 0.5
    tr[:2], tr[2:4] = True, False
    e = np.zeros((n, T))
    for t in range(T):
        e[:, t] = (0.5 * e[:, t - 1] if t else 0) + rng.normal(0, 1, n)
    post = np.arange(T) >= T // 2
    tau = rng.gamma(4, 1.5 / 4, n) * effect
    te = tr[:, None] * post[None, :] * tau[:, None]
    y = 10 + rng.normal(0, 2, n)[:, None] + np.cumsum(rng.normal(0, 0.5, T))[None, :] + e + te
    df = pd.DataFrame({"u": np.repeat(np.arange(n), T), "t": np.tile(np.arange(T), n), "y": y.ravel(),
                       "g": np.repeat(tr.astype(int), T), "post": np.tile(post.astype(int), n)})
    df["d"] = df["g"] * df["post"]
    return df, te[tr][:, post].mean()


def _panel_staggered(seed: int, effect: bool = True, n: int = 60, T: int = 30):
    rng = np.random.default_rng(seed)
    coh = rng.choice([10, 15, 20, np.inf], size=n)
    e = np.zeros((n, T))
    for t in range(T):
        e[:, t] = (0.5 * e[:, t - 1] if t else 0) + rng.normal(0, 1, n)
    ev = np.arange(T)[None, :] - coh[:, None]
    scale = np.select([coh == 10, coh == 15, coh == 20], [2.0, 1.0, 0.5], 0.0)
    te = np.where(ev >= 0, scale[:, None] * (1 + 0.1 * np.clip(ev, 0, None)), 0.0) * effect
    y = 10 + rng.normal(0, 2, n)[:, None] + np.cumsum(rng.normal(0, 0.5, T))[None, :] + e + te
    df = pd.DataFrame({"u": np.repeat(np.arange(n), T), "t": np.tile(np.arange(T), n), "y": y.ravel(),
                       "cohort": np.repeat(np.where(np.isfinite(coh), coh, np.nan), T)})
    df["d"] = (df["t"] >= df["cohort"]).astype(int)
    return df, te[ev >= 0].mean()


# ---------------------------------------------------------------- published: The Effect, organ donations

def test_twfe_matches_published_reghdfe(organ):
    r = did(organ, outcome="Rate", treated="treat", unit="State", time="Quarter_Num")
    assert r.effect == pytest.approx(-0.022459, abs=1e-6)
    assert r.se == pytest.approx(0.0061312, abs=1e-6)
    assert r.n_clusters == 27 and r.df == 26
    assert r.ci_low < r.effect < r.ci_high < 0
    assert any("treated cluster" in w for w in r.warnings)


def test_2x2_with_fixed_effects_equals_twfe(organ):
    a = did(organ, outcome="Rate", treated="treat", unit="State", time="Quarter_Num")
    b = did(organ, outcome="Rate", treated="ca", post="post", unit="State", time="Quarter_Num")
    assert b.effect == pytest.approx(a.effect, abs=1e-12)
    assert b.se == pytest.approx(a.se, rel=1e-9)


def test_2x2_cross_section_matches_statsmodels_ols(organ):
    import statsmodels.formula.api as smf

    r = did(organ, outcome="Rate", treated="ca", post="post", cluster="State")
    ref = smf.ols("Rate ~ ca * post", organ).fit(cov_type="cluster", cov_kwds={"groups": organ["State"]})
    assert r.effect == pytest.approx(ref.params["ca:post"], abs=1e-12)
    assert r.se == pytest.approx(ref.bse["ca:post"], rel=1e-9)


def test_event_study_lead_and_pretrend_warning(organ):
    r = event_study(organ, outcome="Rate", unit="State", time="Quarter_Num", treated="treat")
    c = r.coefficients.set_index("event_time")
    assert c.loc[-1, "estimate"] == 0
    assert c.loc[-2, "estimate"] == pytest.approx(0.0063, abs=5e-5)
    assert c.loc[-2, "se"] == pytest.approx(0.0023, abs=5e-5)
    assert c.loc[-2, "p_value"] < 0.05 and c.loc[-3, "p_value"] > 0.05
    assert r.pretrend_p is not None and r.pretrend_p < 0.05
    assert any("Pre-trend test fails" in w for w in r.warnings)
    assert "parallel trends is doubtful" in r.reading()


# ---------------------------------------------------------------- behaviour

def test_results_are_json_safe_and_plot(organ):
    import matplotlib.pyplot as plt

    r = did(organ, outcome="Rate", treated="ca", post="post", unit="State", time="Quarter_Num")
    json.dumps(r.to_dict(), allow_nan=False)
    assert r.summary().loc[0, "effect"] == r.effect
    fig, ax = plt.subplots()
    assert r.plot(ax=ax) is ax and len(ax.lines) >= 2
    es = event_study(organ, outcome="Rate", unit="State", time="Quarter_Num", treated="treat")
    json.dumps(es.to_dict(), allow_nan=False)
    assert es.plot() is not None
    df, _ = _panel_staggered(0)
    st = staggered_did(df, outcome="y", unit="u", time="t", cohort="cohort", inference="bootstrap", n_boot=199)
    json.dumps(st.to_dict(), allow_nan=False)
    assert {"band_low", "band_high"} <= set(st.event_times)
    assert st.plot() is not None and "units that adopted" in st.reading()
    assert f"changed by {st.effect:+.4g} per unit and period" in st.reading()
    # the report names its units and formats the outcome (money), signs added here
    worded = st.reading(fmt=lambda v: f"${v:,.2f}", units="regions", period="day")
    assert f"regions that adopted, y changed by {'+' if st.effect >= 0 else '-'}${abs(st.effect):,.2f} per region " \
        "and day" in worded
    lo = f"-${abs(st.ci_low):,.2f}" if st.ci_low < 0 else f"+${st.ci_low:,.2f}"
    hi = f"-${abs(st.ci_high):,.2f}" if st.ci_high < 0 else f"+${st.ci_high:,.2f}"
    assert f"(95% interval {lo} to {hi}, " in worded and "over the counterfactual)" in worded


def test_event_study_binning(organ):
    r = event_study(organ, outcome="Rate", unit="State", time="Quarter_Num", treated="treat", leads=1, lags=1)
    assert set(r.coefficients["event_time"]) == {-2, -1, 0, 1}
    assert r.coefficients.set_index("event_time").loc[1, "binned"]


def test_readable_errors(organ):
    with pytest.raises(ValueError, match="not found"):
        did(organ, outcome="nope", treated="treat", unit="State", time="Quarter_Num")
    with pytest.raises(ValueError, match="both `unit`"):
        did(organ, outcome="Rate", treated="treat")
    bad = organ.assign(treat=organ["treat"] * 2)
    with pytest.raises(ValueError, match="0/1"):
        did(bad, outcome="Rate", treated="treat", unit="State", time="Quarter_Num")
    with pytest.raises(ValueError, match="collinear"):
        did(organ, outcome="Rate", treated="ca", unit="State", time="Quarter_Num")  # unit-level: absorbed
    df, _ = _panel_staggered(1)
    with pytest.raises(ValueError, match="unbalanced"):
        staggered_did(df.iloc[5:], outcome="y", unit="u", time="t", cohort="cohort")
    with pytest.raises(ValueError, match="exactly one"):
        staggered_did(df, outcome="y", unit="u", time="t")


def test_staggered_same_with_cohort_or_indicator():
    df, _ = _panel_staggered(3)
    a = staggered_did(df, outcome="y", unit="u", time="t", cohort="cohort")
    b = staggered_did(df, outcome="y", unit="u", time="t", treated="d")
    assert a.effect == pytest.approx(b.effect, abs=1e-12) and a.se == pytest.approx(b.se, rel=1e-12)
    c = staggered_did(df, outcome="y", unit="u", time="t", cohort="cohort", control_group="not_yet_treated")
    assert c.effect != a.effect and abs(c.effect - a.effect) < 3 * a.se


def test_staggered_single_cohort_equals_2x2_did():
    # one cohort and never-treated controls: the overall ATT equals the FE DiD of treated-by-post
    df, _ = _panel_2x2(4)
    df["cohort"] = np.where(df["g"] == 1, 6, np.nan)
    st = staggered_did(df, outcome="y", unit="u", time="t", cohort="cohort")
    # CS compares each post period with period 5 only; rebuild that by hand
    w = df.pivot(index="u", columns="t", values="y")
    g = df.groupby("u")["g"].first()
    dd = (w.loc[:, 6:].sub(w[5], axis=0))
    manual = (dd[g == 1].mean() - dd[g == 0].mean()).mean()
    assert st.effect == pytest.approx(manual, abs=1e-10)


def test_staggered_two_period_se_is_welch():
    """One cohort, two periods: the ATT is a difference of mean changes and its standard error, with the
    per-group m/(m-1) factor, is Welch's two-sample standard error (scipy's unequal-variance t-test)."""
    from scipy import stats

    rng = np.random.default_rng(5)
    n_t, n_c = 7, 12
    y0 = rng.normal(10, 2, n_t + n_c)
    y1 = y0 + rng.normal(0, 1, n_t + n_c) + np.r_[np.full(n_t, 1.0), np.zeros(n_c)]
    df = pd.DataFrame({"u": np.repeat(np.arange(n_t + n_c), 2), "t": np.tile([0, 1], n_t + n_c),
                       "y": np.column_stack([y0, y1]).ravel(),
                       "cohort": np.repeat(np.r_[np.ones(n_t), np.full(n_c, np.nan)], 2)})
    r = staggered_did(df, outcome="y", unit="u", time="t", cohort="cohort", compare_twfe=False)
    d = y1 - y0
    welch = stats.ttest_ind(d[:n_t], d[n_t:], equal_var=False)
    diff = d[:n_t].mean() - d[n_t:].mean()
    assert r.effect == pytest.approx(diff, abs=1e-12)
    assert r.se == pytest.approx(diff / welch.statistic, rel=1e-10)
    boot = staggered_did(df, outcome="y", unit="u", time="t", cohort="cohort", compare_twfe=False,
                         inference="bootstrap", n_boot=4999, seed=1)
    assert boot.se == pytest.approx(r.se, rel=0.1)


# ---------------------------------------------------------------- pinned-seed simulations (fast)

def test_did_pinned_simulation_coverage_and_size():
    cover, reject0, bias = [], [], []
    for s in range(60):
        df, truth = _panel_2x2(s)
        r = did(df, outcome="y", treated="d", unit="u", time="t")
        cover.append(r.ci_low <= truth <= r.ci_high)
        bias.append(r.effect - truth)
        df0, _ = _panel_2x2(s, effect=False)
        reject0.append(did(df0, outcome="y", treated="d", unit="u", time="t").p_value < 0.05)
    assert 0.85 <= np.mean(cover) <= 1.0
    assert np.mean(reject0) <= 0.12
    assert abs(np.mean(bias)) < 0.1 * 1.5


def test_staggered_beats_twfe_under_heterogeneous_dynamic_effects():
    cs, tw, tr, cover = [], [], [], []
    for s in range(40):
        df, truth = _panel_staggered(s)
        r = staggered_did(df, outcome="y", unit="u", time="t", cohort="cohort")
        cs.append(r.effect)
        tw.append(r.twfe_effect)
        tr.append(truth)
        cover.append(r.ci_low <= truth <= r.ci_high)
    cs, tw, tr = map(np.array, (cs, tw, tr))
    assert abs((cs - tr).mean()) / tr.mean() < 0.05
    assert (tw - tr).mean() / tr.mean() < -0.2  # TWFE badly biased downwards here
    assert np.mean(cover) >= 0.85


# ---------------------------------------------------------------- simulator

@pytest.fixture(scope="module")
def sim():
    from analysis.simulate import generate

    return generate(seed=7, campaigns=4, days=240, show_progress=False)


def test_staggered_panel_from_simulator(sim):
    tables, truth = sim
    entries = [(cid, e) for cid, c in truth["campaigns"].items() for e in (c.get("lift") or [])
               if e["design"] == "staggered"]
    assert entries, "the simulator should produce a staggered campaign at this seed"
    cid, entry = entries[0]
    p = staggered_panel(tables["geo_sales_daily"], tables["geo_assignment"], cid)
    adopt = p.dropna(subset=["cohort"]).groupby("region")["cohort"].first()
    assert {k: str(v.date()) for k, v in adopt.items()} == entry["adoption"]
    n_days = p["date"].nunique()
    assert (p.groupby("region").size() == n_days).all()
    assert ((p["treated"] == 1) == (p["date"] >= p["cohort"])).all()
    with pytest.raises(ValueError, match="no geo assignment"):
        staggered_panel(tables["geo_sales_daily"], tables["geo_assignment"], "NOPE")


def _staggered_in_sim(tables, truth):
    cid, entry = next((cid, e) for cid, c in truth["campaigns"].items() for e in (c.get("lift") or [])
                      if e["design"] == "staggered")
    return staggered_panel(tables["geo_sales_daily"], tables["geo_assignment"], cid), entry


@pytest.mark.parametrize("seed", [7, 104])
def test_staggered_weekday_base_recovers_simulator_truth(sim, seed):
    from analysis.simulate import generate

    tables, truth = sim if seed == 7 else generate(seed=seed, campaigns=4, days=240, show_progress=False)
    panel, entry = _staggered_in_sim(tables, truth)
    end = pd.Timestamp(entry["window"]["end"])
    r = staggered_did(panel, outcome="revenue", unit="region", time="date", cohort="cohort", post_end=end)
    assert r.seasonality == "unit_weekday" and r.base_periods == 28  # the daily-panel default
    assert r.ci_low <= entry["effect"] <= r.ci_high
    assert abs(r.effect - entry["effect"]) <= 0.2 * entry["effect"]
    assert r.post_end == end and r.to_dict()["post_end"].startswith(entry["window"]["end"])
    # single-region cohorts: the treated side's variance comes from pre-adoption placebo windows
    assert r.treated_variance == "placebo" and r.n_placebo_windows >= 20
    assert r.pretrend_p > 0.05  # no real pre-trend in the simulator
    if seed == 7:
        # the universal base g-1 over the whole panel (the earlier default) misses the truth here
        old = staggered_did(panel, outcome="revenue", unit="region", time="date", cohort="cohort",
                            seasonality="none")
        assert not old.ci_low <= entry["effect"] <= old.ci_high


def _fake_adoption(panel: pd.DataFrame, end: pd.Timestamp):
    """The rollout's schedule moved back to end the day before the first adoption (effect-free)."""
    first = panel["cohort"].min()
    shift = end - first + pd.Timedelta(days=1)
    pre = panel[panel["date"] < first].assign(cohort=lambda d: d["cohort"] - shift)
    return pre, end - shift


def test_single_region_cohorts_get_honest_intervals_on_simulator():
    """Seed 4 was the worst case: within-cohort errors ignore single-region cohorts' noise."""
    from analysis.simulate import generate

    tables, truth = generate(seed=4, campaigns=4, days=240, show_progress=False)
    panel, entry = _staggered_in_sim(tables, truth)
    end = pd.Timestamp(entry["window"]["end"])
    assert panel.dropna(subset=["cohort"]).groupby("cohort")["region"].nunique().min() == 1
    null, null_end = _fake_adoption(panel, end)
    kw = dict(outcome="revenue", unit="region", time="date", cohort="cohort", compare_twfe=False)
    new = staggered_did(null, post_end=null_end, **kw)
    old = staggered_did(null, post_end=null_end, treated_variance="cohort", **kw)
    assert new.treated_variance == "placebo"
    assert old.p_value < 0.01 and old.pretrend_p < 0.001  # the previous interval: a false positive
    assert new.p_value > 0.05 and new.pretrend_p > 0.05
    assert new.se > 2 * old.se and new.df < old.df
    real = staggered_did(panel, post_end=end, **kw)
    assert real.se > 2 * staggered_did(panel, post_end=end, treated_variance="cohort", **kw).se
    json.dumps(real.to_dict(), allow_nan=False)


def test_treated_variance_options_on_singleton_cohorts():
    """Each treated unit adopts on its own day; effects differ between units; AR(1) daily noise."""
    cover = {"placebo": [], "cohort": [], "pooled": []}
    for seed in range(25):
        rng = np.random.default_rng(seed)
        n, T = 30, 150
        dates = pd.date_range("2025-01-06", periods=T)
        adopt = np.full(n, -1)
        adopt[:12] = rng.choice(np.arange(90, 115), 12, replace=False)
        e = np.zeros((n, T))
        for t in range(T):
            e[:, t] = (0.5 * e[:, t - 1] if t else 0) + rng.normal(0, 3, n)
        tau = rng.gamma(2, 2.5, n)
        on = (adopt[:, None] >= 0) & (np.arange(T)[None, :] >= adopt[:, None])
        y = 100 + rng.normal(0, 10, n)[:, None] + np.cumsum(rng.normal(0, 1, T))[None, :] + e + tau[:, None] * on
        end = 129
        truth = (tau[:, None] * on)[:, : end + 1][on[:, : end + 1]].mean()
        df = pd.DataFrame({"u": np.repeat(np.arange(n), T), "date": np.tile(dates, n), "y": y.ravel(),
                           "cohort": np.repeat(np.where(adopt >= 0, dates[np.clip(adopt, 0, None)], pd.NaT), T)})
        for tv in cover:
            r = staggered_did(df, outcome="y", unit="u", time="date", cohort="cohort", post_end=dates[end],
                              treated_variance=tv, compare_twfe=False)
            cover[tv].append(r.ci_low <= truth <= r.ci_high)
            if tv == "placebo":
                assert r.n_placebo_windows > 5 and r.treated_variance == "placebo"
    assert np.mean(cover["placebo"]) >= 0.88
    assert np.mean(cover["cohort"]) <= np.mean(cover["placebo"]) - 0.2  # singletons: treated noise ignored
    assert np.mean(cover["pooled"]) >= np.mean(cover["placebo"])  # conservative: adds effect spread
    with pytest.raises(ValueError, match="treated_variance must be"):
        staggered_did(df, outcome="y", unit="u", time="date", cohort="cohort", treated_variance="x")


def test_large_cohorts_keep_within_cohort_variance():
    df, _ = _panel_staggered(6)
    a = staggered_did(df, outcome="y", unit="u", time="t", cohort="cohort")
    b = staggered_did(df, outcome="y", unit="u", time="t", cohort="cohort", treated_variance="cohort")
    assert a.treated_variance == "cohort" and a.se == b.se and a.df == 59


def _daily_weekday_panel(seed: int, effect: float = 5.0, n: int = 40, T: int = 120, tail_zero: int = 0):
    """Daily panel: unit-specific multiplicative weekday patterns and sizes, staggered adoption."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2025-01-06", periods=T)
    dow = dates.day_of_week.to_numpy()
    size = rng.uniform(50, 150, n)
    pattern = 1 + rng.uniform(0.5, 1.5, n)[:, None] * (np.array([-.1, -.12, -.08, -.03, .08, .22, .03])[dow])[None, :]
    adopt = rng.choice([60, 67, 75, -1], size=n)
    t = np.arange(T)
    on = (adopt[:, None] >= 0) & (t[None, :] >= adopt[:, None]) & (t[None, :] < T - tail_zero)
    y = size[:, None] * pattern * (1 + 0.02 * rng.standard_normal((n, T))) + effect * on
    df = pd.DataFrame({"u": np.repeat(np.arange(n), T), "date": np.tile(dates, n), "y": y.ravel(),
                       "cohort": np.repeat(np.where(adopt >= 0, dates[np.clip(adopt, 0, None)], pd.NaT), T)})
    return df, dates


def test_weekday_base_removes_unit_weekday_patterns():
    df, _ = _daily_weekday_panel(0)
    r = staggered_did(df, outcome="y", unit="u", time="date", cohort="cohort")
    assert r.seasonality == "unit_weekday"
    assert r.ci_low <= 5.0 <= r.ci_high and abs(r.effect - 5.0) < 0.5
    assert r.pretrend_p > 0.01
    g1 = staggered_did(df, outcome="y", unit="u", time="date", cohort="cohort", seasonality="none")
    assert g1.se > 2 * r.se  # a single base day carries the unit's weekday noise
    assert r.plot() is not None


def test_weekday_base_uses_no_post_adoption_data():
    df, dates = _daily_weekday_panel(1)
    a = staggered_did(df, outcome="y", unit="u", time="date", cohort="cohort", compare_twfe=False)
    # shifting every treated unit's post-adoption outcomes by a constant shifts each ATT(g, t) by exactly
    # that constant: the bases (and the pre-adoption placebos) never see post-adoption values
    shifted = df.assign(y=df["y"] + 100.0 * (df["date"] >= df["cohort"]))
    b = staggered_did(shifted, outcome="y", unit="u", time="date", cohort="cohort", compare_twfe=False)
    post = a.group_time["event_time"] >= 0
    np.testing.assert_allclose(b.group_time["att"][post], a.group_time["att"][post] + 100.0, atol=1e-8)
    np.testing.assert_allclose(b.group_time["att"][~post], a.group_time["att"][~post], atol=1e-8)
    assert b.effect == pytest.approx(a.effect + 100.0, abs=1e-8)


def test_post_end_limits_the_overall_att_to_the_window():
    df, dates = _daily_weekday_panel(2, tail_zero=20)  # the effect stops 20 days before the panel ends
    end = dates[-21]
    full = staggered_did(df, outcome="y", unit="u", time="date", cohort="cohort")
    win = staggered_did(df, outcome="y", unit="u", time="date", cohort="cohort", post_end=end)
    assert win.ci_low <= 5.0 <= win.ci_high
    assert full.effect < 4.0  # diluted by the days after the effect stopped
    with pytest.raises(ValueError, match="post_end"):
        staggered_did(df, outcome="y", unit="u", time="date", cohort="cohort", post_end=dates[10])


def test_seasonality_options_and_errors():
    df, _ = _panel_staggered(5)
    a = staggered_did(df, outcome="y", unit="u", time="t", cohort="cohort")
    assert a.seasonality == "none" and a.base_periods == 1  # integer periods: classic universal base
    with pytest.raises(ValueError, match="needs dates"):
        staggered_did(df, outcome="y", unit="u", time="t", cohort="cohort", seasonality="unit_weekday")
    with pytest.raises(ValueError, match="seasonality must be"):
        staggered_did(df, outcome="y", unit="u", time="t", cohort="cohort", seasonality="weekly")
    d2, _ = _daily_weekday_panel(3)
    with pytest.raises(ValueError, match="at least a week"):
        staggered_did(d2, outcome="y", unit="u", time="date", cohort="cohort", base_periods=3)
    # an averaged base on integer periods: pre-adoption cells become placebo comparisons
    b = staggered_did(df, outcome="y", unit="u", time="t", cohort="cohort", base_periods=4)
    assert b.base_periods == 4 and (b.event_times["event_time"] == -1).any()
    assert np.isfinite(b.event_times.set_index("event_time").loc[-1, "se"])


# ---------------------------------------------------------------- many seeds (slow)

@pytest.mark.slow
def test_many_seed_validation():
    cover, rej0, bias, tr = [], [], [], []
    for s in range(300):
        df, truth = _panel_staggered(1000 + s)
        r = staggered_did(df, outcome="y", unit="u", time="t", cohort="cohort", compare_twfe=False)
        cover.append(r.ci_low <= truth <= r.ci_high)
        bias.append(r.effect - truth)
        tr.append(truth)
        df0, _ = _panel_staggered(1000 + s, effect=False)
        rej0.append(staggered_did(df0, outcome="y", unit="u", time="t", cohort="cohort",
                                  compare_twfe=False).p_value < 0.05)
    assert 0.92 <= np.mean(cover) <= 0.98
    assert abs(np.mean(bias)) < 0.05 * np.mean(tr)
    assert np.mean(rej0) <= 0.06
    cover, rej0 = [], []
    for s in range(300):
        df, _ = _panel_2x2(2000 + s)
        r = did(df, outcome="y", treated="g", post="post", unit="u", time="t")
        cover.append(r.ci_low <= 1.5 <= r.ci_high)  # population ATT: unit effects are Gamma(4, 1.5/4)
        df0, _ = _panel_2x2(2000 + s, effect=False)
        rej0.append(did(df0, outcome="y", treated="g", post="post", unit="u", time="t").p_value < 0.05)
    assert 0.92 <= np.mean(cover) <= 0.98
    assert np.mean(rej0) <= 0.06


@pytest.fixture(scope="module")
def simulator_study_table():
    """The simulator study of ``benchmarks/validation_did.py`` over seeds 0-319 (run once per module).

    The issue asks for at least 300 simulated campaigns; 320 is the documented study.
    """
    import importlib
    import sys
    from pathlib import Path

    # importable by name so the process pool's workers can unpickle its functions
    bench = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, bench)
    try:
        mod = importlib.import_module("validation_did")
        df = mod.simulator_study(range(320), workers=2)
        return mod.simulator_table(df).set_index("variant")
    finally:
        sys.path.remove(bench)


@pytest.mark.slow
def test_simulator_many_seed_coverage_and_bias(simulator_study_table):
    """``staggered_did`` (defaults, campaign window) on 320 simulated data sets against the truth."""
    tab = simulator_study_table
    best = tab.loc["weekday base (28 days), campaign window"]
    assert best["rollouts"] >= 300
    assert 0.92 <= best["coverage"] <= 0.98
    assert abs(best["bias_pct"]) < 5
    assert best["pretrend_reject"] <= 0.10
    assert best["rmse"] < tab.loc["universal base g-1, whole panel (old default)", "rmse"] / 2
    # the previous interval, within-cohort variance only, over-rejects on the same effect-free rollouts
    assert tab.loc["same, within-cohort variance (previous interval)", "false_positive"] > 0.10


@pytest.mark.slow
def test_simulator_many_seed_false_positive_rate(simulator_study_table):
    """Same rollouts simulated with ``effect_scale=0`` (same adoption schedule, no injected effect)."""
    best = simulator_study_table.loc["weekday base (28 days), campaign window"]
    assert best["false_positive"] <= 0.06
