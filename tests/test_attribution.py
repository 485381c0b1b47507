"""Tests of analysis.attribution (pinned seeds; the many-seed study is marked slow)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.attribution import attribute_followers, attribute_orders, follower_retention, sensitivity
from analysis.attribution import _engine as E
from analysis.attribution.toy import make_toy_data


@pytest.fixture(scope="module")
def toy():
    return make_toy_data(seed=3)


@pytest.fixture(scope="module")
def toy_fit(toy):
    tables, _ = toy
    return attribute_followers(tables, "C01", n_boot=300, seed=1)


def test_kernels_are_normalised_and_adstock_matches_numpy_convolution():
    x = np.random.default_rng(0).poisson(5.0, (80, 3)).astype(float)
    for k in E.candidate_kernels():
        assert k.weights.sum() == pytest.approx(1.0)
        ref = np.column_stack([np.convolve(x[:, j], k.weights)[:80] for j in range(3)])
        np.testing.assert_allclose(E.adstock(x, k), ref, atol=1e-9)
    assert E.weibull(3.0, 10.0).mean_lag > E.geometric(0.5).mean_lag


def test_vectorised_solve_equals_column_by_column_loop():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 8))
    Y = rng.normal(size=(120, 7))
    pen = np.r_[np.zeros(5, bool), np.ones(3, bool)]
    g = E.Gram(X, E.block_ids(120, 14) % 5)
    B = g.solve(Y, pen, 2.0)
    for j in range(7):
        ref = np.linalg.solve(X.T @ X + np.diag(np.where(pen, 2.0, 0) + 1e-9 * np.diag(X.T @ X)), X.T @ Y[:, j])
        np.testing.assert_allclose(B[:, j], ref, rtol=1e-8)


def test_total_covers_truth_with_small_bias(toy, toy_fit):
    _, truth = toy
    t = truth["followers"]["incremental"]
    assert toy_fit.ci_low <= t <= toy_fit.ci_high
    assert abs(toy_fit.incremental - t) / t < 0.08


def test_creator_shares_add_up_and_rank_the_big_creators(toy, toy_fit):
    from scipy import stats

    _, truth = toy
    by = toy_fit.by_creator
    assert by["incremental"].sum() == pytest.approx(toy_fit.incremental)
    assert by["share"].sum() == pytest.approx(1.0)
    assert (by["ci_low"] <= by["incremental"]).all() and (by["incremental"] <= by["ci_high"]).all()
    tv = pd.Series(truth["followers"]["by_creator"]).reindex(by["creator_id"]).to_numpy()
    # all creators: the model recovers the ordering of contributions
    assert stats.spearmanr(by["incremental"], tv)[0] > 0.8
    # per-post split adds up to the creator totals
    bp = toy_fit.by_post.groupby("creator_id")["incremental"].sum()
    np.testing.assert_allclose(bp.reindex(by["creator_id"]).to_numpy(), by["incremental"].to_numpy())


def test_null_campaign_interval_covers_zero():
    tables, truth = make_toy_data(seed=11, effect=0.0)
    assert truth["followers"]["incremental"] == 0
    fa = attribute_followers(tables, "C01", n_boot=300, seed=2)
    assert fa.ci_low <= 0 <= fa.ci_high


def test_results_block_is_json_safe_and_follows_the_contract(toy_fit):
    d = toy_fit.to_dict()
    json.dumps(d, allow_nan=False)
    assert {"incremental", "ci_low", "ci_high", "by_creator"} <= set(d)
    first = next(iter(d["by_creator"].values()))
    assert {"incremental", "ci_low", "ci_high"} <= set(first)
    assert d["ci_low"] <= d["incremental"] <= d["ci_high"]


def test_leader_probability_matches_the_normal_closed_form_and_simulation():
    # two estimates: P(X1 > X2) = Phi((m1 - m2) / sqrt(s1^2 + s2^2))
    p = E.leader_probability(np.array([10.0, 8.0]), np.array([2.0, 3.0]))
    assert p[0] == pytest.approx(stats.norm.cdf(2.0 / np.sqrt(13.0)), abs=1e-6)
    assert p.sum() == pytest.approx(1.0)
    # four, one of them a point mass: Monte Carlo reference (400,000 draws, standard error < 0.001)
    mu, sd = np.array([100.0, 90.0, 60.0, 95.0]), np.array([10.0, 20.0, 5.0, 0.0])
    draws = np.random.default_rng(0).normal(mu, sd, (400_000, 4))
    ref = np.bincount(draws.argmax(axis=1), minlength=4) / len(draws)
    np.testing.assert_allclose(E.leader_probability(mu, sd), ref, atol=0.004)
    # exact ties without uncertainty share; NaN anywhere gives NaN; bad input is refused
    np.testing.assert_allclose(E.leader_probability(np.array([3.0, 3.0, 1.0]), np.zeros(3)), [0.5, 0.5, 0.0])
    assert np.isnan(E.leader_probability(np.array([1.0, np.nan]), np.ones(2))).all()
    with pytest.raises(ValueError, match="0 or more"):
        E.leader_probability(np.array([1.0, 2.0]), np.array([1.0, -1.0]))


def test_creators_carry_the_chance_of_being_the_leader(toy, toy_fit):
    _, truth = toy
    by = toy_fit.by_creator
    assert by["p_top"].between(0, 1).all() and by["p_top"].sum() == pytest.approx(1.0)
    # the leader by point estimate has the largest chance, and the reading says how large
    assert by["p_top"].idxmax() == by["incremental"].idxmax()
    top = toy_fit.comparison().iloc[0]
    assert any(f"chance that {top['handle']} truly brought the most is {top['p_top']:.0%}" in r
               for r in toy_fit.reading())
    assert next(iter(toy_fit.to_dict()["by_creator"].values()))["p_top"] == pytest.approx(by["p_top"].iloc[0])


def test_leader_sentence_grades_the_lead_by_its_chance():
    from analysis.attribution.followers import _leader_sentence, _ranking_caution

    c = pd.DataFrame({"handle": ["@a", "@b", "@c"], "modelled_incremental": [500.0, 420.0, 300.0],
                      "ci_low": [380.0, 300.0, 150.0], "ci_high": [620.0, 540.0, 379.0], "p_top": [0.95, 0.04, 0.01]})
    assert _leader_sentence(c) == ["Given the estimates and their uncertainty, the chance that @a truly brought "
                                   "the most is 95% (next: @b, 4%): the lead is clear."]
    assert "likely, but not settled" in _leader_sentence(c.assign(p_top=[0.6, 0.3, 0.1]))[0]
    (text,) = _leader_sentence(c.assign(p_top=[0.4, 0.1, 0.5]))
    assert "the data do not settle who brought the most" in text and "(next: @c, 50%)" in text
    # without chances the overlap caution speaks instead
    assert _leader_sentence(c.assign(p_top=np.nan)) == [] and _ranking_caution(c)


def test_ranking_caution_names_creators_whose_intervals_reach_the_leader():
    from analysis.attribution.followers import _ranking_caution

    c = pd.DataFrame({"handle": ["@a", "@b", "@c", "@d"], "modelled_incremental": [500.0, 420.0, 300.0, 50.0],
                      "ci_low": [380.0, 300.0, 150.0, -20.0], "ci_high": [620.0, 540.0, 379.0, 120.0]})
    (text,) = _ranking_caution(c)
    assert text.startswith("The intervals of @b overlap @a's") and "@c" not in text and "@d" not in text
    c.loc[1, "ci_high"] = 370.0
    assert _ranking_caution(c) == ["@a's interval lies above every other creator's: the lead is clear."]
    assert _ranking_caution(c.iloc[:1]) == []
    assert _ranking_caution(c.assign(ci_low=np.nan)) == []


def test_daily_table_and_readings(toy_fit):
    d = toy_fit.daily
    w = d[d["in_window"]]
    assert w["incremental"].sum() == pytest.approx(toy_fit.incremental)
    np.testing.assert_allclose(w["observed"] - w["counterfactual"], w["incremental"])
    assert w["cumulative"].iloc[-1] == pytest.approx(toy_fit.incremental)
    assert (w["cum_ci_low"] <= w["cumulative"] + 1e-9).all()
    # the bands are the total's (kernel-averaged, calibrated) HAC interval day by day: the cumulative band
    # ends exactly on the total's interval, and every day has a proper band
    assert w["cum_ci_low"].iloc[-1] == pytest.approx(toy_fit.ci_low)
    assert w["cum_ci_high"].iloc[-1] == pytest.approx(toy_fit.ci_high)
    assert ((w["ci_low"] < w["incremental"]) & (w["incremental"] < w["ci_high"])).all()
    assert ((w["cum_ci_high"] - w["cum_ci_low"]) > 0).all() and d.loc[~d["in_window"], "cum_ci_low"].isna().all()
    text = " ".join(toy_fit.reading())
    assert "95% interval" in text
    assert "truly brought the most is" in text and any(v in text for v in (
        "the lead is clear", "likely, but not settled", "the data do not settle who brought the most"))
    comp = toy_fit.comparison()
    assert {"modelled_incremental", "reported_follows", "profile_view_share"} <= set(comp)
    assert toy_fit.summary().shape[0] == 1


def test_plots_return_axes(toy_fit):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3)
    assert toy_fit.plot(ax=axes[0]) is axes[0]
    assert toy_fit.plot_creators(ax=axes[1]) is axes[1]
    assert toy_fit.plot_cumulative(ax=axes[2]) is axes[2]
    assert len(axes[0].lines) >= 2
    # the campaign's faint shading is visible in the boxed legend's key
    key = dict(zip([t.get_text() for t in axes[0].get_legend().get_texts()], axes[0].get_legend().legend_handles))
    assert key["campaign"].get_alpha() >= 0.2 and axes[0].get_legend().get_frame_on()
    # the creators' labels carry their chance of being the top creator (the largest bar is last)
    top = toy_fit.by_creator.iloc[0]
    assert axes[1].get_yticklabels()[-1].get_text() == f"{top['handle']}  ({top['p_top']:.0%})"
    # counts read as 10k, 20k (not 10000, 20000); at most six ticks on the creators' axis
    fig.canvas.draw()
    ticks = [t.get_text() for t in axes[2].get_yticklabels() if t.get_text()]
    assert any(t.endswith("k") for t in ticks) and not any(len(t.replace("−", "-")) > 5 for t in ticks), ticks
    lo, hi = axes[1].get_xlim()
    assert sum(lo <= t <= hi for t in axes[1].get_xticks()) <= 7
    plt.close(fig)


def test_same_seed_same_answer(toy):
    tables, _ = toy
    a = attribute_followers(tables, "C01", n_boot=50, seed=5)
    b = attribute_followers(tables, "C01", n_boot=50, seed=5)
    assert a.to_dict() == b.to_dict()


def test_unknown_campaign_and_bad_alpha_raise_plain_errors(toy):
    tables, _ = toy
    with pytest.raises(ValueError, match="unknown campaign"):
        attribute_followers(tables, "NOPE", n_boot=0)
    with pytest.raises(ValueError, match="alpha"):
        attribute_followers(tables, "C01", n_boot=0, alpha=1.5)


def test_raw_post_metrics_give_the_same_answer_as_post_daily(toy):
    tables, _ = toy
    pdl = tables["post_daily"].sort_values(["post_id", "date"])
    cum = pdl.groupby("post_id")[["views", "profile_views", "follows", "link_clicks"]].cumsum()
    raw = {k: v for k, v in tables.items() if k != "post_daily"}
    raw["post_metrics"] = pd.concat([pdl[["post_id", "date"]], cum], axis=1)
    a = attribute_followers(tables, "C01", n_boot=0)
    b = attribute_followers(raw, "C01", n_boot=0)
    assert a.incremental == pytest.approx(b.incremental)


def test_orders_reconcile_direct_and_incremental(toy):
    from analysis.conversions import direct_summary

    tables, truth = toy
    ca = attribute_orders(tables, "C01", n_boot=200, seed=0)
    d = ca.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["direct"]["orders"] == direct_summary(tables, "C01").orders
    inc = d["incremental"]
    t = truth["conversions"]["incremental"]["orders"]
    assert inc["ci_low"] <= t <= inc["ci_high"]
    s = ca.summary().set_index("basis")
    assert s.loc["incremental", "roas"] == pytest.approx(inc["revenue"] / ca.cost)
    assert "orders" in ca.reconciliation() and "Return on ad spend:" in ca.reconciliation()
    # a collinear overlap of the orders is read with the two campaigns' combined orders
    import dataclasses

    assert "barely tell this campaign's orders" not in ca.reconciliation()
    split = {"C09": {"credit": -300.0, "correlation": -0.8, "combined": 900.0, "combined_ci_low": 700.0,
                     "combined_ci_high": 1100.0}}
    tied = dataclasses.replace(ca, orders=dataclasses.replace(ca.orders, overlapping={"C09": -300.0},
                                                              overlap_split=split))
    assert ("The data barely tell this campaign's orders from those of the overlapping campaign C09 (correlation "
            "-0.80), so the split between the two is fragile; together they brought about 900 (95% CI 700 to "
            "1,100).") in tied.reconciliation()
    # over- or understatement is claimed only when the incremental interval excludes the direct count
    d0 = ca.direct["orders"]

    def with_orders(est, lo, hi):
        return dataclasses.replace(ca, orders=dataclasses.replace(ca.orders, incremental=est * d0,
                                                                  ci_low=lo * d0, ci_high=hi * d0))

    assert "about 50% of directly attributed orders would probably have happened anyway" in \
        with_orders(0.5, 0.3, 0.7).reconciliation()
    assert "direct attribution understates it" in with_orders(1.5, 1.2, 1.8).reconciliation()
    spans = with_orders(0.8, 0.4, 1.2).reconciliation()
    assert "cannot tell whether direct attribution overstates or understates" in spans and "about 20%" in spans
    below = with_orders(-0.5, -0.8, -0.2).reconciliation()
    assert "the interval lies wholly below zero" in below and "read the incremental orders as unreliable" in below
    assert "would probably have happened anyway" not in below
    # chances of being the top creator are validated for followers only: empty for orders, and the
    # reading falls back on the overlap caution
    assert ca.orders.by_creator["p_top"].isna().all()
    assert not any("truly brought the most" in r for r in ca.orders.reading())


def test_revenue_and_new_customers_share_the_orders_carry_over():
    """On the demo data, fitting revenue with its own kernel picked a 16-day delay against 2 days for
    orders: incremental AOV came out at twice the true one and the new-customer share at 106%."""
    from analysis.simulate import generate

    tables, truth = generate(show_progress=False)  # the demo data set (default seed)
    ca = attribute_orders(tables, "C01", n_boot=200, seed=0)
    assert ca.revenue.kernel["label"] == ca.orders.kernel["label"] == ca.new_customer_orders.kernel["label"]
    t = truth["campaigns"]["C01"]["conversions"]
    assert ca.revenue.ci_low <= t["incremental"]["revenue"] <= ca.revenue.ci_high
    inc = ca.summary().set_index("basis").loc["incremental"]
    assert inc["new_customer_share"] == pytest.approx(t["new_customer_share_incremental"], abs=0.1)
    true_aov = t["incremental"]["revenue"] / t["incremental"]["orders"]
    assert inc["aov"] == pytest.approx(true_aov, rel=0.15)


def test_kernel_from_dict_round_trips_and_refuses_unknown_families(toy_fit):
    from analysis.attribution import _engine as E

    k = E.kernel_from_dict(toy_fit.kernel)
    assert k.label == toy_fit.kernel["label"]
    np.testing.assert_allclose(k.weights, toy_fit.kernel["lag_weights"])
    with pytest.raises(ValueError, match="unknown kernel family 'gamma'"):
        E.kernel_from_dict({"family": "gamma", "params": {}})


def test_retention_and_sensitivity_run(toy):
    tables, _ = toy
    r = follower_retention(tables, "C01")
    assert list(r.curve["horizon_days"]) == [30, 60, 90]
    assert 0 < r.baseline_daily_churn < 0.01       # the toy churn is 0.12% a day
    last = r.curve.iloc[-1]
    text = r.reading()
    assert text.startswith(f"90 days after the campaign started, {last['net_kept']:,.0f} of the "
                           f"{last['gained']:,.0f} incremental followers")
    assert f"lost {last['cohort_lost_rate']:.1%} of them against a baseline churn of " \
        f"{last['baseline_lost_rate']:.1%}" in text
    import dataclasses
    none = dataclasses.replace(r, curve=r.curve.assign(gained=0.0))
    assert none.reading().startswith("The campaign gained no incremental followers")
    assert r.curve["complete"].all() and r.to_dict()["curve"][0]["complete"] is True
    # a horizon the data do not cover is not read as if it were: the last complete one is
    cut = dataclasses.replace(r, curve=r.curve.assign(complete=[True, True, False]))
    assert cut.reading().startswith("60 days after the campaign started")
    none_full = dataclasses.replace(r, curve=r.curve.assign(complete=False))
    assert none_full.reading().startswith("90 days") and "lower bound on the losses" in none_full.reading()
    s = sensitivity(tables, "C01", leave_one_out=False).table
    assert s.loc[0, "scenario"] == "main" and s.loc[0, "change"] == 0
    assert len(s) == 7


def test_leave_one_creator_out_keeps_the_creators_follows_in_the_data(toy, toy_fit):
    """Leaving a creator's exposure out of the model keeps its follows in the data: on the toy data the
    total stays within the main interval (they are still credited to the campaign), although the top
    creator alone carries more than twice that interval's half-width; the result reads, plots and
    serialises."""
    tables, _ = toy
    s = sensitivity(tables, "C01")
    loo = s.leave_one_out()
    assert len(loo) == len(toy_fit.by_creator) and len(s.alternatives()) == 6
    main = s.table.iloc[0]
    assert main["incremental"] == pytest.approx(attribute_followers(tables, "C01", n_boot=0).incremental)
    half = (main["ci_high"] - main["ci_low"]) / 2
    big = loo.nlargest(3, "attributed")
    assert (big["change"].abs() < half).all(), big
    assert big["attributed"].iloc[0] > 2 * half  # not trivial: the top creator is large
    text = s.reading()
    assert "ranges from" in text and "the largest contributor" in text
    assert "still credited to the campaign" in text
    d = s.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["scenarios"][0]["scenario"] == "main" and d["range"][0] <= d["range"][1]
    ax = s.plot()
    assert len(ax.get_yticklabels()) == len(s.table)
    assert s.summary().loc[loo.index, "detail"].str.startswith("without ").all()


@pytest.mark.parametrize(("change", "words"), [(-50.0, "still credited to the campaign"),
                                              (-900.0, "the baseline then absorbs them"),
                                              (700.0, "the other creators' response rises")])
def test_sensitivity_reading_says_what_leaving_the_top_creator_out_means(change, words):
    from analysis.attribution import SensitivityResult

    t = pd.DataFrame({"scenario": ["main", "kernel", "leave one creator out", "leave one creator out"],
                      "detail": ["", "weibull only", "A", "B"], "incremental": [1000.0, 800.0, 1000 + change, 990.0],
                      "ci_low": [800.0, 600.0, 0.0, 0.0], "ci_high": [1200.0, 1000.0, 0.0, 0.0],
                      "change": [0.0, -200.0, change, -10.0], "change_pct": [0.0, -0.2, change / 1000, -0.01],
                      "kernel": "k", "attributed": [np.nan, np.nan, 900.0, 20.0]})
    text = SensitivityResult("C1", t, {"A": "anna"}).reading()
    assert "ranges from 800 (kernel: weibull only, -20%) to 800" in text
    assert "1 of 1 alternatives fall inside the main 95% interval" in text
    assert "Leaving anna, the largest contributor (900 attributed)" in text and words in text


def test_sensitivity_reading_sets_undetermined_alternatives_apart_and_weighs_the_top_creator_by_its_credit():
    """Demo C03's numbers: a 60-day baseline window gave 48,074 (interval -151,863 to 248,012, 118 times as
    wide as the main one); it is named apart, not quoted as the top of the range, and left out of the plot's
    scale. Leaving the top creator (482 attributed) out moved the total by -1,223: more than its own credit,
    so the baseline absorbed its follows, even though the change is within the main interval's half-width."""
    from analysis.attribution import SensitivityResult

    t = pd.DataFrame({"scenario": ["main", "kernel", "baseline window", "leave one creator out"],
                      "detail": ["", "weibull only", "60 days either side", "A"],
                      "incremental": [758.0, 211.0, 48074.0, -465.0],
                      "ci_low": [-931.0, -1414.0, -151863.0, -1014.0], "ci_high": [2447.0, 1836.0, 248012.0, 85.0],
                      "change": [0.0, -547.0, 47316.0, -1223.0], "change_pct": [0.0, -0.72, 62.4, -1.61],
                      "kernel": "k", "attributed": [np.nan, np.nan, np.nan, 482.0]})
    s = SensitivityResult("C1", t, {"A": "anna"})
    text = s.reading()
    assert "ranges from 211 (kernel: weibull only, -72%) to 211" in text and "48,074 is left out" in text
    assert "With baseline window: 60 days either side the data do not determine the total" in text
    assert "118 times as wide" in text
    assert "changes the total by -1,223 (-161%): the baseline then absorbs them" in text
    assert "still credited" not in text and "within the main interval's half-width, 1,689" in text
    d = s.to_dict()
    assert d["range"] == [211.0, 211.0] and d["undetermined"] == ["baseline window: 60 days either side"]
    ax = s.plot()
    assert ax.get_xlim()[1] < 10_000 and any("off scale: 48,074" in x.get_text() for x in ax.texts)


