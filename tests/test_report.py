"""The report runner: process pool, HTML without code, index.html, failures kept per campaign.

``shared_reports`` runs the real campaign notebook once per test session (two campaigns, two
processes); the notebook, browser and runner tests all read its outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import stat
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from analysis import report
from analysis.cli import CommandError
from analysis.fileio import default_mode
from analysis.results import read_results

#: Campaigns of the seed-7 simulation run by the shared report run: a geo holdout and a survey.
SHARED_CAMPAIGNS = ("C01", "C02")
_SHARED: dict[str, tuple[Path, list[dict]]] = {}


def shared_reports(processed: Path, tmp_path_factory) -> tuple[Path, list[dict]]:
    """Run the campaign report once per session on ``processed`` (strict sections: errors fail loudly).

    The run sees a user's environment as far as progress bars go: ``ANALYSIS_NO_PROGRESS``, which the
    test session sets, is removed for it, so a progress bar leaking into the report would show.
    """
    key = str(processed)
    if key not in _SHARED:
        out = tmp_path_factory.mktemp("reports")
        with report._temporary_env({"ANALYSIS_STRICT_SECTIONS": "1", "ANALYSIS_NO_PROGRESS": None}):
            outcomes = report.run_reports(processed, out, campaigns=list(SHARED_CAMPAIGNS), jobs=2,
                                          show_progress=False)
        _SHARED[key] = (out, outcomes)
    return _SHARED[key]


@pytest.fixture(scope="session")
def reports_run(sim_processed, tmp_path_factory):
    return shared_reports(sim_processed, tmp_path_factory)


def _args(data, out, campaign=None, jobs=None):
    return argparse.Namespace(data=Path(data), out=Path(out), campaign=campaign, jobs=jobs)


# ---------------------------------------------------------------- errors a user can make (no kernel)

def test_unknown_campaign_is_a_clear_command_error(sim_processed, tmp_path):
    with pytest.raises(CommandError, match=r"unknown campaign id\(s\) NOPE; the data set holds: C01, C02"):
        report.cli(_args(sim_processed, tmp_path, campaign=["NOPE"]))
    assert not (tmp_path / "index.html").exists()


def test_missing_data_dir_and_bad_jobs(tmp_path):
    with pytest.raises(CommandError, match="is not a directory"):
        report.cli(_args(tmp_path / "nothing", tmp_path / "out"))
    with pytest.raises(CommandError, match="--jobs must be at least 1"):
        report.cli(_args(tmp_path, tmp_path / "out", jobs=0))


# ---------------------------------------------------------------- a failing campaign

_TINY = '''
import json
from analysis.results import empty_results, write_results
if campaign_id == "C02":
    raise RuntimeError("boom <b>for</b> C02")
write_results(out_dir + "/results.json", empty_results(campaign_id, objective="launch",
              start="2025-01-01", end="2025-01-31"))
'''


def _tiny_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('campaign_id = ""\ndata_dir = ""\nout_dir = ""')
    params.metadata["tags"] = ["parameters"]
    hidden = nbformat.v4.new_code_cell('print("SECRET-HIDDEN-CELL")')
    hidden.metadata["tags"] = ["remove-cell"]
    shown = nbformat.v4.new_code_cell('print("visible output")')
    nb.cells = [params, hidden, shown, nbformat.v4.new_code_cell(_TINY)]
    nbformat.write(nb, str(path))
    return path


def test_failing_campaign_keeps_partial_notebook_and_others_finish(sim_processed, tmp_path, monkeypatch, capsys):
    nb = _tiny_notebook(tmp_path / "tiny.ipynb")
    monkeypatch.setattr(report, "NOTEBOOK", nb)
    out = tmp_path / "out"
    status = report.cli(_args(sim_processed, out, campaign=["C01", "C02", "C03"], jobs=2))
    assert status == 1
    err = capsys.readouterr()
    assert "C02: failed" in err.err and "2 of 3 reports written" in err.out
    # the failing campaign keeps its partial notebook (with the error) and an HTML export
    partial = nbformat.read(str(out / "C02" / "report.ipynb"), as_version=4)
    assert any(o.get("ename") == "RuntimeError" for c in partial.cells for o in c.get("outputs", []))
    assert not (out / "C02" / "results.json").exists()
    for cid in ("C01", "C03"):
        read_results(out / cid / "results.json")
        html = (out / cid / "report.html").read_text()
        assert "visible output" in html
        assert "SECRET-HIDDEN-CELL" not in html  # remove-cell dropped
        assert "print(" not in html  # no code
    index = (out / "index.html").read_text()
    assert "boom &lt;b&gt;for&lt;/b&gt; C02" in index and "<b>for</b>" not in index
    assert index.count('class="failed"') == 1 and index.count('class="ok"') == 2


# ---------------------------------------------------------------- the real notebook (shared run)

def test_shared_run_succeeds_with_every_output(reports_run):
    out, outcomes = reports_run
    failed = {o["campaign_id"]: o["error"] for o in outcomes if o["status"] != "ok"}
    assert not failed, f"campaign reports failed: {failed}"
    index = (out / "index.html").read_text()
    for cid in SHARED_CAMPAIGNS:
        for name in ("report.ipynb", "report.html", "results.json"):
            assert (out / cid / name).is_file()
            # atomic writes go through private temporary files; the reports are not left private
            assert stat.S_IMODE((out / cid / name).stat().st_mode) == default_mode(), name
        assert f'href="{cid}/report.html"' in index
        # the index row: incremental followers with their interval, and how many targets were met
        r = read_results(out / cid / "results.json")
        f = r["followers"]
        assert f'{f["incremental"]:,.0f}<div class="ci">{f["ci_low"]:,.0f} to {f["ci_high"]:,.0f}</div>' in index
        targeted = [ln for ln in r["scorecard"]["lines"] if ln["target"] is not None]
        met = sum(ln["status"] == "met" for ln in targeted)
        assert f"<td>{met} of {len(targeted)}</td>" in index
        assert f'<td><a href="{cid}/report.html">{cid}</a></td>' in index  # the campaign opens its report
    assert index.count('class="ok"') == len(SHARED_CAMPAIGNS)
    assert "<th>Targets met</th>" in index and '<th class="num">Engagement rate (views)</th>' in index


def test_html_has_no_code_no_parameters_and_png_figures(reports_run):
    out, outcomes = reports_run
    html = (out / "C01" / "report.html").read_text()
    assert "cr.kpi_tables(report)" not in html and "open_report(" not in html
    assert "Injected parameters" not in html and str(out) not in html  # no injected paths
    assert html.count("data:image/png;base64") >= 5
    assert "Did it work?" in html and "Where did the followers come from?" in html
    assert "This section failed" not in html
    for cid in SHARED_CAMPAIGNS:  # "ran an awareness campaign", "ran a conversions campaign"
        page = (out / cid / "report.html").read_text()
        article, objective = re.search(r" ran (an?) (\w+) campaign from", page).groups()
        assert article == ("an" if objective[0] in "aeiou" else "a"), (cid, article, objective)


def test_lift_readings_speak_in_the_outcomes_units(reports_run):
    out, _ = reports_run
    page = (out / "C01" / "report.html").read_text()  # C01 of the test simulation has a geo holdout
    assert re.search(r"Geo difference-in-differences: revenue changed by [+-]\$[\d,.]+k? per day across the \d+ "
                     r"treated regions \(95% interval [+-]\$[\d,.]+k? to [+-]\$", page), "money in the geo reading"


def test_survey_p_values_say_they_are_adjusted(reports_run):
    out, _ = reports_run  # C02 of the test simulation has a brand-lift survey
    lift = json.loads((out / "C02" / "results.json").read_text())["lift"]
    survey = [e for e in lift if e["design"].startswith("survey")]
    assert survey and all(e["p_value_adjustment"].startswith("Holm, across") for e in survey)
    assert all(e["p_value"] >= e["p_value_raw"] for e in survey)
    page = (out / "C02" / "report.html").read_text()
    assert "p_value adjustment" in page and "Holm, across" in page


def test_creators_are_named_by_handle_and_warnings_are_not_repeated(reports_run, sim_processed):
    import pandas as pd

    out, _ = reports_run
    creators = pd.read_parquet(sim_processed / "creators.parquet").astype({"creator_id": str, "handle": str})
    ids = set(creators["creator_id"])
    seen_leak = False
    for cid in SHARED_CAMPAIGNS:
        warnings = json.loads((out / cid / "results.json").read_text())["warnings"]
        # campaigns overlapping the after-window are named in one warning, not one each
        assert sum("days after this one" in w for w in warnings) <= 1, warnings
        for w in warnings:
            if w.startswith("possible code leakage"):
                seen_leak = True
                named = w.split(": ", 1)[1].split(", ")
                assert named and not set(named) & ids and set(named) <= set(creators["handle"]), w
        html = (out / cid / "report.html").read_text()
        for caption in ("Most-liked positive comments", "Issues"):
            table = html.split(f'<p class="table-caption"><strong>{caption}</strong></p>', 1)
            if len(table) == 2:
                head = table[1].split("</thead>", 1)[0]
                left = '<th style="text-align: left;">'
                assert f"{left}creator_id</th>" in head and f"{left}handle</th>" in head, caption
        assert "&lt;NA&gt;" not in html and "<td><NA></td>" not in html
    assert seen_leak, "the test simulation should flag code leakage in one of its campaigns"


def test_attribution_section_lists_posts_and_reconciles_orders(reports_run):
    out, _ = reports_run
    html = (out / "C01" / "report.html").read_text()
    assert "Modelled incremental followers by post" in html
    conv = json.loads((out / "C01" / "results.json").read_text())["conversions"]
    recon = conv["attribution"]["reconciliation"]
    assert recon.startswith("Directly attributed") and recon.split(":")[0] in html.replace("&#x27;", "'")
    # C01 of the test simulation is a geo test: its incremental orders are read from the holdout, the
    # model's kept beside them; C02 has no regional design and keeps the model's
    assert conv["incremental"]["source"].startswith("geo holdout") and "from the geo holdout" in recon
    assert conv["attribution"]["incremental_model"]["source"].startswith("baseline-and-exposure model")
    left = '<td style="text-align: left;">'  # text cells are left-aligned, numbers right
    assert f"{left}incremental (geo holdout)</td>" in html and f"{left}incremental (model)</td>" in html
    c02 = json.loads((out / "C02" / "results.json").read_text())["conversions"]
    assert c02["incremental"]["source"].startswith("baseline-and-exposure model")
    # "Did it work?" reads the geo design on regional sales and names the same design's shop orders, the
    # figure of the conversions block; a campaign without a regional design has no such paragraph
    inc = conv["incremental"]
    lift_part = html.split("Did it work?", 1)[1].split("Where did the followers come from?", 1)[0]
    assert (f"the geo holdout gives {inc['orders']:,.0f} incremental orders" in lift_part
            and f"interval {inc['ci_low']:,.0f} to {inc['ci_high']:,.0f}" in lift_part)
    assert ("The interval includes zero" in lift_part) == (inc["ci_low"] <= 0 <= inc["ci_high"])
    assert "Shop orders, same design" not in (out / "C02" / "report.html").read_text()


def test_no_progress_bar_reaches_the_report(reports_run):
    # the shared run had ANALYSIS_NO_PROGRESS unset, as a user's shell has; the sensitivity analysis
    # shows a progress bar in JupyterLab, but a report's kernel runs with the bars off
    out, _ = reports_run
    for cid in SHARED_CAMPAIGNS:
        nb = nbformat.read(str(out / cid / "report.ipynb"), as_version=4)
        streams = [o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stderr"]
        assert not [t for t in streams if "it/s" in t or "\r" in t], (cid, streams[:2])
        assert "sensitivity:" not in (out / cid / "report.html").read_text()


def test_kernel_environment_is_temporary(monkeypatch):
    monkeypatch.delenv("ANALYSIS_NO_PROGRESS", raising=False)
    monkeypatch.setenv("ANALYSIS_TEST_KEEP", "mine")
    with report._temporary_env({"ANALYSIS_NO_PROGRESS": "1", "ANALYSIS_TEST_KEEP": "theirs"}):
        assert os.environ["ANALYSIS_NO_PROGRESS"] == "1" and os.environ["ANALYSIS_TEST_KEEP"] == "theirs"
    assert "ANALYSIS_NO_PROGRESS" not in os.environ and os.environ["ANALYSIS_TEST_KEEP"] == "mine"
    with report._temporary_env({"ANALYSIS_TEST_KEEP": None}):  # None removes a variable for the while
        assert "ANALYSIS_TEST_KEEP" not in os.environ
    assert os.environ["ANALYSIS_TEST_KEEP"] == "mine"


def test_attribution_section_shows_persistence_of_own_video_views(reports_run):
    out, _ = reports_run
    html = (out / "C01" / "report.html").read_text()
    assert "Views of the brand&#x27;s own videos after the campaign" in html or \
        "Views of the brand's own videos after the campaign" in html
    pers = json.loads((out / "C01" / "results.json").read_text())["followers"]["persistence"]
    assert pers["days"] == 30 and pers["ci_low"] < pers["ratio"] < pers["ci_high"]
    assert pers["placebos"] >= 5 and pers["calibration"] >= 1.0


def test_attribution_section_shows_how_much_the_answer_moves(reports_run):
    out, _ = reports_run
    html = (out / "C01" / "report.html").read_text()
    assert "How much the answer moves: the total under alternative choices" in html
    res = json.loads((out / "C01" / "results.json").read_text())["followers"]
    sens = res["sensitivity"]
    main = sens["scenarios"][0]
    assert main["scenario"] == "main" and main["change"] == 0
    assert main["incremental"] == pytest.approx(res["incremental"], rel=1e-6)  # the report's own estimate
    scen = {s["scenario"] for s in sens["scenarios"]}
    assert {"kernel", "pooling", "exposure", "baseline window", "leave one creator out"} <= scen
    assert sens["range"][0] <= sens["range"][1] and "ranges from" in sens["reading"]
    assert sens["reading"][:40] in html.replace("&#x27;", "'")


def test_attribution_tables_show_formatted_numbers(reports_run):
    """Retention, orders and revenue, and the comparison's ratio are shown as counts, percentages and
    money, not as raw floats such as 0.040883 or 2705.000000."""
    out, _ = reports_run
    page = (out / "C01" / "report.html").read_text()
    section = page[page.index("Where did the followers come from?"):page.index("Returning creators")]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", section)
    assert cells and not [c for c in cells if re.fullmatch(r"-?[\d,]+\.\d{4,}", c.strip())]
    assert any(re.fullmatch(r"-?\$[\d.,]+k?", c.strip()) for c in cells)  # revenue as money
    # followers are counted in whole followers, as the reading says them
    f = read_results(out / "C01" / "results.json")["followers"]
    table = section[section.index("Incremental brand followers"):]
    row = re.findall(r"<td[^>]*>([^<]*)</td>", table[:table.index("</table>")])
    assert [f"{f[k]:,.0f}" for k in ("incremental", "ci_low", "ci_high")] == row[1:4], row
    assert any(re.fullmatch(r"\d+\.\d%", c.strip()) for c in cells)      # lost rates, shares
    for cid in SHARED_CAMPAIGNS:  # no table of any section shows pandas' raw floats (0.736078, 15.099439)
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", (out / cid / "report.html").read_text())
        assert not [c for c in cells if re.fullmatch(r"-?[\d,]*\.\d{5,}", c.strip())], cid


def test_outcomes_record_timings(reports_run):
    _, outcomes = reports_run
    for o in outcomes:
        assert o["seconds"] > o["cell_seconds"] > 0
        json.dumps(o)


# ---------------------------------------------------------------- sections: parameters, absent data, real errors

from analysis import campaign as cr  # noqa: E402


def test_parameters_are_validated_with_clear_messages(sim_processed, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="as_of must be an ISO date"):
        cr.validate_parameters(campaign_id="C01", data_dir=str(sim_processed), out_dir="x", as_of="yesterday")
    with pytest.raises(ValueError, match="is not a directory: run `make data`"):
        cr.validate_parameters(campaign_id="C01", data_dir=str(tmp_path / "none"), out_dir="x")
    with pytest.raises(ValueError, match="seed must be an integer"):
        cr.validate_parameters(campaign_id="C01", data_dir=str(sim_processed), out_dir="x", seed="7")
    monkeypatch.setenv("ANALYSIS_DATA_DIR", str(sim_processed))
    monkeypatch.setenv("ANALYSIS_OUT_DIR", str(tmp_path))
    p = cr.validate_parameters(campaign_id="", data_dir="data/processed", out_dir="reports/notebook")
    assert p.data_dir == Path(sim_processed).resolve() and p.out_dir == tmp_path.resolve()
    with pytest.raises(ValueError, match="unknown campaign_id 'C99'; the data set holds: C01, C02, C03, C04"):
        cr.open_report(campaign_id="C99", data_dir="data/processed", out_dir="reports/notebook")
    assert cr.open_report(campaign_id="", data_dir="data/processed", out_dir="x").campaign_id == "C01"


def test_view_curve_data_times_posts_exported_once_in_every_attribution_of_the_report(sim_processed, tmp_path):
    """Posts exported once (totals only) with ``view_curve_data`` naming a data set exported daily: the
    report's attributions assume that data set's measured curve (the same answer as
    ``attribute_followers(view_curve=...)``) and say so, instead of the published curve; the post-mortem's
    reproduction line names the parameter; a path that is not a processed directory, or one whose post
    metrics give no curve, is refused by name before anything runs."""
    import numpy as np

    from analysis import postmortem as pm
    from analysis.attribution import attribute_followers, measured_view_curve
    from analysis.attribution._data import ASSUMED_CURVE_PHRASE, SUPPLIED_CURVE_PHRASE
    from analysis.ingest import ingest
    from analysis.simulate import generate, totals_exports
    from analysis.simulate.io import write_dataset

    tables, truth = generate(seed=11, campaigns=2, days=240, show_progress=False)
    write_dataset(tmp_path / "raw", totals_exports(tables), truth)
    once = tmp_path / "processed"
    ingest(tmp_path / "raw", once)
    args = {"campaign_id": "C01", "data_dir": str(once), "out_dir": str(tmp_path / "out")}
    with pytest.raises(ValueError, match="view_curve_data '.*nowhere' is not a processed directory"):
        cr.open_report(**args, view_curve_data=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"view_curve_data '.*processed': the post metrics of this data set give "
                                         "no view curve"):
        cr.open_report(**args, view_curve_data=str(once))
    rep = cr.open_report(**args, view_curve_data=str(sim_processed))
    curve = measured_view_curve(sim_processed)
    np.testing.assert_array_equal(rep.view_curve, curve)
    sec = cr.attribution(rep)
    assert sec.ok, sec.reason
    fa = attribute_followers(once, "C01", seed=rep.params.seed, view_curve=curve)
    assert sec.contribution["followers"]["incremental"] == pytest.approx(fa.incremental, rel=1e-9)
    assert any(SUPPLIED_CURVE_PHRASE in w for w in sec.warnings)
    assert not any(ASSUMED_CURVE_PHRASE in w for w in sec.warnings)
    main = rep.cache["sensitivity"].summary().set_index("scenario").loc["main", "incremental"]
    assert main == pytest.approx(fa.incremental, rel=1e-9)  # the sensitivity runs on the same curve
    plain = cr.open_report(**args)
    assert plain.view_curve is None
    published = attribute_followers(once, "C01", seed=plain.params.seed)
    assert abs(published.incremental - fa.incremental) > 1.0 and any(ASSUMED_CURVE_PHRASE in w
                                                                     for w in published.warnings)
    rows = dict(pm.reproducibility(rep).to_numpy())
    assert rows["reproduce with"].endswith("-p view_curve_data CURVE_DATA_DIR") and "command line" not in rows
    assert "command line" in dict(pm.reproducibility(plain).to_numpy())


class _Without:
    """A data set that hides some tables, as when optional raw files were never supplied."""

    def __init__(self, ds, hidden):
        self._ds, self._hidden = ds, set(hidden)

    def has(self, name):
        return name not in self._hidden and self._ds.has(name)

    def __getitem__(self, name):
        return None if name in self._hidden else self._ds[name]

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]


def _report(sim_processed, hidden=()):
    from analysis.data import load

    params = cr.validate_parameters(campaign_id="C01", data_dir=str(sim_processed), out_dir="x")
    return cr.CampaignReport(_Without(load(sim_processed), hidden), params)


def test_absent_optional_tables_are_not_available(sim_processed):
    rep = _report(sim_processed, hidden=("orders", "comments", "geo_assignment", "geo_sales_daily"))
    assert cr.conversions(rep).status == "not available"
    assert "no comments table" in cr.sentiment(rep).reason
    lift = cr.lift(rep)
    assert lift.status == "not available" and "geo synthetic control" in lift.reason
    # designs that are unavailable for the same reason are named together, the reason said once
    assert lift.reason.count("geo synthetic control") == 1
    assert "geo synthetic control, geo difference-in-differences, geo structural time series, staggered " \
           "difference-in-differences: the data set has no geo holdout tables" in lift.reason, lift.reason
    results = rep.results()
    assert results["sections"]["conversions"]["status"] == "not available"
    assert results["conversions"]["direct"] == {"orders": 0, "revenue": 0.0}
    assert not [w for w in results["warnings"] if "failed" in w]
    shown = cr.sentiment(rep).display_objects()[0]._repr_html_()
    assert "Not available:" in shown


class _Emptied(_Without):
    """A data set whose hidden tables are present without rows (a header-only export)."""

    def has(self, name):
        return self._ds.has(name)

    def __getitem__(self, name):
        t = self._ds[name]
        return t.iloc[:0] if name in self._hidden else t


def test_empty_optional_tables_are_called_empty_not_absent(sim_processed):
    from analysis.data import load

    params = cr.validate_parameters(campaign_id="C01", data_dir=str(sim_processed), out_dir="x")
    rep = cr.CampaignReport(_Emptied(load(sim_processed), ("orders", "comments")), params)
    conv = cr.conversions(rep)
    assert conv.status == "not available"
    assert conv.reason == "the orders table of the data set is empty (orders are optional)", conv.reason
    assert "comments table of the data set is empty" in cr.sentiment(rep).reason
    assert rep.missing("orders", "comments") == "the orders and comments tables of the data set are empty"
    absent = _report(sim_processed, hidden=("orders",))
    assert absent.missing("orders", "comments") == "the data set has no orders table"
    assert absent.missing("geo_assignment", "geo_sales_daily", label="geo holdout") == ""
    warned = cr.data_quality(rep).warnings[0]
    assert "orders (empty)" in warned and "comments (empty)" in warned, warned
    assert cr.data_quality(absent).warnings[0] == "Optional tables absent from the data set: orders."


class _Trimmed(_Without):
    """A data set whose brand account history starts after a date (an export begun too late)."""

    def __init__(self, ds, after):
        super().__init__(ds, ())
        self._after = after

    def __getitem__(self, name):
        t = self._ds[name]
        return t[pd.to_datetime(t["date"]) > self._after] if name == "brand_account_daily" else t


def test_brand_history_outside_the_window_makes_attribution_not_available(sim_processed):
    from analysis.data import load

    ds = load(sim_processed)
    c01 = ds["campaigns"].set_index("campaign_id").loc["C01"]
    after = pd.Timestamp(c01["end_date"]) + pd.Timedelta(days=60)
    params = cr.validate_parameters(campaign_id="C01", data_dir=str(sim_processed), out_dir="x")
    sec = cr.attribution(cr.CampaignReport(_Trimmed(ds, after), params))
    assert sec.status == "not available", (sec.status, sec.reason)
    assert "do not overlap campaign 'C01'" in sec.reason and sec.reason.startswith("brand_account_daily: ")


class _Weekly(_Without):
    """A data set whose brand account history holds weekly totals (an export summed by week)."""

    def __getitem__(self, name):
        t = self._ds[name]
        if name != "brand_account_daily":
            return t
        d = t.assign(date=pd.to_datetime(t["date"])).set_index("date")
        agg = {c: "last" if c == "followers" else "sum" if pd.api.types.is_numeric_dtype(d[c]) else "first"
               for c in d.columns}
        return d.resample("W-SUN").agg(agg).reset_index()


def test_weekly_brand_totals_make_attribution_not_available_with_the_rule(sim_processed):
    from analysis.data import load

    ds = load(sim_processed)
    params = cr.validate_parameters(campaign_id="C01", data_dir=str(sim_processed), out_dir="x")
    sec = cr.attribution(cr.CampaignReport(_Weekly(ds, ()), params))
    assert sec.status == "not available", (sec.status, sec.reason)
    assert sec.reason.startswith("brand_account_daily, column date: ") and "rule: one row per day" in sec.reason


def test_missing_module_is_not_available(sim_processed, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "analysis.sentiment", None)
    rep = _report(sim_processed)
    sec = cr.sentiment(rep)
    assert sec.status == "not available" and "analysis.sentiment" in sec.reason


def test_real_errors_are_recorded_shown_and_raised_in_strict_mode(sim_processed, monkeypatch):
    import analysis.kpis

    def broken(*_a, **_k):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(analysis.kpis, "kpi_table", broken)
    monkeypatch.delenv("ANALYSIS_STRICT_SECTIONS", raising=False)
    rep = _report(sim_processed)
    sec = cr.kpi_tables(rep)
    assert sec.status == "error" and "RuntimeError: engine exploded" in sec.reason
    assert any("KPI tables" in w and "engine exploded" in w for w in rep.results()["warnings"])
    assert "This section failed:" in sec.display_objects()[0]._repr_html_()
    monkeypatch.setenv("ANALYSIS_STRICT_SECTIONS", "1")
    with pytest.raises(RuntimeError, match="engine exploded"):
        cr.kpi_tables(_report(sim_processed))


def test_engine_writes_the_notebook_at_start_and_end_and_keeps_failures(tmp_path, monkeypatch):
    """The report engine does not rewrite the notebook around every cell, but a failing cell's
    partial notebook (outputs so far and the error) is still written."""
    import papermill as pm
    import papermill.engines as engines

    writes = []
    real = engines.write_ipynb
    monkeypatch.setattr(engines, "write_ipynb", lambda nb, path: (writes.append(path), real(nb, path)))
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_code_cell(f"print({i})") for i in range(8)]
    nb.cells.append(nbformat.v4.new_code_cell("raise ValueError('boom')"))
    nb.cells.append(nbformat.v4.new_code_cell("print('never')"))
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    report._register_engine()
    with pytest.raises(pm.PapermillExecutionError, match="boom"):
        pm.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False,
                            engine_name=report.ENGINE)
    assert 2 <= len(writes) <= 4 < 2 * len(nb.cells)  # papermill's engine: two writes per cell
    got = nbformat.read(out, as_version=4)
    texts = ["".join(o.get("text", "") for o in c.get("outputs", [])) for c in got.cells]
    assert any("7" in t for t in texts)
    assert any(o.get("ename") == "ValueError" for c in got.cells for o in c.get("outputs", []))


def test_parallel_reports_split_the_cores_between_kernels_and_restore_the_environment(sim_processed, tmp_path,
                                                                                     monkeypatch):
    seen = {}

    def fake_pool(ids, data_dir, out_dir, notebook, timeout, jobs, show_progress):
        seen[jobs] = {v: os.environ.get(v) for v in report.THREAD_VARS}
        return []

    monkeypatch.setattr(report, "_run_pool", fake_pool)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    for v in report.THREAD_VARS:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")  # a user's own setting is kept
    report.run_reports(sim_processed, tmp_path, jobs=2)
    report.run_reports(sim_processed, tmp_path, jobs=1)
    assert seen[2] == {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "3"}
    assert seen[1] == {"OMP_NUM_THREADS": None, "OPENBLAS_NUM_THREADS": None, "MKL_NUM_THREADS": "3"}
    assert "OMP_NUM_THREADS" not in os.environ and os.environ["MKL_NUM_THREADS"] == "3"
