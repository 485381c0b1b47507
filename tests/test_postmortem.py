"""The post-mortem write-up: estimands, data, methods, robustness, threats and reproducibility."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from analysis import __version__
from analysis import campaign as cr
from analysis import postmortem as pm


@pytest.fixture(scope="module")
def rep(sim_processed, tmp_path_factory):
    """C01 of the test simulation: a geo holdout (C02 has the brand-lift survey)."""
    return pm.run(cr.open_report(campaign_id="C01", data_dir=str(sim_processed),
                                 out_dir=str(tmp_path_factory.mktemp("pm"))))


def test_estimands_are_the_reports_estimates(rep):
    res = rep.results()
    e = pm.estimands(rep).set_index("estimand")
    f = e.loc["incremental brand followers"]
    assert (f["estimate"], f["ci_low"], f["ci_high"]) == (res["followers"]["incremental"],
                                                        res["followers"]["ci_low"], res["followers"]["ci_high"])
    assert re.fullmatch(r"-?[\d,]+ \(-?[\d,]+ to -?[\d,]+\)", f["shown"])
    lifts = [i for i in e.index if i.startswith("lift (")]
    assert len(lifts) == len(res["lift"]) and lifts


def test_methods_say_which_analyses_this_campaign_supports(rep):
    m = pm.methods(rep).set_index("method")
    designs = {x["design"] for x in rep.results()["lift"]}
    used = {note.key for note in pm.METHODS if m.loc[note.method, "used here"] == "yes"}
    assert used == designs | {"attribution", "sentiment"}
    assert {"synthetic_control", "did"} <= used and "survey" not in used
    assert all(v.startswith(("docs/", "tests/")) for v in m["validated in"])


def test_data_summary_carries_the_manifests_rows_and_hashes(rep):
    man = rep.data.manifest
    d = pm.data_summary(rep).set_index("table")
    assert set(d.index) == set(man.tables)
    assert (d["rows"] == [man.tables[t]["rows"] for t in d.index]).all()
    assert d.loc["posts", "sha256"] == man.inputs["posts.csv"]["sha256"][:12]
    assert d.loc["post_daily", "raw_input"] == "(derived)"


def test_robustness_reports_the_kernel_choice_and_the_calibration(rep):
    sec = pm.robustness(rep)
    assert sec.ok, sec.reason
    tables = dict(sec.tables)
    fa = rep.sections["attribution"].result
    cv = tables["Carry-over kernels by cross-validated error (the six best)"]
    assert list(cv.loc[cv["chosen"] == "yes", "kernel"]) == [fa.kernel["label"]]
    boot = tables["Kernel chosen in the bootstrap replicates"]
    assert boot["bootstrap replicates choosing it"].sum() == fa.n_boot
    cal = tables["Placebo calibration of the intervals"].iloc[0]
    assert cal["interval widening factor"] == fa.kernel["calibration"] >= 1.0
    assert tables["The total under alternative choices"].iloc[0]["incremental"] == pytest.approx(fa.incremental)
    assert len(sec.plotters) == 2 and "ranges from" in sec.reading


def test_robustness_says_when_the_placebos_are_too_few_or_absent(rep, monkeypatch):
    """The calibration's reading follows the placebos: measured, at the cap for want of placebos (the test
    simulation's 240 days hold a few, with under two degrees of freedom), or none at all (a short export)."""
    import dataclasses

    from analysis.attribution.followers import WEAK_CALIBRATION_PHRASE

    sec = rep.sections["attribution"]
    fa = sec.result
    weak = any(WEAK_CALIBRATION_PHRASE in w for w in fa.warnings)
    assert weak and fa.kernel["placebos"] > 0
    reading = pm.robustness(rep).reading
    assert f"Shifting the campaign to {fa.kernel['placebos']} dates" in reading and "too few to measure" in reading
    calibrated = dataclasses.replace(fa, warnings=tuple(w for w in fa.warnings if WEAK_CALIBRATION_PHRASE not in w))
    monkeypatch.setitem(rep.sections, "attribution", dataclasses.replace(sec, result=calibrated))
    assert "too few to measure" not in pm.robustness(rep).reading
    none = dataclasses.replace(fa, kernel={**fa.kernel, "placebos": 0, "z": np.zeros(0), "calibration": 4.0})
    monkeypatch.setitem(rep.sections, "attribution", dataclasses.replace(sec, result=none))
    out = pm.robustness(rep)
    assert "leave no room to shift the campaign" in out.reading and "Shifting the campaign to 0" not in out.reading
    assert len(out.plotters) == 1 and np.isnan(dict(out.tables)["Placebo calibration of the intervals"].iloc[0][
        "RMS placebo z"])