def test_simulated_campaign_from_raw_tables():
    from analysis.simulate import generate

    tables, truth = generate(seed=3, campaigns=2, days=240, show_progress=False)
    cid = next(iter(truth["campaigns"]))
    fa = attribute_followers(tables, cid, n_boot=200)
    t = truth["campaigns"][cid]["followers"]["incremental"]
    assert fa.ci_low - 0.25 * abs(t) <= t <= fa.ci_high + 0.25 * abs(t)
    assert set(fa.by_creator["creator_id"]) <= set(tables["contracts"]["creator_id"].astype(str))


# ---------------------------------------------------------------------------- statistical machinery


def test_hac_covariance_matches_statsmodels_newey_west():
    """The sandwich of a least-squares coefficient equals statsmodels' HAC (Bartlett) covariance."""
    import statsmodels.api as sm

    rng = np.random.default_rng(4)
    n = 200
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n)])
    e = np.zeros(n)
    for t in range(1, n):
        e[t] = 0.6 * e[t - 1] + rng.normal()
    y = X @ np.array([1.0, 2.0, -1.0]) + e
    fit = sm.OLS(y, X).fit(cov_type="HAC", cov_kwds={"maxlags": 7, "use_correction": False})
    F = X @ np.linalg.inv(X.T @ X)                  # coefficient j = F[:, j] @ y
    ours = E.hac_cov(F, fit.resid, 7)
    np.testing.assert_allclose(ours, fit.cov_params(), rtol=1e-10)


