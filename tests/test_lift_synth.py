"""Synthetic control: published Basque weights, placebo inference, conformal intervals, geo panels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis.config
from analysis.lift import synthetic_control
from analysis.lift.synth import (SynthResult, factor_panel, geo_panel, simplex_weights, simulation_study,
                                 summarise_study)

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


def test_geo_holdout_on_simulator_truth():
    import analysis.simulate as sim

    if not hasattr(sim, "generate"):
        pytest.skip("analysis.simulate.generate is not available yet")
    tables, truth = sim.generate(seed=7, campaigns=4, days=240)
    camps = tables["campaigns"].set_index("campaign_id")
    checked = 0
    for cid, t in truth["campaigns"].items():
        geo = [x for x in t.get("lift", []) if x["design"] == "geo"]
        if not geo:
            continue
        panel = geo_panel(tables["geo_sales_daily"], tables["geo_assignment"], cid, metric=geo[0]["metric"])
        res = synthetic_control(panel, outcome=geo[0]["metric"], unit="region", time="date",
                                treated_unit="treated", treatment_start=pd.Timestamp(camps.loc[cid, "start_date"]),
                                treatment_end=pd.Timestamp(camps.loc[cid, "end_date"]), progress_bar=False)
        assert res.ci_low <= geo[0]["effect"] <= res.ci_high
        checked += 1
    assert checked >= 1


@pytest.mark.slow
def test_many_seed_validation():
    lifted = summarise_study(simulation_study(300, effect=5.0, progress_bar=False))
    null = summarise_study(simulation_study(300, effect=0.0, progress_bar=False))
    assert 0.92 <= lifted["coverage"] <= 0.98
    assert abs(lifted["relative_bias"]) < 0.05
    assert null["rejection_rate_ci"] <= 0.06
    assert null["rejection_rate_placebo"] <= 0.06