def test_threats_follow_the_results(rep):
    items = pm.threats(rep)
    assert all(isinstance(t, str) and t.endswith(".") for t in items)
    leak = any(w.startswith("possible code leakage") for w in rep.warnings)
    assert leak == any("code leakage" in t for t in items)
    fa = rep.sections["attribution"].result
    assert (fa.ci_low <= 0 <= fa.ci_high) == any("includes zero" in t for t in items)
    n = len(items)
    assert f"Section 6 lists {n} threat{'s' if n != 1 else ''}" in pm.abstract(rep)


def test_a_disagreeing_design_and_model_are_a_threat(rep, monkeypatch):
    """C01 is a geo test: its incremental orders come from the holdout, and the post-mortem names it."""
    full = rep.results()
    inc = full["conversions"]["incremental"]
    assert inc["source"].startswith("geo holdout")
    e = pm.estimands(rep).set_index("estimand").loc["incremental orders"]
    assert e["estimate"] == inc["orders"] and "geo holdout (synthetic control)" in e["definition"]
    assert "read from the geo holdout on the shop's orders" in pm.abstract(rep)
    model = full["conversions"]["attribution"]["incremental_model"]
    overlap = model["ci_low"] <= inc["ci_high"] and inc["ci_low"] <= model["ci_high"]
    assert overlap != any("disagree on incremental orders" in t for t in pm.threats(rep))
    far = {**model, "orders": inc["ci_high"] + 500, "ci_low": inc["ci_high"] + 100, "ci_high": inc["ci_high"] + 900}
    conv = {**full["conversions"], "attribution": {**full["conversions"]["attribution"], "incremental_model": far}}
    monkeypatch.setattr(type(rep), "results", lambda self: {**full, "conversions": conv})
    said = [t for t in pm.threats(rep) if "disagree on incremental orders" in t]
    assert len(said) == 1 and f"against {far['orders']:,.0f}" in said[0]


def test_abstract_states_the_estimates_and_is_escaped_on_display(rep):
    from analysis.htmlsafe import paragraph

    f = rep.results()["followers"]
    text = pm.abstract(rep)
    assert f"{f['incremental']:,.0f} additional new followers (95% interval {f['ci_low']:,.0f}" in text
    tail = (pd.Timestamp(f["window"]["end"]) - rep.end.normalize()).days
    assert tail > 0 and f"over the campaign and its {tail}-day tail." in text
    old = rep.campaign["brand"]
    rep.campaign["brand"] = "<script>alert(1)</script>"
    try:
        shown = paragraph(pm.abstract(rep)).data
    finally:
        rep.campaign["brand"] = old
    assert "<script>" not in shown and "&lt;script&gt;" in shown


def test_abstract_tells_increases_from_decreases(rep, monkeypatch):
    lift = [{"effect": 0.08, "ci_low": 0.03, "ci_high": 0.14}, {"effect": -0.04, "ci_low": -0.08, "ci_high": -0.01},
            {"effect": 0.01, "ci_low": -0.02, "ci_high": 0.04}]
    full = rep.results()
    monkeypatch.setattr(type(rep), "results", lambda self: {**full, "lift": lift})
    text = pm.abstract(rep)
    assert "Of 3 lift estimates from its experimental designs, 1 shows an increase and 1 a decrease whose 95% " \
        "interval excludes zero." in text
    monkeypatch.setattr(type(rep), "results", lambda self: {**full, "lift": lift[:1] + lift[2:]})
    assert "Of 2 lift estimates from its experimental designs, 1 shows an increase whose 95%" in pm.abstract(rep)


def test_reproducibility_names_versions_seed_and_command(rep):
    import statsmodels

    r = dict(pm.reproducibility(rep).itertuples(index=False))
    assert r["analysis package"] == __version__ and r["statsmodels"] == statsmodels.__version__
    assert r["seed"] == str(rep.params.seed)
    assert "-p campaign_id C01" in r["reproduce with"]


def test_only_alternatives_whose_intervals_exclude_the_estimate_count_as_disagreeing(rep):
    import numpy as np
    import pandas as pd

    from analysis.attribution import SensitivityResult

    fa = rep.sections["attribution"].result
    m = fa.incremental
    t = pd.DataFrame({"scenario": ["main", "kernel", "baseline window", "exposure"],
                      "detail": ["", "weibull only", "60 days either side", "plain views"],
                      "incremental": [m, m - 5000.0, m + 40000.0, m + 10.0],
                      "ci_low": [fa.ci_low, m - 6000.0, m - 100000.0, m - 500.0],
                      "ci_high": [fa.ci_high, m - 4000.0, m + 200000.0, m + 500.0],
                      "change": [0.0, -5000.0, 40000.0, 10.0], "change_pct": 0.0, "kernel": "k",
                      "attributed": np.nan})
    old = rep.cache["sensitivity"]
    rep.cache["sensitivity"] = SensitivityResult("C01", t, {})
    try:
        items = pm.threats(rep)
    finally:
        rep.cache["sensitivity"] = old
    hit = [x for x in items if "alternative modelling choices" in x]
    assert len(hit) == 1 and hit[0].startswith("1 of 3 alternative modelling choices disagrees")
    assert f"kernel: weibull only, {m - 5000.0:,.0f}." in hit[0] and "(its 95% interval excludes it)" in hit[0]
    assert "baseline window" not in hit[0] and "exposure" not in hit[0]