def test_kernel_weights_favour_the_better_held_out_fit():
    from scipy import stats

    w = E.kernel_weights(np.array([1.00, 1.001, 1.2]), n=300)
    assert w.sum() == pytest.approx(1.0)
    assert w[0] > w[1] > w[2] and w[2] == 0.0
    # no placebo at all (the data too short to place one): the cap, the rule's limit at one degree of freedom
    assert E.calibration_factor(np.zeros(0)) == E.CALIBRATION_CAP == E.calibration_factor(np.array([1.0]), cap=4.0)
    assert E.calibration_factor(np.array([np.nan]), cap=3.0) == 3.0
    assert E.calibration_factor(np.array([0.01, -0.02])) == 1.0        # never narrower than the HAC interval
    # root mean square of the placebo z-values with a Student quantile: independent placebos, nu = n - 1
    z = np.array([3.0, -3.0, 3.0])
    assert E.calibration_factor(z, cap=10) == pytest.approx(stats.t.ppf(0.975, 2) * 3.0 / stats.norm.ppf(0.975))
    assert E.calibration_factor(z) == 4.0                               # capped
    # overlapping placebo windows: overlapping-batch-means degrees of freedom, 1.5 (N / b - 1)
    assert E.placebo_dof(33, 60) == pytest.approx(1.5 * (33 * 7 / 60 - 1))
    assert E.placebo_dof(3, 60) == 1.0
    # the days a window needs for two placebo degrees of freedom: enough with them, not with a week fewer
    for lw in (41, 59, 149):
        need = E.placebo_days_needed(lw)
        fits = [len(range(lw + E.PLACEBO_MARGIN, n - lw - E.PLACEBO_MARGIN + 1, E.PLACEBO_STEP))
                for n in (need, need - E.PLACEBO_STEP)]
        assert E.placebo_dof(fits[0], lw) >= E.WEAK_CALIBRATION_DOF > E.placebo_dof(fits[1], lw)
    z = np.linspace(-2.0, 2.0, 33)
    nu = E.placebo_dof(33, 60)
    assert E.calibration_factor(z, window_days=60) == pytest.approx(
        stats.t.ppf(0.975, nu) * np.sqrt(np.mean(z ** 2)) / stats.norm.ppf(0.975))
    assert E.calibration_factor(z, alpha=0.5, window_days=60) == pytest.approx(
        max(1.0, stats.t.ppf(0.75, nu) * np.sqrt(np.mean(z ** 2)) / stats.norm.ppf(0.75)))


def test_placebo_calibration_covers_a_window_sum_of_persistent_noise():
    """The calibration rule on its own: AR(1) noise (rho 0.85), a 60-day window sum standardised by a
    naive (independent-days) standard error that is far too small, placebo windows every 7 days that do
    not overlap it. The calibrated 95% interval covers zero in about 95% of 3,000 series; taking the
    placebos as independent (nu = n - 1) covers visibly less."""
    rng = np.random.default_rng(7)
    n_rep, n, lw, rho = 3000, 365, 60, 0.85
    e = rng.standard_normal((n_rep, n))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0] / np.sqrt(1 - rho ** 2)
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + e[:, t]
    csum = np.concatenate([np.zeros((n_rep, 1)), np.cumsum(np.concatenate([x, x], axis=1), axis=1)], axis=1)
    start = rng.integers(0, n, n_rep)                               # the real window, anywhere (circular)
    naive_se = x.std(axis=1) * np.sqrt(lw)
    real = (csum[np.arange(n_rep), start + lw] - csum[np.arange(n_rep), start]) / naive_se
    shifts = np.arange(lw + 7, n - lw - 7 + 1, 7)
    ps = (start[:, None] + shifts[None, :]) % n
    plac = (np.take_along_axis(csum, ps + lw, axis=1) - np.take_along_axis(csum, ps, axis=1)) / naive_se[:, None]
    z95 = stats.norm.ppf(0.975)
    obm = np.array([E.calibration_factor(p, window_days=lw) for p in plac]) * z95
    indep = np.array([E.calibration_factor(p) for p in plac]) * z95
    cov_obm, cov_indep = np.mean(np.abs(real) <= obm), np.mean(np.abs(real) <= indep)
    assert 0.935 <= cov_obm <= 0.975, cov_obm
    assert cov_indep < cov_obm - 0.02, (cov_indep, cov_obm)


def test_every_kernel_family_interval_covers_the_truth_where_the_split_is_fragile():
    """Seed 2, C01 overlaps a far larger campaign: the families' point totals differ, and each one's
    interval (HAC, placebo-calibrated) says so by covering the truth; the average is between them."""
    from analysis.simulate import generate

    tables, truth = generate(seed=2, campaigns=3, days=365, show_progress=False)
    g = attribute_followers(tables, "C01", n_boot=0, kernels=("geometric",))
    w = attribute_followers(tables, "C01", n_boot=0, kernels=("weibull",))
    both = attribute_followers(tables, "C01", n_boot=0)
    t = truth["campaigns"]["C01"]["followers"]["incremental"]
    for fa in (g, w, both):
        assert fa.ci_low <= t <= fa.ci_high
    assert min(g.incremental, w.incremental) - 1 <= both.incremental <= max(g.incremental, w.incremental) + 1
    assert abs(sum(both.kernel["weights"].values()) - 1) < 1e-9


def test_order_exposure_is_each_creators_tagged_sessions(sim_seed2):
    from analysis.attribution._data import build_panel
    from analysis.attribution.conversions import click_exposure

    tables, _ = sim_seed2
    panel = build_panel(tables, "C01")
    X, basis = click_exposure(tables, panel)
    assert basis == "sessions" and X.shape == panel.views.shape and (X >= 0).all()
    web, con = tables["web_sessions_daily"], tables["contracts"]
    k = con[(con["campaign_id"] == "C01")].iloc[0]
    want = web.loc[(web["utm_content"] == k["utm_content"]) & (web["utm_campaign"] == "C01"), "sessions"].sum()
    j = int(np.nonzero(((panel.units["campaign_id"] == "C01") & (panel.units["creator_id"] == str(k["creator_id"])))
                       .to_numpy())[0][0])
    assert X[:, j].sum() == pytest.approx(want)


def test_visit_weights_are_bounded_and_follow_profile_views(sim_seed2):
    from analysis.attribution._data import build_panel
    from analysis.attribution.followers import visit_weights

    tables, _ = sim_seed2
    panel = build_panel(tables, "C02")
    w, info = visit_weights(panel)
    assert info["used"] and len(w) == panel.views.shape[1]
    assert ((w >= 0.2) & (w <= 5.0)).all() and np.isfinite(w).all()
    flat = {k: v.drop(columns=["profile_views"]) if k == "brand_account_daily" else v for k, v in tables.items()}
    w0, info0 = visit_weights(build_panel(flat, "C02"))
    assert not info0["used"] and (w0 == 1).all()


def test_holiday_controls_mark_each_season_week_once():
    from analysis.attribution._data import holiday_controls

    dates = pd.date_range("2025-01-06", periods=365, freq="D")
    H, names = holiday_controls(dates)
    assert H.shape == (365, len(names)) and set(np.unique(H)) <= {0.0, 1.0}
    assert H.sum(axis=1).max() == 1                       # the weeks do not overlap
    on = pd.Series(H.sum(axis=1) > 0, index=dates)
    assert on[pd.Timestamp("2025-11-28")] and on[pd.Timestamp("2025-12-24")] and on[pd.Timestamp("2026-01-05")]
    assert not on[: pd.Timestamp("2025-11-12")].any()     # 6-7 Jan 2025: two days only, left out
    assert names[0] == "holiday_2025_11_13" and len(names) == 8
    assert holiday_controls(pd.date_range("2025-03-01", periods=90, freq="D"))[0].shape == (90, 0)


def test_autumn_campaign_orders_are_not_understated_by_the_holiday_peak():
    """Seed 1001, C03 runs in September-October: without the holiday weeks the trend tilts towards the
    December peak, over-predicts the autumn and puts the incremental orders below zero."""
    from analysis.simulate import generate

    tables, truth = generate(seed=1001, campaigns=3, days=365, show_progress=False)
    t = truth["campaigns"]["C03"]["conversions"]["incremental"]["orders"]
    on = attribute_orders(tables, "C03", n_boot=0, outcomes=("orders",)).orders
    off = attribute_orders(tables, "C03", n_boot=0, outcomes=("orders",), holidays=False).orders
    assert abs(on.incremental - t) < 0.5 * abs(off.incremental - t)
    assert on.ci_low <= t <= on.ci_high


@pytest.fixture(scope="module")
def sim_seed2():
    from analysis.simulate import generate

    return generate(seed=2, campaigns=3, days=365, show_progress=False)


def test_pinned_simulator_seeds_cover_the_truth(sim_seed2):
    tables, truth = sim_seed2
    for cid, tr in truth["campaigns"].items():
        fa = attribute_followers(tables, cid, n_boot=50, seed=0)
        t = tr["followers"]["incremental"]
        assert fa.ci_low <= t <= fa.ci_high, (cid, fa.incremental, fa.ci_low, fa.ci_high, t)
        assert fa.kernel["calibration"] >= 1.0 and fa.kernel["placebos"] > 0


def test_pinned_seed_revenue_and_new_customer_intervals_cover_the_truth(sim_seed2):
    tables, truth = sim_seed2
    for cid, tr in truth["campaigns"].items():
        ca = attribute_orders(tables, cid, n_boot=50, seed=0)
        c = tr["conversions"]
        new = c["new_customer_share_incremental"] * c["incremental"]["orders"]
        assert ca.revenue.ci_low <= c["incremental"]["revenue"] <= ca.revenue.ci_high, cid
        assert ca.new_customer_orders.ci_low <= new <= ca.new_customer_orders.ci_high, cid


def test_validation_rows_for_revenue_and_new_customers(benchmark_script):
    """The summary rows judge coverage and bias of revenue and new-customer orders against their targets."""
    mod = benchmark_script("validation_attribution")
    rng = np.random.default_rng(0)
    truth = rng.uniform(1e4, 1e5, 400)

    def rows(half_width: float, shift: float) -> dict:
        est = truth * (1 + shift) + rng.normal(0, 0.1, 400) * truth
        o = pd.DataFrame({"r_est": est, "r_lo": est - half_width * truth, "r_hi": est + half_width * truth,
                          "r_true": truth, "n_est": est / 50, "n_lo": (est - half_width * truth) / 50,
                          "n_hi": (est + half_width * truth) / 50, "n_true": truth / 50,
                          "share_est": 0.6, "share_true": 0.65, "aov_est": 45.0, "aov_true": 50.0,
                          "orders_clear": True})
        return {r["check"]: r for r in mod._per_order_summary(o)}

    good, bad = rows(0.196, 0.0), rows(0.05, 0.1)
    for what in ("revenue", "new-customer orders"):
        assert good[f"{what}: 95% interval covers the truth"]["met"]
        assert good[f"{what}: aggregate bias"]["met"]
        assert not bad[f"{what}: 95% interval covers the truth"]["met"]
        assert not bad[f"{what}: aggregate bias"]["met"]
    share = next(v for k, v in good.items() if "new-customer share" in k)
    assert share["measured"] == "0.050 (0%)"
    assert next(v for k, v in good.items() if "AOV" in k)["measured"] == "10.0%"


def test_validation_rows_for_sparse_exports(benchmark_script):
    """Weekly exports are held to the daily rows' targets; exports with one snapshot per post are reported only."""
    mod = benchmark_script("validation_attribution")
    rng = np.random.default_rng(1)
    truth = rng.uniform(1e3, 1e4, 300)
    ok = pd.DataFrame({"f_true": truth})
    for k, shift in (("w", 0.0), ("t", 0.3), ("e", 0.0)):
        est = truth * (1 + shift) + rng.normal(0, 0.05, 300) * truth
        ok[f"{k}_est"], ok[f"{k}_lo"], ok[f"{k}_hi"] = est, est - 0.1 * truth, est + 0.1 * truth
        ok[f"{k}_rho"] = 0.7
    rows = {r["check"]: r for r in mod._sparse_rows(ok)}
    assert len(rows) == 9
    weekly = [r for c, r in rows.items() if "weekly" in c]
    assert [r["met"] for r in weekly] == [True, True, None]
    once = [r for c, r in rows.items() if "exported once" in c]
    assert len(once) == 6 and all(r["met"] is None and r["target"] == "(report)" for r in once)
    (t_bias,) = [r for c, r in rows.items() if "its last metrics day" in c and "bias" in c]
    assert 28 < float(t_bias["measured"].split("%")[0]) < 32  # the shifted estimates are read as biased
    assert mod._sparse_rows(pd.DataFrame({"f_true": truth})) == []


