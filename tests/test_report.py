"""The report runner: process pool, HTML without code, index.html, failures kept per campaign.

``shared_reports`` runs the real campaign notebook once per test session (two campaigns, two
processes); the notebook, browser and runner tests all read its outputs.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import nbformat
import pytest

from analysis import report
from analysis.cli import CommandError
from analysis.results import read_results

#: Campaigns of the seed-7 simulation run by the shared report run: a geo holdout and a survey.
SHARED_CAMPAIGNS = ("C01", "C02")
_SHARED: dict[str, tuple[Path, list[dict]]] = {}


def shared_reports(processed: Path, tmp_path_factory) -> tuple[Path, list[dict]]:
    """Run the campaign report once per session on ``processed`` (strict sections: errors fail loudly)."""
    key = str(processed)
    if key not in _SHARED:
        out = tmp_path_factory.mktemp("reports")
        old = os.environ.get("ANALYSIS_STRICT_SECTIONS")
        os.environ["ANALYSIS_STRICT_SECTIONS"] = "1"
        try:
            outcomes = report.run_reports(processed, out, campaigns=list(SHARED_CAMPAIGNS), jobs=2)
        finally:
            if old is None:
                os.environ.pop("ANALYSIS_STRICT_SECTIONS", None)
            else:
                os.environ["ANALYSIS_STRICT_SECTIONS"] = old
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
        assert f'href="{cid}/report.html"' in index
    assert index.count('class="ok"') == len(SHARED_CAMPAIGNS)


def test_html_has_no_code_no_parameters_and_png_figures(reports_run):
    out, outcomes = reports_run
    html = (out / "C01" / "report.html").read_text()
    assert "cr.kpi_tables(report)" not in html and "open_report(" not in html
    assert "Injected parameters" not in html and str(out) not in html  # no injected paths
    assert html.count("data:image/png;base64") >= 5
    assert "Did it work?" in html and "Where did the followers come from?" in html
    assert "This section failed" not in html


def test_outcomes_record_timings(reports_run):
    _, outcomes = reports_run
    for o in outcomes:
        assert o["seconds"] > o["cell_seconds"] > 0
        json.dumps(o)
