"""Tests of analysis.lift.power."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from analysis.lift.power import geo_power, power


def test_sample_size_matches_statsmodels_and_textbook():
    r = power(baseline=0.10, mde=0.02)
    n = NormalIndPower().solve_power(proportion_effectsize(0.12, 0.10), alpha=0.05, power=0.8)
    assert r.n_control == int(np.ceil(n))
    # Fleiss' normal approximation without continuity correction: 3,841 per group for 10 % vs 12 %
    assert power(baseline=0.10, mde=0.02, method="normal").n_control == 3841
    rel = power(baseline=0.10, mde=0.2, relative=True)
    assert rel.n_control == r.n_control


@pytest.mark.parametrize("method", ["arcsine", "normal"])
def test_mde_inverts_sample_size(method):
    r = power(baseline=0.25, mde=0.03, method=method, ratio=1.5)
    back = power(baseline=0.25, n=r.n_control, method=method, ratio=1.5)
    assert back.mde == pytest.approx(0.03, abs=2e-4)
    assert back.mde <= 0.03 + 1e-9  # rounding n up can only shrink the MDE
    assert r.n_treatment == int(np.ceil(1.5 * r.n_control))
    json.dumps(r.to_dict(), allow_nan=False)
    assert r.plot() is not None and "respondents" in r.reading()


def test_power_errors():
    with pytest.raises(ValueError, match="exactly one"):
        power(baseline=0.1)
    with pytest.raises(ValueError, match="baseline"):
        power(baseline=1.2, mde=0.1)


def _history(seed, T=240, R=16, phi=0.6):
    rng = np.random.default_rng(seed)
    base = np.exp(rng.normal(5, 0.3, R))
    season = 1 + 0.2 * np.sin(np.arange(T) * 2 * np.pi / 7)
    e = np.zeros((T, R))
    for t in range(T):
        e[t] = (phi * e[t - 1] if t else 0) + rng.normal(0, 0.05, R)
    y = base[None, :] * season[:, None] * np.exp(e)
    return pd.DataFrame({"region": np.tile([f"R{i:02d}" for i in range(R)], T),
                         "date": np.repeat(pd.date_range("2025-01-01", periods=T), R), "revenue": y.ravel()})


def test_geo_power_false_positive_and_monotone():
    g = geo_power(_history(1), unit="region", time="date", outcome="revenue", treated_units=["R00", "R01", "R02"],
                  effect_sizes=[0.03, 0.1, 0.3], n_sims=200, test_days=14, alpha=0.1, seed=3)
    t = g.table.set_index("effect_size")
    # the effect-free windows set the spread, so they are flagged at most at the nominal rate
    assert 0.0 < t.loc[0.0, "power"] <= 0.10
    # the critical value is t(0.95, df) times the effect-free estimates' root mean square
    assert g.df == (240 - 56) // 14 - 1
    null = geo_power(_history(1), unit="region", time="date", outcome="revenue",
                     treated_units=["R00", "R01", "R02"], effect_sizes=[], n_sims=200, test_days=14,
                     alpha=0.1, seed=3)
    assert null.critical_value == pytest.approx(g.critical_value)
    rmse0 = t.loc[0.0, "rmse"]  # effect 0: the root mean square of the estimates themselves
    from scipy import stats
    assert g.critical_value == pytest.approx(stats.t.ppf(0.95, g.df) * rmse0)
    assert f"{g.critical_value:.1%}" in g.reading()
    assert g.to_dict()["critical_value"] == pytest.approx(g.critical_value)
    assert t.loc[0.03, "power"] <= t.loc[0.1, "power"] <= t.loc[0.3, "power"]
    assert t.loc[0.3, "power"] > 0.95
    assert t.loc[0.1, "mean_estimate"] == pytest.approx(0.1, abs=0.01)
    assert g.mde is not None and g.mde <= 0.3
    json.dumps(g.to_dict(), allow_nan=False)
    assert g.plot() is not None
    g2 = geo_power(_history(1), unit="region", time="date", outcome="revenue",
                   treated_units=["R00", "R01", "R02"], effect_sizes=[0.03, 0.1, 0.3], n_sims=200,
                   test_days=14, alpha=0.1, seed=3)
    pd.testing.assert_frame_equal(g.table, g2.table)


def test_geo_power_errors():
    h = _history(0, T=60)
    with pytest.raises(ValueError, match="not in the panel"):
        geo_power(h, unit="region", time="date", outcome="revenue", treated_units=["XX"])
    with pytest.raises(ValueError, match="needed"):
        geo_power(h, unit="region", time="date", outcome="revenue", treated_units=["R00"], test_days=28)


def _totals(h, treated):
    wide = h.pivot(index="date", columns="region", values="revenue")
    return wide[treated].sum(axis=1).to_numpy(), wide.drop(columns=treated).sum(axis=1).to_numpy()


def test_geo_power_warns_on_short_history():
    h = _history(2, T=120)
    g = geo_power(h, unit="region", time="date", outcome="revenue", treated_units=["R00"], effect_sizes=[0.1],
                  n_sims=50, test_days=14, seed=0)
    assert g.df == (120 - 56) // 14 - 1
    assert any("disjoint" in w for w in g.warnings)


@pytest.mark.slow
def test_geo_power_critical_value_holds_size_on_the_next_window():
    """Calibrate on 240 days of history, test the following 14 days (no effect): 400 histories."""
    from analysis.lift.power import _window_estimate

    treated = ["R00", "R01", "R02"]
    rejects, in_sample = [], []
    for s in range(400):
        h = _history(500 + s, T=254)
        hist = h[h["date"] < h["date"].min() + pd.Timedelta(days=240)]
        g = geo_power(hist, unit="region", time="date", outcome="revenue", treated_units=treated,
                      effect_sizes=[], n_sims=200, alpha=0.1, seed=s, show_progress=False)
        tr, ct = _totals(h, treated)
        est = _window_estimate(tr, ct, slice(240 - g.pre_days, 240), slice(240, 254))
        rejects.append(abs(est) > g.critical_value)
        in_sample.append(g.table.loc[g.table["effect_size"] == 0, "power"].iloc[0])
    rate = float(np.mean(rejects))
    # nominal 10 %; binomial SE 1.5 points at 400 histories
    assert 0.07 <= rate <= 0.13
    assert np.mean(in_sample) <= 0.10