def test_a_short_export_is_widened_by_the_cap_and_says_why():
    """The brand's daily series exported for four months around the campaign leave no room for a placebo
    window: the interval is widened by the calibration's cap (it then covers the truth, which the HAC
    interval alone misses on this pinned seed), a warning says why and how many days would calibrate it, and
    the post-mortem lists it; the same campaign on a year of data is calibrated by its placebos."""
    from analysis.attribution.followers import WEAK_CALIBRATION_PHRASE
    from analysis.simulate import build_core, short_exports

    world = build_core(campaigns=3, days=365, seed=7)
    short = short_exports(world.tables, "C01", before=30, after=56)
    camp = world.tables["campaigns"].set_index("campaign_id").loc["C01"]
    days = pd.to_datetime(short["brand_account_daily"]["date"])
    assert days.min() == pd.Timestamp(camp["start_date"]) - pd.Timedelta(days=30)
    assert days.max() == pd.Timestamp(camp["end_date"]) + pd.Timedelta(days=56)
    assert len(world.tables["brand_account_daily"]) == 365 and short["posts"] is world.tables["posts"]
    truth = world.truth["campaigns"]["C01"]["followers"]["incremental"]
    fa = attribute_followers(short, "C01", n_boot=0)
    assert fa.kernel["placebos"] == 0 and fa.kernel["calibration"] == E.CALIBRATION_CAP
    assert fa.ci_low <= truth <= fa.ci_high
    mid, half = (fa.ci_low + fa.ci_high) / 2, (fa.ci_high - fa.ci_low) / 2
    assert fa.incremental == pytest.approx(mid)
    assert not mid - half / E.CALIBRATION_CAP <= truth <= mid + half / E.CALIBRATION_CAP  # HAC alone misses
    (warn,) = [w for w in fa.warnings if WEAK_CALIBRATION_PHRASE in w]
    assert "none fits beside the 59-day window in 117 days of the brand account's daily data" in warn
    assert "about 265 days of the brand account's daily data" in warn
    assert attribute_followers(short, "C01", n_boot=0).to_dict()["warnings"] == list(fa.warnings)
    full = attribute_followers(world.tables, "C01", n_boot=0)
    assert full.kernel["placebos"] > 20 and 1.0 < full.kernel["calibration"] < E.CALIBRATION_CAP
    assert not any(WEAK_CALIBRATION_PHRASE in w for w in full.warnings)
    # a few placebos with under two degrees of freedom are also capped and warned; without calibration, none
    longer = attribute_followers(short_exports(world.tables, "C01", before=90, after=90), "C01", n_boot=0)
    assert 0 < longer.kernel["placebos"] < 20 and any(WEAK_CALIBRATION_PHRASE in w for w in longer.warnings)
    assert "only" in next(w for w in longer.warnings if WEAK_CALIBRATION_PHRASE in w)
    with pytest.raises(ValueError, match="before and after"):
        short_exports(world.tables, "C01", before=-1)
    with pytest.raises(ValueError, match="unknown campaign 'C99'"):
        short_exports(world.tables, "C99")


def test_weekly_brand_totals_are_refused_with_the_rule():
    """Brand rows a week (or a month) apart hold totals the model would read as single days: refused with
    the table, column and rule; a daily series with days missing is still read (with its gaps named)."""
    from analysis.attribution._data import BrandDataUnusable, NotDailyData
    from analysis.simulate import build_core

    world = build_core(campaigns=3, days=365, seed=7)
    daily = world.tables["brand_account_daily"].assign(date=lambda d: pd.to_datetime(d["date"]))
    sums = {c: "sum" for c in ("new_followers", "lost_followers", "profile_views", "video_views")}
    for freq in ("W-SUN", "MS"):
        agg = (daily.set_index("date").resample(freq)
               .agg({"brand_account": "first", "followers": "last", **sums}).reset_index())
        with pytest.raises(NotDailyData, match=r"brand_account_daily, column date: its \d+ rows .* are a median "
                                               r"\d+ days apart; rule: one row per day") as exc:
            attribute_followers({**world.tables, "brand_account_daily": agg}, "C01", n_boot=0)
        assert isinstance(exc.value, BrandDataUnusable) and isinstance(exc.value, ValueError)
    gappy = daily[daily["date"].dt.day_of_week != 2]          # every Wednesday missing: still daily rows
    fa = attribute_followers({**world.tables, "brand_account_daily": gappy}, "C01", n_boot=0)
    assert any("has no new_followers on" in w for w in fa.warnings)


def test_posts_that_went_live_before_the_start_or_after_the_end_are_named():
    """Views before a campaign's start_date (creators posting early) or after its end plus tail (posting
    late) bring follows the window does not count: a warning gives their share and the fix; the simulator's
    own dates raise neither."""
    from analysis.simulate import build_core

    world = build_core(campaigns=3, days=365, seed=7)
    plain = attribute_followers(world.tables, "C01", n_boot=0)
    assert not any("of the campaign posts' views came" in w for w in plain.warnings)
    camp = world.tables["campaigns"]
    c01 = camp["campaign_id"] == "C01"
    for col, days, says in (("start_date", 7, r"before the campaign's start_date \(.*; \d+ posts? went live up "
                                               r"to [1-7] days early\)"),
                            ("end_date", -40, r"after the campaign's end plus its tail \(.*; \d+ posts? went live "
                                              r"after the end_date\)")):
        moved = camp.assign(**{col: camp[col].where(~c01, pd.to_datetime(camp[col]) + pd.Timedelta(days=days))})
        fa = attribute_followers({**world.tables, "campaigns": moved}, "C01", n_boot=0)
        (warn,) = [w for w in fa.warnings if "of the campaign posts' views came" in w]
        share = float(warn.split("%")[0])
        assert re.search(says, warn) and "not counted" in warn and 1 < share < 100, warn


def test_an_uncalibrated_run_keeps_the_hac_interval():
    """``calibrate=False`` (the engine's placebo fits and the sensitivity's quick fits) keeps factor 1 and
    claims no weak calibration, even where no placebo would fit."""
    from analysis.attribution._data import build_panel
    from analysis.attribution.followers import make_spec
    from analysis.simulate import build_core, short_exports

    world = build_core(campaigns=3, days=365, seed=7)
    panel = build_panel(short_exports(world.tables, "C01", before=30, after=56), "C01")
    spec = make_spec(panel, panel.brand["new_followers"].to_numpy(float))
    res = E.run(spec, kernels=[E.geometric(0.5)], n_boot=0, calibrate=False)
    assert res.calibration == 1.0 and len(res.placebo_z) == 0 and not E.weak_calibration(res)
    cal = E.run(spec, kernels=[E.geometric(0.5)], n_boot=0)
    assert cal.calibration == E.CALIBRATION_CAP and E.weak_calibration(cal)
    assert cal.total_se == pytest.approx(E.CALIBRATION_CAP * res.total_se)
    # the warning names the data it needs more of: the account's daily data, or the daily orders
    from analysis.attribution.followers import _weak_calibration_warning

    assert "117 days of the brand account's daily data" in _weak_calibration_warning(cal, "new followers")
    orders = _weak_calibration_warning(cal, "orders")
    assert "117 days of daily orders" in orders and "about 265 days of daily orders" in orders


def test_validation_rows_for_short_exports(benchmark_script):
    """Short exports are held to coverage (they may be conservative) and report the uncalibrated coverage."""
    mod = benchmark_script("validation_attribution")
    rng = np.random.default_rng(2)
    truth = rng.uniform(1e3, 1e4, 200)
    ok = pd.DataFrame({"f_true": truth, "f_lo": truth * 0.8, "f_hi": truth * 1.2})
    null = pd.DataFrame({"seed": range(50)})
    for k, _, _ in mod.SHORT:
        est = truth * (1 + rng.normal(0, 0.1, 200))
        ok[f"{k}_est"], ok[f"{k}_lo"], ok[f"{k}_hi"] = est, est - 0.4 * truth, est + 0.4 * truth
        ok[f"{k}_raw_lo"], ok[f"{k}_raw_hi"] = est - 0.1 * truth, est + 0.1 * truth
        ok[f"{k}_placebos"], ok[f"{k}_weak"] = 0, 1.0
        null[f"{k}_lo"], null[f"{k}_hi"] = np.where(np.arange(50) < 45, -1.0, 1.0), 2.0
    rows = mod._short_summary(ok, null)
    assert len(rows) == 4 * len(mod.SHORT)
    cov = [r for r in rows if "covers the truth" in r["check"]]
    assert all(r["met"] and r["measured"].startswith("100.0% (") for r in cov)
    raw = float(cov[0]["measured"].split("(")[1].rstrip("%)"))
    assert 60 < raw < 80                                       # the narrow intervals miss a third
    nulls = [r for r in rows if r["check"].startswith("null campaign")]
    assert all(r["measured"] == "90.0%" and not r["met"] for r in nulls)
    widths = [r for r in rows if "warned" in r["check"]]
    assert all(r["measured"] == "100% (0; 2.00x)" for r in widths)
    assert mod._short_summary(pd.DataFrame({"f_true": truth}), null) == []


def test_simulator_null_campaign_covers_zero():
    from analysis.simulate import generate

    tables, truth = generate(seed=10_003, campaigns=3, days=365, show_progress=False, effect_scale=0.0)
    assert all(tr["followers"]["incremental"] == 0 for tr in truth["campaigns"].values())
    assert all(tr["conversions"]["incremental"]["orders"] == 0 for tr in truth["campaigns"].values())
    covered = [attribute_followers(tables, cid, n_boot=0).ci_low <= 0 <= attribute_followers(
        tables, cid, n_boot=0).ci_high for cid in truth["campaigns"]]
    assert sum(covered) >= 2


def test_retention_does_not_charge_an_overlapping_campaigns_unfollows(sim_seed2):
    """Seed 2: C01 overlaps the far larger C02. C01's excess unfollows stay near the truth's losses
    (within a factor of three), far below C02's, and its net followers kept are its gain less them.
    (C01's gain itself is uncertain: its interval is wider than its truth, so its sign is not asserted.)"""
    tables, truth = sim_seed2
    r = follower_retention(tables, "C01")
    c = r.curve.set_index("horizon_days")
    lost = truth["campaigns"]["C01"]["followers"]["lost_within_60d"]
    assert lost / 3 <= c.loc[90, "excess_lost"] <= 3 * lost
    np.testing.assert_allclose(c["net_kept"], c["gained"] - c["excess_lost"])
    assert c.loc[90, "gained"] == pytest.approx(attribute_followers(tables, "C01", n_boot=0).incremental)
    big = follower_retention(tables, "C02").curve.set_index("horizon_days")
    lost2 = truth["campaigns"]["C02"]["followers"]["lost_within_60d"]
    assert abs(big.loc[90, "excess_lost"] - lost2) / lost2 < 0.25
    assert c.loc[90, "excess_lost"] < 0.1 * big.loc[90, "excess_lost"]
    json.dumps(r.to_dict(), allow_nan=False)
    assert r.split["campaigns"][:2] == ["C01", "C02"] and 0 < r.split["loss_rate"] < 1


def test_retention_split_recovers_each_campaigns_unfollows_from_a_kernel_outside_its_family():
    """Two overlapping campaigns (one 20 times the other) lose 20% of their follows through a Weibull
    delay that is not among the basis kernels; each is charged its own unfollows, not the other's."""
    from scipy import stats

    from analysis.attribution.retention import _carry_over, split_excess_unfollows, unfollow_kernels

    rng = np.random.default_rng(5)
    days = np.arange(200)
    small = np.where((days >= 40) & (days < 70), 100.0, 0.0)
    big = 60000.0 * stats.norm.pdf(days, 75, 6)    # starts later: a flat trailing share charges small ~2x
    follows = np.column_stack([small, big])
    w = np.diff(stats.weibull_min.cdf(np.arange(62), 1.6, scale=14.0))
    true = 0.2 * _carry_over(follows, w / w.sum())
    excess = true.sum(axis=1) + rng.normal(0, 15, len(days))
    charged, info = split_excess_unfollows(excess, follows, days >= 30, max_lag=60)
    assert charged.shape == follows.shape and (charged >= 0).all()
    np.testing.assert_allclose(charged.sum(axis=0), true.sum(axis=0), rtol=0.1)
    assert info["loss_rate"] == pytest.approx(0.2, rel=0.1)
    assert 8 < info["mean_lag_days"] < 18          # the Weibull's mean lag is 12.1 days
    assert sum(info["kernel"].values()) == pytest.approx(1.0)
    assert all(k.sum() == pytest.approx(1.0) for _, k in unfollow_kernels(60))
    none, info0 = split_excess_unfollows(excess, np.zeros_like(follows), days >= 30, max_lag=60)
    assert (none == 0).all() and info0["loss_rate"] == 0


