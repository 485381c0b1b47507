"""Structural time series (CausalImpact approach): documented example, R-style p-value, report, plots."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.arima_process import arma_generate_sample

from analysis.lift import causal_impact
from analysis.lift.its import ImpactResult, simulation_study
from analysis.lift.synth import summarise_study


def _documented_example(seed: int, effect: float = 10.0) -> pd.DataFrame:
    """CausalImpact's documented design: x1 an AR(0.999) around 100, y = 1.2 x1 + N(0, 1), +10 after t = 70."""
    np.random.seed(seed)
    x1 = 100 + arma_generate_sample(ar=[1, -0.999], ma=[1], nsample=100)
    y = 1.2 * x1 + np.random.normal(size=100)
    y[70:] += effect
    return pd.DataFrame({"y": y, "x1": x1}, index=pd.date_range("2014-01-01", periods=100))


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_documented_example_recovers_effect(seed):
    df = _documented_example(seed)
    res = causal_impact(df, outcome="y", controls=["x1"], treatment_start=df.index[70], seed=seed)
    assert isinstance(res, ImpactResult)
    assert res.ci_low < 10 < res.ci_high
    assert res.p_value < 0.01
    assert res.p_value > 0      # (k + 1) / (n + 1): never zero
    assert res.p_value == pytest.approx(1 / (res.n_sims + 1))


def test_no_effect_is_not_significant():
    df = _documented_example(7, effect=0.0)
    res = causal_impact(df, outcome="y", controls=["x1"], treatment_start=df.index[70])
    assert res.ci_low < 0 < res.ci_high
    assert res.p_value > 0.025


def test_series_and_cumulative_effects_consistent():
    df = _documented_example(3)
    res = causal_impact(df, outcome="y", controls=["x1"], treatment_start=df.index[70])
    s = res.series
    post = s.index >= df.index[70]
    assert res.n_post == 30
    assert res.effect == pytest.approx(s.loc[post, "point_effect"].mean())
    assert res.cumulative_effect == pytest.approx(s.loc[post, "point_effect"].sum())
    assert s.loc[post, "cum_effect"].iloc[-1] == pytest.approx(res.cumulative_effect)
    assert (s.loc[post, "predicted_low"] <= s.loc[post, "predicted_high"]).all()
    assert res.relative_effect == pytest.approx(res.effect / res.predicted_mean)
    assert res.relative_ci_low < res.relative_effect < res.relative_ci_high
    # the average's interval is narrower than the average of pointwise intervals (paths are averaged)
    pointwise = (s.loc[post, "point_effect_high"] - s.loc[post, "point_effect_low"]).mean()
    assert res.ci_high - res.ci_low < pointwise


def test_same_seed_same_answer():
    df = _documented_example(4)
    a = causal_impact(df, outcome="y", controls=["x1"], treatment_start=df.index[70], seed=3)
    b = causal_impact(df, outcome="y", controls=["x1"], treatment_start=df.index[70], seed=3)
    assert a.to_dict() == b.to_dict()


def test_report_reading_plot_and_dict():
    df = _documented_example(2)
    res = causal_impact(df, outcome="y", controls=["x1"], treatment_start=df.index[70])
    text = res.report()
    assert "statistically significant" in text and "95% interval" in text and "In relative terms" in text
    assert "%" in res.reading()
    d = json.loads(json.dumps(res.to_dict()))
    assert d["design"] == "causal_impact" and d["n_post"] == 30
    axes = res.plot()
    assert len(axes) == 3 and len(axes[0].lines) >= 2
    import matplotlib.pyplot as plt

    _, given = plt.subplots(1, 3)
    assert list(res.plot(ax=given)) == list(given)
    with pytest.raises(ValueError, match="three Axes"):
        res.plot(ax=given[:2])


def test_affected_control_is_flagged():
    df = _documented_example(6)
    df["x2"] = 50 + np.random.default_rng(0).normal(0, 1, 100)
    df.loc[df.index[70]:, "x2"] += 8             # the campaign spilled into this control
    res = causal_impact(df, outcome="y", controls=["x1", "x2"], treatment_start=df.index[70])
    flagged = " ".join(res.warnings)
    assert "'x2' shifted" in flagged and "'x1' shifted" not in flagged