def test_reconstructed_timing_and_net_only_followers_are_threats(rep, monkeypatch):
    """The attribution's data caveats (views in multi-day snapshots, follower data with only the net daily
    change) become threats to validity; the test simulation's daily data raise neither."""
    import dataclasses

    from analysis.attribution._data import (ASSUMED_CURVE_PHRASE, LUMPED_PHRASE, NET_ONLY_WARNING,
                                            SUPPLIED_CURVE_PHRASE)

    sec = rep.sections["attribution"]
    fa = sec.result
    plain = pm.threats(rep)
    assert not any("snapshots covering several days" in t or "net daily change" in t for t in plain)
    noted = dataclasses.replace(fa, warnings=fa.warnings + (f"60% {LUMPED_PHRASE} 3 or more days", NET_ONLY_WARNING))
    monkeypatch.setitem(rep.sections, "attribution", dataclasses.replace(sec, result=noted))
    items = pm.threats(rep)
    assert len(items) == len(plain) + 2
    assert any(t.startswith("Much of the campaign posts' views came in snapshots covering several days") for t in items)
    assert any(t.startswith("The brand's follower data give only the net daily change") for t in items)
    # one snapshot per post: the timing was assumed from the published curve, or from a curve measured on
    # other data (view_curve_data), and the threat says which
    for phrase, says, not_said in ((ASSUMED_CURVE_PHRASE, "assumed from a published", "measured on other data"),
                                   (SUPPLIED_CURVE_PHRASE, "measured on other data", "assumed from a published")):
        once = [w for w in fa.warnings if LUMPED_PHRASE not in w] + [f"100% {LUMPED_PHRASE} 3 or more days: they "
                                                                      f"are {phrase} (...)"]
        monkeypatch.setitem(rep.sections, "attribution",
                            dataclasses.replace(sec, result=dataclasses.replace(fa, warnings=tuple(once))))
        items = pm.threats(rep)
        assert len(items) == len(plain) + 1
        assert any(t.startswith("The post metrics hold too few snapshots") and says in t for t in items)
        assert not any(not_said in t or t.startswith("Much of the campaign posts' views") for t in items)
    # an overlapping campaign the data cannot tell apart from this one (a collinear overlap) is a threat
    split = {"C09": {"credit": 500.0, "correlation": -0.9, "combined": 1200.0, "combined_ci_low": 900.0,
                     "combined_ci_high": 1500.0}}
    collinear = dataclasses.replace(fa, overlapping={**fa.overlapping, "C09": 500.0}, overlap_split=split)
    monkeypatch.setitem(rep.sections, "attribution", dataclasses.replace(sec, result=collinear))
    items = pm.threats(rep)
    assert any(t.startswith("Campaign C09 overlaps this one so closely") and "combined 1,200 followers (interval "
               "900 to 1,500)" in t for t in items)
    assert not any(t.startswith("Campaign ") and "overlaps this one so closely" in t for t in plain)
    # intervals widened by the calibration's cap for want of placebo windows (a short export) are a threat
    from analysis.attribution.followers import WEAK_CALIBRATION_PHRASE

    calibrated = dataclasses.replace(fa, warnings=tuple(w for w in fa.warnings if WEAK_CALIBRATION_PHRASE not in w))
    monkeypatch.setitem(rep.sections, "attribution", dataclasses.replace(sec, result=calibrated))
    items = pm.threats(rep)
    assert not any("too short around the campaign" in t for t in items)
    weak = dataclasses.replace(calibrated, warnings=calibrated.warnings + (f"{WEAK_CALIBRATION_PHRASE} (none ...)",))
    monkeypatch.setitem(rep.sections, "attribution", dataclasses.replace(sec, result=weak))
    assert len(pm.threats(rep)) == len(items) + 1
    assert any(t.startswith("The brand account's daily data are too short around the campaign") for t in
               pm.threats(rep))
    # a total whose interval lies wholly below zero is a threat too
    below = dataclasses.replace(fa, incremental=-900.0, ci_low=-1500.0, ci_high=-300.0)
    monkeypatch.setitem(rep.sections, "attribution", dataclasses.replace(sec, result=below))
    threats = pm.threats(rep)
    assert any(t.startswith("The interval of the incremental followers lies wholly below zero") for t in threats)