def test_retention_separates_two_large_overlapping_campaigns():
    """Seed 22: C01 (60k incremental) and C02 (323k) run at the same time; each one's excess
    unfollows at 90 days are within 25% of its own losses (a flat 60-day share gave C01 2.5 times)."""
    from analysis.simulate import generate

    tables, truth = generate(seed=22, campaigns=3, days=365, show_progress=False)
    for cid in ("C01", "C02"):
        r = follower_retention(tables, cid)
        lost = truth["campaigns"][cid]["followers"]["lost_within_60d"]
        est = r.curve.set_index("horizon_days").loc[90, "excess_lost"]
        assert abs(est - lost) / lost < 0.25, (cid, est, lost)


def test_unfollow_spikes_flag_one_day_purges_not_a_cohort_leaving_over_weeks():
    from analysis.attribution.retention import unfollow_spikes

    rng = np.random.default_rng(3)
    base = rng.poisson(50, 200).astype(float)
    assert not unfollow_spikes(base).any()
    purge = base.copy()
    purge[120] += 3000
    purge[40] = np.nan                                   # a missing day is neither flagged nor in the way
    assert list(np.nonzero(unfollow_spikes(purge))[0]) == [120]
    # a campaign's cohort leaving: lost followers rise to five times the usual over three weeks and fall back
    ramp = base + np.interp(np.arange(200), [60, 80, 100], [0, 200, 0]) + rng.poisson(5, 200)
    assert not unfollow_spikes(ramp).any()
    # two purges a few days apart are both found (each is left out of the other's yardstick)
    two = base.copy()
    two[[90, 93]] += 2000
    assert list(np.nonzero(unfollow_spikes(two))[0]) == [90, 93]


def test_a_purge_of_followers_is_not_charged_to_the_campaigns_cohort():
    """A platform purge (3,000 accounts removed on one day after the campaign) was read as the campaign's
    cohort leaving (98.9% of it lost within 90 days); the spike is named and left out, and the cohort's
    excess unfollows stay near those without the purge."""
    from analysis.attribution.retention import SPIKE_PHRASE
    from analysis.simulate import generate

    tables, _ = generate(seed=21, campaigns=3, days=365, show_progress=False)
    fa = attribute_followers(tables, "C02", n_boot=0)
    plain = follower_retention(tables, "C02", followers=fa)
    assert not any(SPIKE_PHRASE in w for w in plain.warnings)
    b = tables["brand_account_daily"].copy()
    day = pd.Timestamp(fa.campaign_end) + pd.Timedelta(days=20)
    b.loc[pd.to_datetime(b["date"]) == day, "lost_followers"] += 3000
    b.loc[pd.to_datetime(b["date"]) >= day, "followers"] -= 3000
    purged = {**tables, "brand_account_daily": b}
    ret = follower_retention(purged, "C02", followers=attribute_followers(purged, "C02", n_boot=0))
    (warn,) = [w for w in ret.warnings if SPIKE_PHRASE in w]
    assert f"{day:%d %b %Y}: 3," in warn and "left out" in warn
    ex = ret.curve.set_index("horizon_days")["excess_lost"]
    ref = plain.curve.set_index("horizon_days")["excess_lost"]
    assert (ex / ref).between(0.8, 1.25).all(), (ex, ref)
    assert ret.curve.set_index("horizon_days").loc[90, "cohort_lost_rate"] < 0.3


@pytest.mark.slow
def test_retention_many_seeds_charges_each_campaign_its_own_unfollows():
    """30 seeds x 3 campaigns: excess unfollows at 90 days against each campaign's lost followers."""
    from analysis.simulate import generate

    ratios = []
    for seed in range(30):
        tables, truth = generate(seed=seed, campaigns=3, days=365, show_progress=False)
        for cid, tr in truth["campaigns"].items():
            est = follower_retention(tables, cid).curve.set_index("horizon_days").loc[90, "excess_lost"]
            ratios.append(est / tr["followers"]["lost_within_60d"])
    r = np.array(ratios)
    assert 0.8 <= np.median(r) <= 1.25
    assert np.mean((r >= 0.5) & (r <= 2.0)) >= 0.8


@pytest.mark.slow
def test_many_seed_validation_targets(benchmark_script):
    """The validation study's targets (see docs/validation_attribution.md)."""
    mod = benchmark_script("validation_attribution")
    sim = pd.DataFrame([r for s in range(1, 201) for r in mod.one_sim(s)])
    null = pd.DataFrame([r for s in range(1, 201) for r in mod.one_null(s)])
    table, _ = mod.summarise(sim, null)
    failed = table[table["met"] == False]  # noqa: E712
    assert failed.empty, failed.to_string()


def test_leader_calibration_rows_detect_over_confident_chances(benchmark_script):
    """The validation's calibration of ``p_top`` on synthetic campaigns whose truths are drawn around the
    estimates with the stated standard errors (calibrated by construction) and with errors twice as large
    (chances over-confident): the first meets both targets, the second fails the calibration gap."""
    mod = benchmark_script("validation_attribution")
    rng = np.random.default_rng(4)

    def study(spread: float) -> pd.DataFrame:
        rows = []
        for _ in range(1000):
            est = pd.Series(rng.gamma(2.0, 100.0, 6), index=[f"c{i}" for i in range(6)])
            se = 0.3 * est + 10.0
            tv = (est + spread * se * rng.standard_normal(6)).clip(lower=0.0)
            p = pd.Series(E.leader_probability(est.to_numpy(), se.to_numpy()), index=est.index)
            rows.append(mod._leader_calibration(p, tv, est))
        return pd.DataFrame(rows)

    good = {r["check"]: r for r in mod._leader_rows(study(1.0))}
    bad = {r["check"]: r for r in mod._leader_rows(study(2.0))}
    gap = next(k for k in good if "largest gap" in k)
    brier = next(k for k in good if "Brier" in k)
    assert good[gap]["met"] and good[brier]["met"], good
    assert not bad[gap]["met"], bad[gap]
    n = sum(r["runs"] for k, r in good.items() if k.startswith("creators with a chance"))
    assert n == 1000 * 6  # every creator falls in one bin


def test_ranking_oracle_ridge_matches_least_squares(benchmark_script):
    """The oracle study's ridge (benchmarks/validation_ranking.py): without a penalty the per-unit rates
    are the least-squares slopes of statsmodels; with an overwhelming one, every unit of a campaign gets
    the campaign's common slope."""
    import statsmodels.api as sm

    mod = benchmark_script("validation_ranking")
    rng = np.random.default_rng(8)
    n, m = 300, 6
    controls = np.column_stack([np.ones(n), np.arange(n) / n])
    exposure = rng.gamma(1.0, 1.0, (n, m))
    group = np.array(["A", "A", "A", "B", "B", "B"])
    y = controls @ [5.0, 2.0] + exposure @ [1.0, 2.0, 3.0, 0.5, 0.5, 4.0] + rng.normal(0, 1, n)
    free = mod.ridge_rates(y, controls, exposure, group, 0.0)
    ols = sm.OLS(y, np.column_stack([controls, exposure])).fit().params[2:]
    np.testing.assert_allclose(free, ols, rtol=1e-6)
    pooled = mod.ridge_rates(y, controls, exposure, group, 1e9)
    common = sm.OLS(y, np.column_stack([controls, exposure[:, :3].sum(1), exposure[:, 3:].sum(1)])).fit().params[2:]
    np.testing.assert_allclose(pooled, np.repeat(common, 3), rtol=1e-4)


def test_ranking_oracle_shared_deviation(benchmark_script):
    """The shared-deviation oracle: an overwhelming penalty on the shared creator deviation gives the plain
    oracle's rates; an overwhelming one on the per-campaign deviation (shared one nearly free) leaves each
    creator one deviation, so its two campaigns' rates differ by the same gap for every creator."""
    mod = benchmark_script("validation_ranking")
    rng = np.random.default_rng(9)
    n = 400
    controls = np.column_stack([np.ones(n), np.arange(n) / n])
    exposure = rng.gamma(1.0, 1.0, (n, 6)) * (rng.random((n, 6)) < 0.4)
    group = np.array(["A", "A", "A", "B", "B", "B"])
    creator = np.array(["x", "y", "z", "x", "y", "z"])
    y = controls @ [5.0, 2.0] + exposure @ [1.0, 2.0, 3.0, 1.5, 2.5, 3.5] + rng.normal(0, 1, n)
    plain = mod.ridge_rates(y, controls, exposure, group, 0.01)
    np.testing.assert_allclose(mod.ridge_shared_rates(y, controls, exposure, group, creator, 0.01, 1e12),
                               plain, rtol=1e-5)
    tied = mod.ridge_shared_rates(y, controls, exposure, group, creator, 1e6, 1e-9)
    gap = tied[3:] - tied[:3]
    np.testing.assert_allclose(gap, gap[0], atol=1e-3)
    assert abs(gap[0] - 0.5) < 0.3 and np.all(np.diff(tied[:3]) > 0.5)


def test_ranking_oracle_study_on_a_pinned_seed(benchmark_script):
    """One seed of the oracle study: every ranking is a correlation of the campaign's large creators, and
    the readings are worded from the figures (a low oracle median says "beyond", a high one "clears")."""
    mod = benchmark_script("validation_ranking")
    rows = mod.one_seed(3)
    assert rows
    d = pd.DataFrame(rows)
    rhos = d.drop(columns=["seed", "campaign_id", "n_big", "overlap", "repeat_big"])
    assert ((rhos >= -1 - 1e-9) & (rhos <= 1 + 1e-9)).all().all()
    assert (d["n_big"] >= 3).all() and d["overlap"].between(-1, 1).all()
    assert d["repeat_big"].between(0, d["n_big"]).all()
    table, meta = mod.summarise(d)
    assert len(table) == 8 and meta["best_penalty"] in set(mod.PENALTIES)
    assert meta["shared_ratio"] in set(mod.SHARED_RATIOS) and 0 <= meta["repeat_share"] <= 1
    low = table.assign(median=np.where(table["ranking"].str.startswith("oracle"), "0.50", table["median"]))
    text = " ".join(mod._readings(low, meta))
    assert "beyond what even this oracle reaches" in text
    high = table.assign(median="0.90")
    assert "clears the ranking target" in " ".join(mod._readings(high, meta))
    assert "add little" in " ".join(mod._readings(table, {**meta, "shared_gain": 0.01}))
    assert "worth building" in " ".join(mod._readings(table, {**meta, "shared_gain": 0.1}))


# ---------------------------------------------------------------------------- per-creator intervals


def _ridge_random_effects(rng, *, n=300, m=40, tau=0.5, sigma=1.0, lam=None):
    """One draw of y = a + sum_c u_c x_c + e with u_c ~ N(0, tau^2), ridge on the u's."""
    X = np.column_stack([np.ones(n), rng.gamma(0.5, 1.0, (n, m)) * (rng.random((n, m)) < 0.15)])
    u = rng.normal(0.0, tau, m)
    y = 2.0 + X[:, 1:] @ u + rng.normal(0.0, sigma, n)
    pen = np.r_[False, np.ones(m, bool)]
    lam = sigma**2 / tau**2 if lam is None else lam
    G = X.T @ X
    Minv = np.linalg.inv(G + np.diag(np.where(pen, lam, 0.0)))
    beta = Minv @ X.T @ y
    return X, y, u, pen, lam, Minv, beta


def test_shrinkage_variance_recovers_the_random_effect_and_gives_honest_unit_intervals():
    """Partially pooled deviations: the HAC sampling variance alone ignores the shrinkage bias and
    under-covers; adding tau^2 (moment estimate) times the squared bias loadings covers about 95%."""
    from scipy import stats

    rng = np.random.default_rng(8)
    tau2, cov_post, cov_samp = [], [], []
    for _ in range(60):
        # a penalty four times the Bayes-optimal one: strong pooling, as the one-standard-error rule gives
        X, y, u, pen, lam, Minv, beta = _ridge_random_effects(rng, lam=4.0 * 1.0 / 0.25)
        r = y - X @ beta
        t2 = E.shrinkage_tau2(X, Minv, beta, r, pen, lam, lags=0, dof=1.0)
        tau2.append(t2)
        F = X @ Minv[:, pen]
        samp = np.diag(E.hac_cov(F, r, 0))
        Bm = lam * Minv[np.ix_(pen, pen)]
        post = samp + t2 * np.sum(Bm * Bm, axis=1)
        err = beta[pen] - u
        z = stats.norm.ppf(0.975)
        cov_post.append(np.mean(np.abs(err) <= z * np.sqrt(post)))
        cov_samp.append(np.mean(np.abs(err) <= z * np.sqrt(samp)))
    assert np.mean(tau2) == pytest.approx(0.25, rel=0.2)
    assert 0.91 <= np.mean(cov_post) <= 0.98
    assert np.mean(cov_samp) < 0.85