def test_weekly_seasonality_and_trend_options():
    rng = np.random.default_rng(1)
    n = 140
    x = 50 + np.cumsum(rng.normal(0, 0.5, n))
    week = np.tile([0, 1, 2, 3, 2, -4, -4], n // 7)
    y = x + week + rng.normal(0, 0.5, n)
    y[112:] += 3
    df = pd.DataFrame({"y": y, "x": x}, index=pd.date_range("2024-01-01", periods=n))
    res = causal_impact(df, outcome="y", controls=["x"], treatment_start=df.index[112], seasonal=7)
    assert res.ci_low < 3 < res.ci_high and res.ci_low > 0
    res_t = causal_impact(df, outcome="y", controls=None, treatment_start=df.index[112], trend=True,
                          n_sims=200, parameter_uncertainty=True)
    assert np.isfinite(res_t.effect) and res_t.n_sims == 200


def test_variance_at_zero_is_integrated_over():
    """Default: a variance estimated at zero is redrawn from the likelihood's normal approximation on the
    square-root scale; with every variance interior the paths are the plug-in ones."""
    from analysis.lift.its import BOUNDARY_VARIANCE

    df = _documented_example(3)       # the level's variance is estimated at zero (y has no level drift)
    kw = dict(outcome="y", controls=["x1"], treatment_start=df.index[70], seed=1)
    plug = causal_impact(df, parameter_uncertainty="none", **kw)
    default = causal_impact(df, **kw)
    assert plug.params["sigma2.level"] < BOUNDARY_VARIANCE
    assert default.ci_high - default.ci_low > 1.2 * (plug.ci_high - plug.ci_low)
    assert default.ci_low < 10 < default.ci_high
    full = causal_impact(df, parameter_uncertainty="laplace", **kw)
    assert full.ci_high - full.ci_low > plug.ci_high - plug.ci_low
    df2 = _documented_example(2)      # both variances interior
    kw2 = {**kw, "treatment_start": df2.index[70]}
    plug2 = causal_impact(df2, parameter_uncertainty="none", **kw2)
    assert (plug2.params > BOUNDARY_VARIANCE).all()
    assert causal_impact(df2, **kw2).to_dict() == plug2.to_dict()


def test_scale_mixture_is_student_t_around_the_plug_in_paths():
    """``"scale"``: plug-in Gaussian paths scaled by sqrt(nu / chi2_nu), i.e. Student t with nu d.f."""
    from scipy import stats

    from analysis.lift.its import _fit_model, _scale_df

    df = _documented_example(8, effect=0.0)
    kw = dict(outcome="y", controls=["x1"], treatment_start=df.index[70], n_sims=4000, seed=2)
    plug = causal_impact(df, parameter_uncertainty="none", **kw)
    mixed = causal_impact(df, parameter_uncertainty="scale", **kw)
    ys = (df["y"] - df["y"].iloc[:70].mean()) / df["y"].iloc[:70].std()
    xs = (df[["x1"]] - df[["x1"]].iloc[:70].mean()) / df[["x1"]].iloc[:70].std()
    _, res = _fit_model(ys.to_numpy()[:70], xs.to_numpy()[:70], seasonal=None, trend=False)
    nu = _scale_df(res)
    assert nu == res.nobs_effective - (len(res.params) - 1)
    # same centre, wider by about the ratio of t to normal quantiles (Monte Carlo error a few %)
    assert mixed.effect == pytest.approx(plug.effect, abs=0.05 * (plug.ci_high - plug.ci_low))
    ratio = (mixed.ci_high - mixed.ci_low) / (plug.ci_high - plug.ci_low)
    expected = stats.t.ppf(0.975, nu) / stats.norm.ppf(0.975)
    assert ratio > 1.0
    assert ratio == pytest.approx(expected, rel=0.05)
    with pytest.raises(ValueError, match="parameter_uncertainty"):
        causal_impact(df, parameter_uncertainty="bayes", **kw)


@pytest.mark.parametrize("kwargs, message", [
    ({"controls": ["nope"]}, "not found"),
    ({"controls": ["y"]}, "cannot also be a control"),
    ({"treatment_start": pd.Timestamp("2014-01-05")}, "at least 10 pre-period"),
    ({"treatment_start": pd.Timestamp("2015-01-01")}, "No observation"),
])
def test_clear_errors(kwargs, message):
    df = _documented_example(1)
    args = {"outcome": "y", "controls": ["x1"], "treatment_start": df.index[70], **kwargs}
    with pytest.raises(ValueError, match=message):
        causal_impact(df, **args)


def test_pinned_seed_study():
    s = summarise_study(simulation_study(12, effect=5.0, seed=300, n_paths=300, progress_bar=False))
    assert s["coverage"] >= 0.75
    assert abs(s["relative_bias"]) < 0.3


@pytest.mark.slow
def test_many_seed_validation():
    lifted = summarise_study(simulation_study(300, effect=5.0, progress_bar=False))
    null = summarise_study(simulation_study(300, effect=0.0, progress_bar=False))
    assert 0.92 <= lifted["coverage"] <= 0.98
    assert abs(lifted["relative_bias"]) < 0.05
    assert null["rejection_rate_ci"] <= 0.06


def test_geo_holdout_each_control_region_as_regressor():
    """Simulator seed 11: the treated regions' total against every control region covers the truth."""
    from analysis.lift.synth import geo_panel
    from analysis.simulate import generate

    tables, truth = generate(seed=11, campaigns=4, days=240, show_progress=False)
    geo = next(x for x in truth["campaigns"]["C01"]["lift"] if x["design"] == "geo")
    start, end = pd.Timestamp(geo["window"]["start"]), pd.Timestamp(geo["window"]["end"])
    panel = geo_panel(tables["geo_sales_daily"], tables["geo_assignment"], "C01")
    wide = panel.pivot(index="date", columns="region", values="revenue")
    controls = [c for c in wide.columns if c != "treated"]
    res = causal_impact(wide, outcome="treated", controls=controls, treatment_start=start, treatment_end=end,
                        n_sims=400, seed=1)
    assert len(res.controls) == len(controls) >= 15
    assert res.ci_low <= geo["effect"] <= res.ci_high and res.ci_low > 0
    assert res.relative_effect == pytest.approx(geo["relative_effect"], abs=0.03)
    assert res.series.index.max() == end
