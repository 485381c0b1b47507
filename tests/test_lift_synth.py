"""Synthetic control: published Basque weights, placebo inference, conformal intervals, geo panels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis.config
from analysis.lift import synthetic_control
from analysis.lift.synth import (SynthResult, factor_panel, geo_lift, geo_panel, simplex_weights,
                                 simulation_study, summarise_study)

BASQUE = Path(analysis.config.PROJ_ROOT).parent / "shared" / "data" / "basque.csv"
TREATED = "Basque Country (Pais Vasco)"


def _basque_predictors(columns) -> list:
    preds = [(c, range(1964, 1970), "mean") for c in
             ["school.illit", "school.prim", "school.med", "school.high", "school.post.high", "invest"]]
    preds.append(("gdpcap", range(1960, 1970), "mean"))
    preds += [(c, range(1961, 1970, 2), "mean") for c in columns if c.startswith("sec.")]
    preds.append(("popdens", [1969], "mean"))
    return preds


@pytest.fixture(scope="module")
def basque() -> pd.DataFrame:
    if not BASQUE.exists():
        pytest.skip(f"Basque reference data not found at {BASQUE}")
    return pd.read_csv(BASQUE)


@pytest.mark.parametrize("with_spain", [False, True])
def test_basque_published_weights(basque, with_spain):
    donors = [u for u in basque["regionname"].unique()
              if u != TREATED and (with_spain or not u.startswith("Spain"))]
    res = synthetic_control(basque, outcome="gdpcap", unit="regionname", time="year", treated_unit=TREATED,
                            treatment_start=1970, predictors=_basque_predictors(basque.columns),
                            donors=donors, optimize_periods=range(1960, 1970), placebos=False,
                            progress_bar=False)
    w = res.weights

    def weight(name: str) -> float:
        return float(w[[name in str(u) for u in w.index]].sum())

    assert weight("Cataluna") == pytest.approx(0.8508, abs=0.02)
    assert weight("Madrid") == pytest.approx(0.1492, abs=0.02)
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-8)
    assert res.v_weights is not None and res.v_weights.sum() == pytest.approx(1.0)
    assert list(res.predictor_balance.columns) == ["treated", "synthetic", "donor_mean", "v"]


def test_basque_outcome_only_placebos(basque):
    d = basque[~basque["regionname"].str.startswith("Spain")]
    res = synthetic_control(d, outcome="gdpcap", unit="regionname", time="year", treated_unit=TREATED,
                            treatment_start=1970, progress_bar=False)
    # the terrorism-era gap is negative and the Basque ratio is among the placebos (17 units)
    assert res.effect < 0
    assert len(res.placebos) == 17 and res.n_placebos == 16
    ratio = res.placebos["ratio"]
    assert res.p_value == pytest.approx((ratio >= ratio.iloc[0]).sum() / 17)
    assert res.in_time_placebo["start"] < 1970


def _panel(seed=3, effect=5.0, **kw):
    panel, truth = factor_panel(seed, effect=effect, **kw)
    start = panel["date"].min() + pd.Timedelta(days=kw.get("n_pre", 60))
    return panel, truth, start


def test_definitions_hold():
    panel, truth, start = _panel()
    res = synthetic_control(panel, outcome="y", unit="region", time="date", treated_unit="treated",
                            treatment_start=start, progress_bar=False)
    assert isinstance(res, SynthResult)
    wide = panel.pivot(index="date", columns="region", values="y")
    synth = wide[res.weights.index].to_numpy() @ res.weights.to_numpy()
    np.testing.assert_allclose(res.synthetic.to_numpy(), synth)
    np.testing.assert_allclose(res.gap.to_numpy(), wide["treated"].to_numpy() - synth)
    post = res.gap.index >= start
    assert res.effect == pytest.approx(res.gap[post].mean())
    assert res.relative_effect == pytest.approx(res.effect / res.synthetic[post].mean())
    assert res.weights.min() >= 0 and res.weights.sum() == pytest.approx(1.0, abs=1e-9)
    assert res.ci_low < res.effect < res.ci_high
    assert res.relative_ci_low < res.relative_effect < res.relative_ci_high
    assert res.pre_rmspe == pytest.approx(np.sqrt(np.mean(res.gap[~post] ** 2)))
    assert res.p_value == pytest.approx(1 / 21)   # a 5-unit lift on noise sd 2 beats every placebo


def test_simplex_weights_matches_generic_solver():
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    X0, x1 = rng.normal(size=(12, 9)), rng.normal(size=12)
    v = rng.uniform(0.1, 1, 12)
    w = simplex_weights(X0, x1, v)
    obj = lambda w: float(np.sum(v * (x1 - X0 @ w) ** 2))  # noqa: E731
    ref = minimize(obj, np.full(9, 1 / 9), method="SLSQP", bounds=[(0, 1)] * 9,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}], options={"ftol": 1e-14})
    assert obj(w) <= ref.fun + 1e-8
    np.testing.assert_allclose(w, ref.x, atol=1e-4)


def test_pinned_seed_coverage_and_false_positives():
    lifted = summarise_study(simulation_study(30, effect=5.0, seed=500, progress_bar=False))
    null = summarise_study(simulation_study(30, effect=0.0, seed=900, progress_bar=False))
    assert lifted["coverage"] >= 0.85
    assert abs(lifted["relative_bias"]) < 0.10
    assert null["rejection_rate_ci"] <= 0.15
    assert lifted["rejection_rate_ci"] >= 0.5


def test_ridge_augmentation_fixes_treated_outside_hull():
    panel, truth, start = _panel(seed=11)
    panel = panel.copy()
    panel.loc[panel["region"] == "treated", "y"] *= 1.3   # above every donor: outside the convex hull
    plain = synthetic_control(panel, outcome="y", unit="region", time="date", treated_unit="treated",
                              treatment_start=start, placebos=False, progress_bar=False)
    ridge = synthetic_control(panel, outcome="y", unit="region", time="date", treated_unit="treated",
                              treatment_start=start, placebos=False, augment="ridge", progress_bar=False)
    assert any("convex hull" in w for w in plain.warnings)
    assert any("Poor pre-period fit" in w for w in plain.warnings)
    assert ridge.pre_rmspe < 0.5 * plain.pre_rmspe
    assert ridge.ridge_lambda is not None and ridge.weights.sum() == pytest.approx(1.0)
    assert ridge.method == "outcome+ridge"


def test_results_are_readable_and_json_safe():
    panel, truth, start = _panel(seed=5)
    res = synthetic_control(panel, outcome="y", unit="region", time="date", treated_unit="treated",
                            treatment_start=start, progress_bar=False)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["design"] == "synthetic_control" and set(d["weights"]) == set(res.weights.index)
    row = res.summary()
    assert row.loc[0, "effect"] == res.effect and row.loc[0, "n_placebos"] == 20
    text = res.reading()
    assert "synthetic control" in text and "of 20 placebo units" in text and "%" in text
    assert res.weight_table()["weight"].is_monotonic_decreasing
    ax = res.plot()
    assert len(ax.lines) >= 2
    ax2 = res.plot_placebos(max_pre_rmspe_ratio=None)
    assert len(ax2.lines) >= 21
    res.plot_gap()
    res.plot_weights()


def test_placebo_interval_option():
    panel, truth, start = _panel(seed=8)
    res = synthetic_control(panel, outcome="y", unit="region", time="date", treated_unit="treated",
                            treatment_start=start, ci_method="placebo", progress_bar=False)
    assert res.ci_method.startswith("placebo") and res.ci_low < res.effect < res.ci_high


def test_default_interval_allows_an_effect_that_ramps_up():
    # a lift that grows from 0 to twice its average over the window: the constant-effect test sees the
    # ramp in the blocks that straddle the start and widens; the default removes the linear trend first
    panel, truth, start = _panel(seed=21, effect=0.0)
    panel = panel.copy()
    post = (panel["region"] == "treated") & (panel["date"] >= start)
    ramp = np.linspace(0.0, 2.0, int(post.sum()))
    panel.loc[post, "y"] += 8.0 * ramp
    args = dict(outcome="y", unit="region", time="date", treated_unit="treated", treatment_start=start,
                placebos=False, progress_bar=False)
    default = synthetic_control(panel, **args)
    constant = synthetic_control(panel, ci_method="conformal_constant", **args)
    assert "linear trend" in default.ci_method and "constant effect" in constant.ci_method
    assert default.ci_low <= 8.0 <= default.ci_high
    assert default.ci_high - default.ci_low < 0.8 * (constant.ci_high - constant.ci_low)
    assert default.effect == constant.effect


@pytest.mark.parametrize("method", ["conformal_pre", "in_time"])
def test_pre_period_interval_options(method):
    panel, truth, start = _panel(seed=8)
    args = dict(outcome="y", unit="region", time="date", treated_unit="treated", treatment_start=start,
                placebos=False, progress_bar=False, ci_method=method)
    res = synthetic_control(panel, **args)
    assert res.ci_low < res.effect < res.ci_high
    assert np.isfinite(res.ci_low) and np.isfinite(res.ci_high)
    # 60 pre-periods hold too few 45-day blocks for a 95% interval: a clear error, not a silent one
    short = panel[panel["date"] < start + pd.Timedelta(days=45)]
    with pytest.raises(ValueError, match="pre-period"):
        synthetic_control(short, **{**args, "treatment_start": start - pd.Timedelta(days=25)})


def test_in_time_interval_matches_left_out_window_gaps():
    from analysis.lift.synth import simplex_weights

    panel, truth, start = _panel(seed=6, n_pre=50, n_post=5)
    res = synthetic_control(panel, outcome="y", unit="region", time="date", treated_unit="treated",
                            treatment_start=start, placebos=False, ci_method="in_time", progress_bar=False)
    wide = panel.pivot(index="date", columns="region", values="y")
    donors = [c for c in wide.columns if c != "treated"]
    Y0, y1 = wide[donors].to_numpy(), wide["treated"].to_numpy()
    errs = []
    for s in range(0, 50 - 5 + 1):          # every 5-day window of the pre-period, fitted without it
        train = np.r_[0:s, s + 5:50]
        w = simplex_weights(Y0[train], y1[train])
        errs.append(float((y1[s:s + 5] - Y0[s:s + 5] @ w).mean()))
    errs = np.sort(errs)
    # conformal ranks with 46 windows: ceil(47 * 0.975) = 46th and floor(47 * 0.025) = 1st smallest
    assert res.ci_low == pytest.approx(res.effect - errs[45])
    assert res.ci_high == pytest.approx(res.effect - errs[0])
    assert "46 pre-period windows" in res.ci_method


def test_unknown_ci_method_is_named():
    panel, truth, start = _panel(seed=1)
    with pytest.raises(ValueError, match="conformal_constant"):
        synthetic_control(panel, outcome="y", unit="region", time="date", treated_unit="treated",
                          treatment_start=start, ci_method="bootstrap")


def test_treatment_end_drops_later_periods():
    panel, truth, start = _panel(seed=9)
    end = start + pd.Timedelta(days=9)
    res = synthetic_control(panel, outcome="y", unit="region", time="date", treated_unit="treated",
                            treatment_start=start, treatment_end=end, placebos=False, progress_bar=False)
    assert res.gap.index.max() == end


@pytest.mark.parametrize("kwargs, message", [
    ({"treated_unit": "nowhere"}, "not found"),
    ({"treatment_start": pd.Timestamp("2023-01-01")}, "at least 2 periods"),
    ({"augment": "lasso"}, "augment"),
    ({"predictors": [("y", None, "mode")]}, "Unknown aggregation"),
])
def test_clear_errors(kwargs, message):
    panel, truth, start = _panel(seed=1)
    args = dict(outcome="y", unit="region", time="date", treated_unit="treated", treatment_start=start,
                progress_bar=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        synthetic_control(panel, **args)


def test_duplicate_rows_rejected():
    panel, truth, start = _panel(seed=1)
    with pytest.raises(ValueError, match="several rows"):
        synthetic_control(pd.concat([panel, panel.head(3)]), outcome="y", unit="region", time="date",
                          treated_unit="treated", treatment_start=start)


def test_geo_panel_sums_treatment_regions():
    dates = pd.date_range("2024-01-01", periods=5)
    sales = pd.DataFrame([(r, d, float(i + k), i) for i, r in enumerate(["A", "B", "C", "D", "E"])
                          for k, d in enumerate(dates)], columns=["region", "date", "revenue", "orders"])
    assign = pd.DataFrame({"campaign_id": ["c1"] * 4 + ["c2"], "region": ["A", "B", "C", "D", "E"],
                           "group": ["treatment", "treatment", "control", "control", "treatment"]})
    panel = geo_panel(sales, assign, "c1")
    assert set(panel["region"]) == {"treated", "C", "D"}
    treated = panel[panel["region"] == "treated"].set_index("date")["revenue"]
    np.testing.assert_allclose(treated.to_numpy(), [0 + 1 + 2 * k for k in range(5)])
    with pytest.raises(ValueError, match="no geo assignment"):
        geo_panel(sales, assign, "c9")
    with pytest.raises(ValueError, match="two control regions"):
        geo_panel(sales, assign, "c2")


@pytest.fixture(scope="module")
def sim7():
    from analysis.simulate import generate

    return generate(seed=7, campaigns=4, days=240, show_progress=False)


def test_simulator_null_study_has_zero_truth():
    from analysis.lift.synth import simulator_study

    study = simulator_study([7], null=True, jobs=1, n_sims=200)
    assert set(study["design"]) == {"synthetic_control", "causal_impact"}
    assert (study["truth"] == 0).all() and study["null"].all()
    assert study["covered"].all()                 # pinned seed: both intervals contain zero
    with pytest.raises(ValueError, match="ci_method"):
        simulator_study([7], ci_method="nope", jobs=1)


@pytest.fixture(scope="module")
def pinned_geo_study():
    from analysis.lift.synth import simulator_study

    return simulator_study([7, 9, 11], jobs=1, n_sims=400)


@pytest.mark.parametrize("seed", [7, 9, 11])
def test_geo_lift_recovers_simulator_truth(pinned_geo_study, seed):
    study = pinned_geo_study[pinned_geo_study["seed"] == seed]
    assert set(study["design"]) == {"synthetic_control", "causal_impact"}
    for row in study.itertuples():
        assert row.truth > 0
        assert row.ci_low <= row.truth <= row.ci_high, row.design
        assert abs(row.relative_effect - row.relative_truth) < 0.03, row.design


def test_geo_lift_detects_simulator_lifts(pinned_geo_study):
    # a 5-11% lift on a third of the regions: power measured on 300 seeds is 79% (synthetic control)
    # and 92% (structural time series), so at least two of the three pinned seeds must detect it
    # (probability 0.90 and 0.98 at those powers)
    detected = pinned_geo_study.assign(hit=pinned_geo_study["ci_low"] > 0).groupby("design")["hit"].sum()
    assert detected.to_dict() == {k: detected[k] for k in ("causal_impact", "synthetic_control")}
    assert (detected >= 2).all(), detected.to_dict()


def test_geo_lift_api_window_and_definitions(sim7):
    tables, truth = sim7
    sc, its = geo_lift(tables, "C01")
    camp = tables["campaigns"].set_index("campaign_id").loc["C01"]
    assert sc.design == "synthetic_control" and its.design == "causal_impact"
    assert sc.method == "outcome+rescaled" and sc.metric == its.metric == "revenue"
    assert sc.treated_unit == "the treated regions"
    assert sc.reading().startswith("Revenue in the treated regions was "), sc.reading()
    # the window is the campaign's: later days (the adstock tail) are left out
    assert sc.gap.index.max() == pd.Timestamp(camp["end_date"])
    assert its.series.index.max() == pd.Timestamp(camp["end_date"])
    assert its.n_post == (pd.Timestamp(camp["end_date"]) - pd.Timestamp(camp["start_date"])).days + 1
    # rescaled fit: weights multiply the raw control series, shares of the rescaled controls sum to one
    panel = geo_panel(tables["geo_sales_daily"], tables["geo_assignment"], "C01")
    wide = panel.pivot(index="date", columns="region", values="revenue").loc[sc.gap.index]
    np.testing.assert_allclose(sc.synthetic.to_numpy(), wide[sc.weights.index].to_numpy() @ sc.weights.to_numpy())
    assert sc.scm_weights.sum() == pytest.approx(1.0) and sc.scm_weights.min() >= 0
    pre = wide.index < pd.Timestamp(camp["start_date"])
    ratio = wide.loc[pre, "treated"].mean() / wide.loc[pre, sc.weights.index].mean()
    np.testing.assert_allclose(sc.weights.to_numpy(), sc.scm_weights.to_numpy() * ratio.to_numpy())
    assert not any("convex hull" in w for w in sc.warnings)
    assert "scm_weight" in sc.weight_table().columns
    assert len(sc.plot_weights().patches) == len(sc.weight_table())
    # the same reading from a processed-data-like object and an explicit window
    class Source:
        def __getitem__(self, name):
            return tables[name]
    again = geo_lift(Source(), "C01", treatment_start=camp["start_date"], treatment_end=camp["end_date"],
                     placebos=False)
    assert again[0].effect == pytest.approx(sc.effect) and again[1].effect == pytest.approx(its.effect)
    json.dumps([r.to_dict() for r in (sc, its)])


def test_geo_lift_clear_errors(sim7):
    tables, _ = sim7
    with pytest.raises(ValueError, match="geo_sales_daily"):
        geo_lift({k: v for k, v in tables.items() if k != "geo_sales_daily"}, "C01")
    with pytest.raises(ValueError, match="no geo assignment"):
        geo_lift(tables, "C02")
    with pytest.raises(ValueError, match="campaign window"):
        geo_lift({k: v for k, v in tables.items() if k != "campaigns"}, "C01")
    with pytest.raises(ValueError, match="before it starts"):
        geo_lift(tables, "C01", treatment_start="2025-04-10", treatment_end="2025-04-01")


def test_geo_lift_warns_about_overlapping_campaigns(sim7):
    tables, _ = sim7
    ga = tables["geo_assignment"]
    other = ga[ga["campaign_id"] == "C01"].assign(campaign_id="C02")       # C02 overlaps C01's window
    res = geo_lift({**tables, "geo_assignment": pd.concat([ga, other])}, "C01", placebos=False, n_sims=100)
    assert all(any("Campaign C02 ran in" in w for w in r.warnings) for r in res)


def test_rescale_requires_positive_levels_and_outcome_fit():
    panel, truth, start = _panel(seed=2)
    args = dict(outcome="y", unit="region", time="date", treated_unit="treated", treatment_start=start,
                progress_bar=False, rescale=True)
    with pytest.raises(ValueError, match="outcome-only"):
        synthetic_control(panel, predictors=["y"], **args)
    neg = panel.assign(y=panel["y"] - 200)
    with pytest.raises(ValueError, match="positive pre-period mean"):
        synthetic_control(neg, **args)
    # a unit 10 times the donors' size is matched in shape after rescaling
    big = panel.assign(y=np.where(panel["region"] == "treated", 10 * panel["y"], panel["y"]))
    res = synthetic_control(big, **args)
    plain = synthetic_control(big, **{**args, "rescale": False})
    assert res.pre_rmspe < 0.1 * plain.pre_rmspe
    assert res.ci_low <= 10 * truth <= res.ci_high          # the lift was scaled with the unit


def test_placebo_pre_rmspe_cutoff():
    panel, truth, start = _panel(seed=4, effect=0.0)
    res = synthetic_control(panel, outcome="y", unit="region", time="date", treated_unit="treated",
                            treatment_start=start, placebo_max_pre_rmspe_ratio=2.0, progress_bar=False)
    tab = res.placebos
    kept = tab[tab["in_p_value"]]
    assert bool(tab["in_p_value"].iloc[0]) and len(kept) < len(tab)
    assert (kept["pre_rmspe"] <= 2.0 * res.pre_rmspe + 1e-9).all()
    assert res.p_value == pytest.approx((kept["ratio"] >= kept["ratio"].iloc[0]).sum() / len(kept))
    with pytest.raises(ValueError, match="at least 1"):
        synthetic_control(panel, outcome="y", unit="region", time="date", treated_unit="treated",
                          treatment_start=start, placebo_max_pre_rmspe_ratio=0.5)


@pytest.mark.slow
def test_many_seed_validation():
    lifted = summarise_study(simulation_study(300, effect=5.0, progress_bar=False))
    null = summarise_study(simulation_study(300, effect=0.0, progress_bar=False))
    assert 0.92 <= lifted["coverage"] <= 0.98
    assert abs(lifted["relative_bias"]) < 0.05
    assert null["rejection_rate_ci"] <= 0.06


def _placebo_false_positives(exchangeable: bool, n: int = 300) -> float:
    rejects = 0
    for i in range(n):
        panel, _ = factor_panel(1000 + i, effect=0.0, exchangeable=exchangeable)
        start = panel["date"].min() + pd.Timedelta(days=60)
        r = synthetic_control(panel, outcome="y", unit="region", time="date", treated_unit="treated",
                              treatment_start=start, in_time_placebo=None, ci_method="placebo", progress_bar=False)
        rejects += r.p_value <= 0.05
    return rejects / n


@pytest.mark.slow
def test_placebo_p_value_holds_size_when_units_exchangeable():
    assert _placebo_false_positives(exchangeable=True) <= 0.06


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="the factor study draws the treated region from the middle of the donors' "
                   "range, so units are not exchangeable: its small pre-period RMSPE is partly overfit and the "
                   "RMSPE-ratio rank over-rejects (about 2x nominal at 10%); see docs/validation_lift.md")
def test_placebo_p_value_with_treated_at_donors_centre():
    assert _placebo_false_positives(exchangeable=False) <= 0.06


@pytest.fixture(scope="module")
def simulator_studies():
    from analysis.lift.synth import simulator_study, summarise_simulator_study

    seeds = range(10_000, 10_300)
    lifted = summarise_simulator_study(simulator_study(seeds, jobs=2)).set_index("design")
    null = summarise_simulator_study(simulator_study(seeds, null=True, jobs=2)).set_index("design")
    return lifted, null


@pytest.mark.slow
@pytest.mark.parametrize("design", ["synthetic_control", "causal_impact"])
def test_geo_designs_on_simulator_bias_and_null_coverage(simulator_studies, design):
    lifted, null = simulator_studies
    assert lifted.loc[design, "campaigns"] >= 300
    assert abs(lifted.loc[design, "relative_bias"]) < 0.05
    assert 0.92 <= null.loc[design, "coverage_95"] <= 0.98


@pytest.mark.slow
@pytest.mark.parametrize("design", ["synthetic_control", "causal_impact"])
def test_geo_designs_on_simulator_false_positives(simulator_studies, design):
    _, null = simulator_studies
    assert null.loc[design, "rejects_zero_ci"] <= 0.06


@pytest.mark.slow
def test_geo_structural_time_series_coverage_on_simulator(simulator_studies):
    lifted, _ = simulator_studies
    assert 0.92 <= lifted.loc["causal_impact", "coverage_95"] <= 0.98


@pytest.mark.slow
def test_geo_synthetic_control_coverage_on_simulator(simulator_studies):
    # the default interval lets the effect build up linearly over the window (the constant-effect
    # version covered 99.7% here); see docs/validation_lift.md
    lifted, _ = simulator_studies
    assert 0.92 <= lifted.loc["synthetic_control", "coverage_95"] <= 0.98


def test_covariate_placebos_do_not_depend_on_jobs():
    """Placebo fits in two processes give the same placebo table as in one (covariate fit)."""
    panel, _ = factor_panel(5, effect=0.0)
    start = panel["date"].min() + pd.Timedelta(days=60)
    args = dict(outcome="y", unit="region", time="date", treated_unit="treated", treatment_start=start,
                predictors=["y"], in_time_placebo=None, ci_method="placebo", progress_bar=False)
    one = synthetic_control(panel, jobs=1, **args)
    two = synthetic_control(panel, jobs=2, **args)
    pd.testing.assert_frame_equal(one.placebos, two.placebos)
    assert one.p_value == two.p_value and len(one.placebos) == panel["region"].nunique()
    with pytest.raises(ValueError, match="jobs"):
        synthetic_control(panel, jobs=0, **args)