def test_exposure_term_passes_on_the_weight_error_only_where_the_pool_decides():
    eff = np.array([100.0, 100.0, 50.0])
    out = E.exposure_term(eff, np.array([0.0, 1.0, 0.5]), np.array([0.25, 0.25, 1.0]))
    np.testing.assert_allclose(out, [0.0, 2500.0, 625.0])
    assert np.isfinite(E.exposure_term(eff, np.ones(3), np.array([np.nan, np.inf, 0.1]))).all()


def test_visit_weight_uncertainty_is_reported_and_bounded(sim_seed2):
    from analysis.attribution._data import build_panel
    from analysis.attribution.followers import visit_weights

    tables, _ = sim_seed2
    w, info = visit_weights(build_panel(tables, "C02"))
    rv = info["weight_relvar"]
    assert rv.shape == w.shape and ((rv >= 0) & (rv <= 1)).all() and (rv > 0).any()
    assert (info["visits_se"] > 0).all()


def test_pinned_seeds_per_creator_intervals_cover_the_truth(sim_seed2):
    """Seeds 1 and 2 (6 campaigns): on average at least 85% of the per-creator 95% intervals cover the
    creator's true incremental follows (the HAC sandwich alone covered 46.8% over 200 seeds)."""
    from analysis.simulate import generate

    cov = []
    for tables, truth in (generate(seed=1, campaigns=3, days=365, show_progress=False), sim_seed2):
        for cid, tr in truth["campaigns"].items():
            by = attribute_followers(tables, cid, n_boot=0).by_creator.set_index("creator_id")
            tv = pd.Series(tr["followers"]["by_creator"], dtype=float).reindex(by.index).fillna(0.0)
            cov.append(((by["ci_low"] <= tv) & (tv <= by["ci_high"])).mean())
    assert len(cov) == 6
    assert np.mean(cov) >= 0.85, cov


def test_hac_diag_is_the_diagonal_of_the_hac_covariance():
    rng = np.random.default_rng(5)
    F, r = rng.normal(size=(150, 6)), rng.normal(size=150)
    np.testing.assert_allclose(E.hac_diag(F, r, 9), np.diag(E.hac_cov(F, r, 9)), rtol=1e-10)


def test_sensitivity_study_compares_flagged_and_unflagged_campaigns(benchmark_script):
    """The study's summary and reading on synthetic rows: where alternatives disagree the main interval is
    made to miss, so the reading must say the flag marks less reliable totals; with the misses spread evenly
    it must say the opposite."""
    mod = benchmark_script("validation_sensitivity")

    def rows(flag_misses: bool) -> pd.DataFrame:
        out = []
        for i in range(200):
            flagged = i % 4 == 0  # a quarter of the campaigns
            # misses: half of the flagged campaigns, or a fifth of every group
            miss = (flagged and i % 8 == 0) if flag_misses else i % 20 in (0, 1, 2, 3)
            truth = 1000.0
            est = truth + (600.0 if miss else 30.0)
            out.append({"seed": i, "campaign_id": "C1", "scenario": "main", "est": est, "lo": est - 200,
                        "hi": est + 200, "main": est, "truth": truth, "disagrees": False})
            alt = est - (500.0 if flagged else 10.0)
            out.append({"seed": i, "campaign_id": "C1", "scenario": "kernel: weibull only", "est": alt,
                        "lo": alt - 100, "hi": alt + 100, "main": est, "truth": truth, "disagrees": flagged})
        return pd.DataFrame(out)

    by_flag, scen = mod.summarise(rows(True))
    f = by_flag.set_index("campaigns")
    assert f.loc["an alternative disagrees", "share"] == pytest.approx(0.25)
    assert f.loc["an alternative disagrees", "main interval covers the truth"] == pytest.approx(0.5)
    assert f.loc["no alternative disagrees", "main interval covers the truth"] == pytest.approx(1.0)
    assert "does mark less reliable totals" in mod._reading(by_flag, scen)
    by_flag2, scen2 = mod.summarise(rows(False))
    assert "does not mark less reliable totals" in mod._reading(by_flag2, scen2)
    text = mod.render(by_flag, scen, range(1, 3), 60.0)
    assert "| an alternative disagrees | 50 | 25.0% | 50.0% |" in text


def test_sensitivity_study_on_a_pinned_seed(benchmark_script):
    mod = benchmark_script("validation_sensitivity")
    df = pd.DataFrame(mod.one_seed(5))
    per = df.groupby("campaign_id")["scenario"].apply(list)
    assert (per.map(len) == 7).all() and (per.map(lambda s: s[0]) == "main").all()
    assert not df.loc[df["scenario"] == "main", "disagrees"].any()
    ok = df["lo"] <= df["hi"]
    assert ok.all() and (df.groupby("campaign_id")["truth"].nunique() == 1).all()
    flagged = df[df["disagrees"]]
    assert ((flagged["lo"] > flagged["main"]) | (flagged["hi"] < flagged["main"])).all()


@pytest.fixture(scope="module")
def year_of_ten_campaigns(tmp_path_factory):
    """A demo-sized data set (10 campaigns, 365 days): its designs are large enough for BLAS to use threads."""
    from analysis.data import load
    from analysis.ingest import ingest
    from analysis.simulate import simulate

    root = tmp_path_factory.mktemp("year")
    simulate(root / "raw", seed=7, campaigns=10, days=365)
    ingest(root / "raw", root / "processed")
    return load(root / "processed")


def test_answers_do_not_depend_on_the_number_of_blas_threads(year_of_ten_campaigns):
    """Multi-threaded BLAS sums in another order, and the ridge solves carry that into the 10th digit, past the
    12 results.json keeps: a report run by --jobs 2 (one thread per kernel) must equal one run alone."""
    from threadpoolctl import threadpool_limits

    runs = []
    for threads in (2, 1):
        with threadpool_limits(limits=threads, user_api="blas"):
            fa = attribute_followers(year_of_ten_campaigns, "C01", n_boot=50, seed=3)
            oa = attribute_orders(year_of_ten_campaigns, "C01", n_boot=50, seed=3)
        runs.append(json.dumps([fa.to_dict(), oa.to_dict()], sort_keys=True, default=str))
    assert runs[0] == runs[1]


def test_comparison_reading_only_calls_a_gap_of_5_points_or_more_a_difference(toy_fit, monkeypatch):
    c = toy_fit.comparison()
    close = c.assign(reported_share=c["modelled_share"] + 0.01)
    monkeypatch.setattr(type(toy_fit), "comparison", lambda self: close)
    text = " ".join(toy_fit.reading())
    assert "agree with TikTok-reported follows within 5 points for every creator" in text
    assert "differ most from" not in text
    far = close.copy()
    far.loc[far.index[1], "reported_share"] = far.loc[far.index[1], "modelled_share"] + 0.2
    monkeypatch.setattr(type(toy_fit), "comparison", lambda self: far)
    text = " ".join(toy_fit.reading())
    assert f"Modelled shares differ most from TikTok-reported follows for {far.loc[far.index[1], 'handle']}" in text


def test_orders_are_read_without_tiktoks_reported_follows(toy):
    """TikTok's reported follows speak to followers only: an orders attribution's reading and notebook
    table leave them out (they once compared order shares with follow shares)."""
    tables, _ = toy
    o = attribute_orders(tables, "C01", n_boot=0, outcomes=("orders",)).orders
    assert o.outcome == "orders" and not o.counts_followers
    text = " ".join(o.reading())
    assert "largest contribution" in text and "TikTok-reported" not in text and "reported follow" not in text
    shown = o._repr_html_()
    assert "reported_follows" not in shown and "By creator" in shown
    single, _ = make_toy_data(seed=5, creators=1, posts=4)
    one = attribute_orders(single, "C01", n_boot=0, outcomes=("orders",)).orders
    one_text = " ".join(one.reading())
    assert "is the campaign's only creator" in one_text and "TikTok reports" not in one_text
    assert attribute_followers(single, "C01", n_boot=0).counts_followers


def _caused_in_window(truth: dict, cid: str, window) -> float:
    """Follows the simulator's campaign ``cid`` truly caused inside ``window`` (its daily truth)."""
    f = truth["campaigns"][cid]["followers"]
    daily = pd.Series(f["daily"], index=pd.date_range(f["window"]["start"], periods=len(f["daily"])))
    return float(daily[(daily.index >= window[0]) & (daily.index <= window[1])].sum())


def test_overlapping_campaigns_are_credited_in_the_counterfactual(sim_processed, sim_truth):
    """Other campaigns live in a campaign's window: the model's credit to each (inside the window) sums
    the daily ``other_campaigns`` column, names every campaign that truly caused follows there (any other
    it names is credited a negligible amount, under 5 follows, through its carry-over's tail), and tracks
    what they truly caused there (aggregate error under 40% on the pinned seed: 33% measured; these splits
    are fragile, ``docs/methods.md`` Limitations); the reading says it and ``to_dict`` carries it."""
    est, true = 0.0, 0.0
    err = 0.0
    for cid in sorted(sim_truth["campaigns"]):
        fa = attribute_followers(sim_processed, cid, n_boot=0, seed=1)
        lo, hi = fa.window
        caused = {}
        for other in sim_truth["campaigns"]:
            n = int(_caused_in_window(sim_truth, other, (lo, hi))) if other != cid else 0
            if n:
                caused[other] = n
        assert set(caused) <= set(fa.overlapping), (cid, fa.overlapping, caused)
        assert all(abs(v) < 5 for c, v in fa.overlapping.items() if c not in caused), (cid, fa.overlapping, caused)
        w = fa.daily[fa.daily["in_window"]]
        assert w["other_campaigns"].sum() == pytest.approx(sum(fa.overlapping.values()), abs=1.0)
        for other, n in caused.items():
            est += fa.overlapping[other]
            true += n
            err += abs(fa.overlapping[other] - n)
        if caused:
            text = " ".join(fa.reading())
            assert "belong to the counterfactual" in text and all(c in text for c in caused)
            assert set(fa.to_dict()["overlapping_campaigns"]) == set(fa.overlapping)
    assert true > 0 and err / true < 0.4, (est, true, err)


def test_single_creator_campaign_reads_counts_not_a_ranking():
    tables, _ = make_toy_data(seed=5, creators=1, posts=4)
    fit = attribute_followers(tables, "C01", n_boot=0)
    assert len(fit.by_creator) == 1
    assert fit.by_creator["incremental"].iloc[0] == pytest.approx(fit.incremental)
    text = " ".join(fit.reading())
    handle = fit.by_creator["handle"].iloc[0]
    assert f"{handle} is the campaign's only creator: all {fit.incremental:,.0f} incremental new followers" in text
    assert "chance that" not in text and "largest contribution" not in text and "shares agree" not in text
    reported = fit.by_creator["reported_follows"].iloc[0]
    assert reported > 0 and f"TikTok reports {reported:,.0f} follows of {handle}'s own account" in text
    assert f"({fit.incremental / reported:.2f} brand followers per reported follow)" in text


def test_data_that_end_inside_the_window_give_a_partial_count_said_so(toy):
    tables, _ = toy
    camp = tables["campaigns"].iloc[0]
    cut = pd.Timestamp(camp["start_date"]) + pd.Timedelta(days=20)
    bad = tables["brand_account_daily"]
    short = {**tables, "brand_account_daily": bad[pd.to_datetime(bad["date"]) <= cut]}
    fit = attribute_followers(short, "C01", n_boot=0)
    assert fit.window == (pd.Timestamp(camp["start_date"]), cut)
    assert fit.nominal_window[1] == pd.Timestamp(camp["end_date"]) + pd.Timedelta(days=28)
    assert any(w.startswith(f"the brand account's data end on {cut:%d %b %Y}, before the end of the campaign")
               for w in fit.warnings), fit.warnings
    assert "a partial count" in fit.reading()[0] and f"and {cut:%d %b %Y} (the brand account's data" in fit.reading()[0]
    assert fit.to_dict()["window"]["end"] == cut.date().isoformat()
    full = attribute_followers(tables, "C01", n_boot=0)
    assert "(campaign plus 28-day tail)" in full.reading()[0]
    assert not any("data end on" in w or "data begin on" in w for w in full.warnings)
    late = {**tables, "brand_account_daily": bad[pd.to_datetime(bad["date"]) > pd.Timestamp(camp["end_date"])
                                                 + pd.Timedelta(days=40)]}
    with pytest.raises(ValueError, match="do not overlap campaign 'C01' and its 28-day tail"):
        attribute_followers(late, "C01", n_boot=0)


def test_creator_without_post_metrics_is_credited_zero_and_named(toy):
    tables, _ = toy
    posts = tables["posts"]
    quiet = posts.loc[posts["campaign_id"] == "C01", "creator_id"].value_counts().index[-1]
    drop = posts.loc[posts["creator_id"] == quiet, "post_id"]
    key = "post_daily" if "post_daily" in tables else "post_metrics"
    cut = {**tables, key: tables[key][~tables[key]["post_id"].isin(drop)]}
    fit = attribute_followers(cut, "C01", n_boot=0)
    row = fit.by_creator.set_index("creator_id").loc[quiet]
    assert row["views"] == 0 and row["incremental"] == 0
    handle = row["handle"]
    assert any(w.startswith(f"{handle} has campaign posts but no views") for w in fit.warnings), fit.warnings
    assert fit.by_creator["incremental"].sum() == pytest.approx(fit.incremental)


def test_results_show_themselves_in_a_notebook_with_hostile_handles_escaped(toy):
    from analysis.attribution import (ConversionAttribution, GeoConversions, PersistenceResult, RepeatResult,
                                      RetentionResult, SensitivityResult)
    from analysis.htmlsafe import NotebookRepr

    tables, _ = toy
    creators = tables["creators"].copy()
    hostile = '<img src=x onerror="alert(1)">'
    creators.loc[0, "handle"] = hostile
    fit = attribute_followers({**tables, "creators": creators}, "C01", n_boot=0)
    shown = fit._repr_html_()
    assert hostile in set(fit.by_creator["handle"]) and "<img" not in shown and "&lt;img src=x" in shown
    assert fit.reading()[0].split(" (")[0] in shown and "By creator: modelled vs TikTok-reported" in shown
    orders = attribute_orders(tables, "C01", n_boot=0)._repr_html_()
    assert "ConversionAttribution" in orders and "Directly attributed" in orders
    for cls in (ConversionAttribution, GeoConversions, PersistenceResult, RepeatResult, RetentionResult,
                SensitivityResult):
        assert issubclass(cls, NotebookRepr), cls


def test_missing_brand_days_are_named_and_the_answer_stays_close(toy, toy_fit):
    tables, _ = toy
    bad = tables["brand_account_daily"]
    rng = np.random.default_rng(0)
    gappy = bad.drop(bad.index[rng.choice(len(bad), 15, replace=False)])
    fit = attribute_followers({**tables, "brand_account_daily": gappy}, "C01", n_boot=0)
    (gap,) = [w for w in fit.warnings if "no new_followers on" in w]
    assert gap.startswith("brand_account_daily has no new_followers on 15 day(s) of its calendar (")
    assert not [w for w in fit.warnings if "video_views" in w]
    assert fit.incremental == pytest.approx(toy_fit.incremental, rel=0.02)
    holes = bad.copy()
    holes.loc[holes.index[[3, 4]], "video_views"] = np.nan
    fit = attribute_followers({**tables, "brand_account_daily": holes}, "C01", n_boot=0)
    assert "brand_account_daily has no video_views on 2 day(s) that have new_followers: the brand's own posting " \
           "is taken at its mean on those days" in fit.warnings
    assert not [w for w in toy_fit.warnings if "brand_account_daily has no" in w]


def test_orders_that_start_inside_the_window_are_named(toy):
    tables, _ = toy
    orders, camp = tables["orders"], tables["campaigns"].iloc[0]
    when = pd.to_datetime(orders["created_at"], utc=True).dt.tz_convert(None)
    cut = pd.Timestamp(camp["start_date"]) + pd.Timedelta(days=10)
    late = attribute_orders({**tables, "orders": orders[when >= cut]}, "C01", n_boot=0)
    gap = [w for w in late.warnings if w.startswith("orders: the orders table covers")]
    assert len(gap) == 1 and "so 10 day(s) of the campaign's window" in gap[0], late.warnings
    assert any(w.startswith("orders: fewer than 28 days of orders before the campaign") for w in late.warnings)
    assert late.direct["orders"] < attribute_orders(tables, "C01", n_boot=0).direct["orders"]
    assert not [w for w in attribute_orders(tables, "C01", n_boot=0).warnings if w.startswith("orders: ")]


def test_spread_snapshots_divide_gaps_along_the_view_curve_and_keep_each_posts_totals():
    from analysis.attribution._data import spread_snapshots, view_curve, _snapshot_spans

    start = pd.Timestamp("2025-03-01")
    rows, posts = [], []
    for i in range(8):  # posts reported daily, views falling by a fifth a day
        pid, posted = f"D{i}", start + pd.Timedelta(days=i)
        posts.append((pid, posted))
        rows += [(pid, posted + pd.Timedelta(days=a), 1000.0 * (i + 1) * 0.8 ** a, True) for a in range(30)]
    total = 5000.0 * (1 - 0.8 ** 30) / 0.2
    cum = 5000.0 * (1 - 0.8 ** np.arange(1, 31)) / 0.2
    posts.append(("W", start))  # the same curve reported on days 6, 13 and 29 only (a filled day in between)
    rows += [("W", start + pd.Timedelta(days=a), cum[a] - (cum[p] if p >= 0 else 0.0), True)
             for p, a in ((-1, 6), (6, 13), (13, 29))]
    rows.append(("W", start + pd.Timedelta(days=10), 0.0, False))
    pdv = pd.DataFrame(rows, columns=["post_id", "date", "views", "observed"])
    pdv["follows"] = pdv["views"] / 100
    posts = pd.DataFrame(posts, columns=["post_id", "posted_date"])

    curve = view_curve(_snapshot_spans(pdv, posts))
    assert (np.diff(curve) >= -1e-12).all() and curve[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(curve[:5], 1 - 0.8 ** np.arange(1, 6), atol=0.01)
    out = spread_snapshots(pdv, posts)
    w = out[out["post_id"] == "W"].set_index("date")
    assert len(w) == 30 and w.index.is_monotonic_increasing and w["views"].sum() == pytest.approx(total)
    assert w["follows"].sum() == pytest.approx(total / 100)
    # the first week follows the daily posts' curve (a fifth less each day), not an even split
    np.testing.assert_allclose(w["views"].iloc[:7].to_numpy(), np.diff(np.r_[0, cum[:7]]), rtol=0.02)
    assert w["observed"].sum() == 3
    daily = out[out["post_id"] != "W"].sort_values(["post_id", "date"]).reset_index(drop=True)
    ref = pdv[pdv["post_id"] != "W"].sort_values(["post_id", "date"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(daily[ref.columns], ref)  # daily reports are kept as they are


def test_published_view_curve_has_the_published_shares_and_a_falling_tail():
    from analysis.attribution._data import PUBLISHED_VIEW_SHARE, published_view_curve

    F = published_view_curve()
    assert len(F) == 90 and (np.diff(F) > 0).all()
    for age, share in PUBLISHED_VIEW_SHARE.items():
        assert F[age] == pytest.approx(share)
    daily = np.diff(F)
    # between the first week and 90 days the daily views fall off like 1 / age
    assert daily[39] / daily[19] == pytest.approx(np.log(41 / 40) / np.log(21 / 20), rel=1e-9)
    assert daily[39] / daily[19] == pytest.approx(20.5 / 40.5, rel=0.01)


def _snapshots(ages_by_post: dict[str, list[int]], total: float = 10_000.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Posts that each report a share of ``total`` on the given ages (views falling by a fifth a day)."""
    posted = pd.Timestamp("2025-03-01")
    cum = 1 - 0.8 ** np.arange(1, 200)
    rows = []
    for pid, ages in ages_by_post.items():
        prev = 0.0
        for a in ages:
            rows.append((pid, posted + pd.Timedelta(days=a), total * (cum[a] - prev), True))
            prev = cum[a]
    pdv = pd.DataFrame(rows, columns=["post_id", "date", "views", "observed"])
    return pdv, pd.DataFrame({"post_id": list(ages_by_post), "posted_date": posted})


def test_single_snapshots_are_spread_along_the_published_curve():
    """Totals-only exports (one snapshot per post) say nothing about the shape: the published curve is used."""
    from analysis.attribution._data import _snapshot_spans, published_view_curve, spread_snapshots, view_curve

    pdv, posts = _snapshots({f"P{i}": [30] for i in range(6)})
    assert len(view_curve(_snapshot_spans(pdv, posts))) == 0
    out = spread_snapshots(pdv, posts)
    F = published_view_curve()
    for pid, one in out.groupby("post_id"):
        assert len(one) == 31 and one["views"].sum() == pytest.approx(pdv.loc[pdv["post_id"] == pid, "views"].sum())
        np.testing.assert_allclose(one["views"].to_numpy() / one["views"].sum(), np.diff(np.r_[0, F[:31]]) / F[30])
    assert out.groupby("post_id")["views"].first().div(out.groupby("post_id")["views"].sum()).iloc[0] == \
        pytest.approx(0.32 / F[30])


def test_view_curve_follows_the_published_shape_between_the_ages_reported():
    """Snapshots every seventh day of a post's age leave the first week unreported: inside it the pooled curve
    rises like the published one (most on the first day), not evenly."""
    from analysis.attribution._data import _published_clock, _snapshot_spans, view_curve

    pdv, posts = _snapshots({f"P{i}": [6, 13, 20, 27, 34] for i in range(6)})
    curve = view_curve(_snapshot_spans(pdv, posts))
    assert len(curve) == 35 and curve[6] == pytest.approx((1 - 0.8 ** 7) / (1 - 0.8 ** 35))  # reported ages kept
    clock = _published_clock(np.arange(-1, 7))
    np.testing.assert_allclose(curve[:7], curve[6] * clock[1:] / clock[-1])
    assert curve[0] / curve[6] > 0.5  # an even split of the first week would give 1/7


def test_totals_only_exports_on_a_pinned_seed_stay_near_the_truth():
    """One snapshot per post, on the data's last day (a single TikTok One campaign report): spread along the
    published curve, every campaign's interval covers the truth and the total is within a quarter of it.
    Spread evenly over the months since posting (the previous release) the same data gave +190%."""
    from analysis.simulate import generate, totals_exports

    tables, truth = generate(seed=9, campaigns=3, days=365, show_progress=False)
    ratio = _every_campaign_covered(totals_exports(tables, on_last_day=True), truth, n_boot=200, seed=9,
                                    warned="published view curve")
    assert abs(ratio - 1) < 0.25, ratio


def _every_campaign_covered(tables: dict, truth: dict, *, n_boot: int, seed: int, warned: str) -> float:
    """Assert every campaign's follower interval covers its truth and warns with ``warned``; return the sum
    of the estimates over the sum of the truths."""
    est, true = 0.0, 0.0
    for cid, tr in truth["campaigns"].items():
        fa = attribute_followers(tables, cid, n_boot=n_boot, seed=seed)
        t = tr["followers"]["incremental"]
        assert fa.ci_low <= t <= fa.ci_high, (cid, fa.incremental, fa.ci_low, fa.ci_high, t)
        assert any(warned in w for w in fa.warnings), (cid, fa.warnings)
        est, true = est + fa.incremental, true + t
    return est / true


def test_a_total_below_zero_and_a_negative_overlap_credit_are_read_as_unreliable(sim_seed2, toy_fit):
    """Seed 2 exported once (each post's totals a month after posting) is a known failure: campaigns C01 and
    C02 share their largest creator in overlapping weeks, and with the timing of the views assumed the model
    cannot split them (C01 about +131,000 against a truth of 2,956, C02 about -75,000 against 58,074). The
    readings must not present such totals as findings."""
    import dataclasses

    from analysis.attribution.followers import BELOW_ZERO_PHRASE, OVERLAP_NEGATIVE_SHARE
    from analysis.simulate import totals_exports

    tables, truth = sim_seed2
    once = totals_exports(tables)
    c02 = attribute_followers(once, "C02", n_boot=200, seed=2)
    assert c02.ci_high < 0 < truth["campaigns"]["C02"]["followers"]["incremental"]
    assert any(w.startswith(BELOW_ZERO_PHRASE) for w in c02.warnings)
    assert any(r.startswith("The interval lies wholly below zero: taken at face value the campaign cost the brand "
                            "new followers") and "read the total as unreliable" in r for r in c02.reading())
    c01 = attribute_followers(once, "C01", n_boot=200, seed=2)
    assert c01.overlapping["C02"] < -OVERLAP_NEGATIVE_SHARE * abs(c01.incremental)
    assert any(r.startswith("A negative credit (C02) says the model cannot separate") for r in c01.reading())
    # neither sentence where the total's interval is above zero and no credit is negative
    assert toy_fit.ci_low > 0 and not any("wholly below zero" in r or "negative credit" in r
                                          for r in toy_fit.reading())
    small = dataclasses.replace(toy_fit, overlapping={"C09": -0.05 * toy_fit.incremental})
    assert not any("negative credit" in r for r in small.reading())  # a small negative credit is noise


def test_a_collinear_overlap_is_detected_and_read_as_the_combined_total(sim_seed2):
    """The same failure detected as what it is: in seed 2 exported once, C01's total and the credit the model
    gives C02 inside C01's window are strongly negatively correlated (the HAC covariance behind the
    intervals), so the reading and a warning say the split is fragile and give the two combined, whose
    interval covers the sum of their true follows there although neither campaign's own interval covers its
    truth. The third campaign, which overlaps neither, is not flagged; credits and the daily column agree."""
    from analysis.attribution.followers import COLLINEAR_PHRASE, OVERLAP_COLLINEAR_RHO
    from analysis.simulate import totals_exports

    tables, truth = sim_seed2
    once = totals_exports(tables)
    for cid, other in (("C01", "C02"), ("C02", "C01")):
        fa = attribute_followers(once, cid, n_boot=0, seed=2)
        t = truth["campaigns"][cid]["followers"]["incremental"]
        assert not fa.ci_low <= t <= fa.ci_high                    # the known failure
        d = fa.overlap_split[other]
        assert d["credit"] == pytest.approx(fa.overlapping[other], rel=1e-9, abs=1e-6)
        w = fa.daily[fa.daily["in_window"]]
        assert w["other_campaigns"].sum() == pytest.approx(sum(fa.overlapping.values()), abs=1.0)
        assert d["correlation"] <= OVERLAP_COLLINEAR_RHO and fa.collinear_overlaps == [other]
        both = t + _caused_in_window(truth, other, fa.window)
        assert d["combined"] == pytest.approx(fa.incremental + d["credit"])
        assert d["combined_ci_low"] <= both <= d["combined_ci_high"], (cid, d, both)
        assert d["combined_ci_high"] - d["combined_ci_low"] < 0.5 * (fa.ci_high - fa.ci_low)
        assert any(w.startswith(f"{COLLINEAR_PHRASE} {other} (correlation") for w in fa.warnings)
        assert any(r.startswith(f"This campaign's total and {other}'s credit move against each other")
                   and f"Together they brought about {d['combined']:,.0f}" in r for r in fa.reading())
        block = fa.to_dict()["overlap_split"][other]
        assert block["correlation"] == pytest.approx(d["correlation"]) and set(block) == set(d)
    c03 = attribute_followers(once, "C03", n_boot=0, seed=2)
    assert not c03.collinear_overlaps and not any(w.startswith(COLLINEAR_PHRASE) for w in c03.warnings)
    assert not any("move against each other" in r for r in c03.reading())


def test_a_supplied_view_curve_replaces_the_published_one_for_posts_exported_once(sim_seed2):
    """The case above with a curve measured elsewhere: the pooled curve of another simulated brand's daily
    exports (``measured_view_curve``) recovers both campaigns; posts with a curve of their own ignore it."""
    from analysis.attribution import measured_view_curve
    from analysis.attribution._data import SUPPLIED_CURVE_PHRASE, build_panel
    from analysis.simulate import generate, totals_exports, weekly_exports

    other, _ = generate(seed=1002, campaigns=3, days=365, show_progress=False)
    curve = measured_view_curve(other)
    assert (np.diff(curve) >= 0).all() and curve[-1] == pytest.approx(1.0) and 0.1 < curve[0] < 0.3
    tables, truth = sim_seed2
    once = totals_exports(tables)
    with pytest.raises(ValueError, match="give no view curve"):
        measured_view_curve(once)
    for cid in ("C01", "C02"):
        fa = attribute_followers(once, cid, n_boot=200, seed=2, view_curve=curve)
        t = truth["campaigns"][cid]["followers"]["incremental"]
        assert fa.ci_low <= t <= fa.ci_high, (cid, fa.incremental, fa.ci_low, fa.ci_high, t)
        assert any(SUPPLIED_CURVE_PHRASE in w for w in fa.warnings)
    assert build_panel(once, "C01", fallback_curve=curve).view_curve_source == "supplied"
    assert build_panel(once, "C01").view_curve_source == "published"
    weekly = build_panel(weekly_exports(tables), "C01", fallback_curve=curve)
    assert weekly.view_curve_source == "posts" and not any(SUPPLIED_CURVE_PHRASE in w for w in weekly.warnings)


def test_view_curve_argument_is_checked():
    from analysis.attribution._data import check_view_curve

    assert check_view_curve(None) is None
    np.testing.assert_allclose(check_view_curve([0.2, 0.5, 0.8]), [0.25, 0.625, 1.0])  # rescaled to end at 1
    for bad in ([0.5], [[0.1, 0.2]], [0.1, np.nan], [0.5, 0.4], [0.0, 0.0], "abc"):
        with pytest.raises(ValueError, match="view_curve must be"):
            check_view_curve(bad)


def test_weekly_exports_on_a_pinned_seed_cover_the_truth(sim_seed2):
    """Post metrics exported once a week: the spread increments keep every campaign's interval on the truth."""
    from analysis.simulate import weekly_exports

    tables, truth = sim_seed2
    ratio = _every_campaign_covered(weekly_exports(tables), truth, n_boot=50, seed=0,
                                    warned="increments covering 3 or more days")
    assert abs(ratio - 1) < 0.05, ratio


def test_weekly_exports_through_ingest_cover_the_truth(tmp_path):
    """The report's path: weekly post-metric exports written as raw files, ingested (``post_daily`` with
    its filled-in days), then attributed: every campaign's interval covers the truth and warns."""
    from analysis.ingest import ingest
    from analysis.simulate import generate, weekly_exports
    from analysis.simulate.io import write_dataset

    tables, truth = generate(seed=7, campaigns=3, days=365, show_progress=False)
    write_dataset(tmp_path / "raw", weekly_exports(tables), truth)
    ingest(tmp_path / "raw", tmp_path / "processed")
    daily = pd.read_parquet(tmp_path / "processed" / "post_daily.parquet")
    assert (~daily["observed"]).mean() > 0.5  # most days are filled in between the weekly snapshots
    for cid, tr in truth["campaigns"].items():
        fa = attribute_followers(tmp_path / "processed", cid, n_boot=0)
        t = tr["followers"]["incremental"]
        assert fa.ci_low <= t <= fa.ci_high, (cid, fa.incremental, fa.ci_low, fa.ci_high, t)
        assert any("along the posts' pooled view curve" in w for w in fa.warnings)


def _net_only(tables: dict) -> dict:
    """The brand account's followers as TikTok Studio exports them: the net daily change split into gains
    (new_followers) and losses (lost_followers), never both on one day."""
    b = tables["brand_account_daily"].copy()
    net = b["new_followers"] - b["lost_followers"]
    return {**tables, "brand_account_daily": b.assign(new_followers=net.clip(lower=0),
                                                       lost_followers=(-net).clip(lower=0))}


def test_net_only_follower_data_are_flagged_and_retention_is_not_measured(sim_seed2):
    from analysis.attribution import NoUnfollowData
    from analysis.attribution._data import NET_ONLY_WARNING, net_only_followers

    tables, truth = sim_seed2
    studio = _net_only(tables)
    fa = attribute_followers(studio, "C02", n_boot=0)
    assert NET_ONLY_WARNING in fa.warnings
    assert NET_ONLY_WARNING not in attribute_followers(tables, "C02", n_boot=0).warnings
    # net of the campaign's own unfollows on the same days: below the count from the full data
    assert fa.incremental < attribute_followers(tables, "C02", n_boot=0).incremental
    with pytest.raises(NoUnfollowData, match="only the net daily change"):
        follower_retention(studio, "C02")
    b = tables["brand_account_daily"]
    assert net_only_followers(b.assign(net_followers=b["new_followers"] - b["lost_followers"]))
    assert not net_only_followers(b.head(20).pipe(lambda x: _net_only({"brand_account_daily": x})
                                                  ["brand_account_daily"]))  # too few days to tell


def test_report_section_on_net_only_followers_says_retention_is_not_available(tmp_path):
    from analysis import campaign as cr
    from analysis.ingest import ingest
    from analysis.simulate import generate
    from analysis.simulate.io import write_dataset

    tables, truth = generate(seed=11, campaigns=2, days=240, show_progress=False)
    write_dataset(tmp_path / "raw", _net_only(tables), truth)
    ingest(tmp_path / "raw", tmp_path / "processed")
    rep = cr.open_report(campaign_id="C01", data_dir=str(tmp_path / "processed"), out_dir=str(tmp_path / "out"))
    sec = cr.attribution(rep)
    assert sec.ok, sec.reason
    assert "The retention of the gained followers is not available: brand_account_daily has only the net" \
        in sec.reading
    assert "retention" not in sec.contribution["followers"]
    assert any("only the net daily change of followers" in w for w in sec.warnings)


def test_weekly_snapshots_warn_that_the_timing_is_approximate(toy, toy_fit):
    from analysis.attribution._data import lumped_view_share, post_daily_views

    tables, _ = toy
    daily = tables["post_daily"].copy()
    # one report a week: each post's views summed over seven days and reported on the seventh
    week = (pd.to_datetime(daily["date"]) - pd.Timestamp("2025-01-06")).dt.days // 7
    daily["date"] = pd.Timestamp("2025-01-06") + pd.to_timedelta(week * 7 + 6, unit="D")
    weekly = daily.groupby(["post_id", "date"], as_index=False).sum(numeric_only=True)
    posts = tables["posts"].assign(posted_date=pd.to_datetime(tables["posts"]["posted_at"]).dt.tz_localize(None)
                                   .dt.normalize()) if "posted_at" in tables["posts"] else tables["posts"]
    share = lumped_view_share(post_daily_views({**tables, "post_daily": weekly}), posts)
    assert share > 0.5
    assert lumped_view_share(post_daily_views(tables), posts) < 0.05
    fit = attribute_followers({**tables, "post_daily": weekly}, "C01", n_boot=0)
    (warned,) = [w for w in fit.warnings if "increments covering 3 or more days" in w]
    assert warned.startswith(f"{share:.0%} of the campaign posts' views"), warned
    assert "along the posts' pooled view curve" in warned
    assert not [w for w in toy_fit.warnings if "increments covering" in w]
    # one snapshot per post (its totals, on the data's last day): no view curve of its own, so the published
    # typical curve is assumed, said so
    last = daily.groupby("post_id", as_index=False).sum(numeric_only=True).assign(date=daily["date"].max())
    once = attribute_followers({**tables, "post_daily": last}, "C01", n_boot=0)
    (warned,) = [w for w in once.warnings if "increments covering 3 or more days" in w]
    assert warned.startswith("100% of the campaign posts' views") and "published view curve" in warned, warned
    assert "assumed, not measured" in warned and "unreliable" in warned, warned
