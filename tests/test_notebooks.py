"""The committed notebooks: papermill integration against the KPI engine and the simulator's truth, and nbval.

The campaign notebook's results come from the session's shared report run (``test_report.shared_reports``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from analysis import campaign as cr
from analysis.config import NOTEBOOKS_DIR, PROJ_ROOT
from analysis.kpis import kpi_table
from analysis.results import dumps_results, read_results
from test_report import SHARED_CAMPAIGNS, shared_reports

NOTEBOOKS = ("00_explore", "10_campaign_report", "20_postmortem")


@pytest.fixture(scope="session")
def reports_run(sim_processed, tmp_path_factory):
    return shared_reports(sim_processed, tmp_path_factory)


@pytest.fixture(scope="session")
def results(reports_run) -> dict[str, dict]:
    out, outcomes = reports_run
    bad = {o["campaign_id"]: o["error"] for o in outcomes if o["status"] != "ok"}
    assert not bad, f"campaign reports failed: {bad}"
    return {cid: read_results(out / cid / "results.json") for cid in SHARED_CAMPAIGNS}


# ---------------------------------------------------------------- committed notebooks are reviewable

@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_pairs_and_metadata(name):
    nb = nbformat.read(str(NOTEBOOKS_DIR / f"{name}.ipynb"), as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert (NOTEBOOKS_DIR / f"{name}.py").read_text().startswith("# ---\n# jupyter:")
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert sum("parameters" in t for t in tags) == 1
    for cell, t in zip(nb.cells, tags):
        if cell.cell_type == "code" and "nbval-check-output" not in t:
            assert not cell.get("outputs"), f"{name}: only nbval-checked cells may carry outputs"
        if cell.cell_type == "code":
            assert "for " not in cell.source, f"{name}: loops belong in the package"


# ---------------------------------------------------------------- results.json against the engines and the truth

def test_kpis_equal_the_kpi_engine(results, sim_processed):
    for cid in SHARED_CAMPAIGNS:
        row = kpi_table(sim_processed, level="campaign", campaign_id=cid).iloc[0]
        kpis = results[cid]["kpis"]
        assert {"views", "engagement_rate", "cpm", "roas"} <= set(kpis)
        for metric, entry in kpis.items():
            expected = row[metric]
            if entry["value"] is None:
                assert expected != expected or expected is None, metric  # NaN in the engine
            else:
                assert entry["value"] == pytest.approx(float(expected), rel=1e-9), metric
            if entry["ci_low"] is not None:
                assert entry["ci_low"] <= entry["value"] <= entry["ci_high"], metric


def test_window_objective_and_direct_conversions(results, sim_processed):
    from analysis.conversions import direct_summary
    from analysis.data import load

    ds = load(sim_processed)
    for cid in SHARED_CAMPAIGNS:
        c = ds.campaign(cid)
        r = results[cid]
        assert r["objective"] == c["objective"]
        assert r["window"] == {"start": c["start_date"].date().isoformat(), "end": c["end_date"].date().isoformat()}
        d = direct_summary(ds, cid)
        assert r["conversions"]["direct"] == {"orders": d.orders, "revenue": pytest.approx(d.revenue)}


def test_lift_intervals_cover_the_injected_effects(results, sim_truth):
    # C01: geo holdout; C02: brand-lift survey, one entry per question
    geo = [e for e in results["C01"]["lift"] if e["design"] in ("synthetic_control", "did")]
    truth = sim_truth["campaigns"]["C01"]["lift"][0]
    assert {e["design"] for e in geo} == {"synthetic_control", "did"}
    for e in geo:
        assert e["ci_low"] <= truth["effect"] <= e["ci_high"], e
        assert e["relative_effect"] == pytest.approx(truth["relative_effect"], abs=0.05)
    survey = {e["metric"]: e for e in results["C02"]["lift"]}
    for t in sim_truth["campaigns"]["C02"]["lift"]:
        e = survey[t["metric"]]
        assert e["ci_low"] <= t["effect"] <= e["ci_high"], (t["metric"], e)
    na = {x["design"] for x in results["C02"]["lift_not_available"]}
    assert "geo synthetic control" in na and "staggered difference-in-differences" in na


def test_followers_and_compliance_against_truth(results, sim_truth):
    for cid in SHARED_CAMPAIGNS:
        truth = sim_truth["campaigns"][cid]
        f = results[cid]["followers"]
        assert f.get("status", "ok") == "ok", f
        inc = truth["followers"]["incremental"]
        # the 95% interval covers the injected number, or the estimate is within 15% of it
        assert f["ci_low"] <= inc <= f["ci_high"] or abs(f["incremental"] - inc) <= 0.15 * abs(inc), (cid, f, inc)
        comp = results[cid]["compliance"]
        assert comp.get("status") == "ok", comp
        assert set(truth["compliance"]["noncompliant_post_ids"]) <= set(comp["noncompliant_post_ids"])


def test_no_section_failed(results):
    for cid, r in results.items():
        failed = [w for w in r["warnings"] if "failed" in w]
        assert not failed, (cid, failed)
        assert all(s["status"] in ("ok", "not available") for s in r["sections"].values()), r["sections"]


def test_results_are_byte_identical_in_another_process(reports_run, sim_processed):
    """The notebook's results.json equals a fresh in-process computation on the same data, byte for byte."""
    out, _ = reports_run
    rep = cr.open_report(campaign_id="C02", data_dir=str(sim_processed), out_dir=str(out / "again"))
    cr.run_all(rep)
    assert dumps_results(rep.results()) == (out / "C02" / "results.json").read_text()


def test_postmortem_command_runs_the_notebook_and_writes_the_reports_results(reports_run, sim_processed, tmp_path,
                                                                             capsys, monkeypatch):
    """``python -m analysis postmortem`` for C02: the executed notebook and its HTML, every section there, no
    cell failing, no warning printed, no progress bar in the page, and its results.json is the campaign
    report's, byte for byte (same sections, same seed)."""
    import nbformat

    from analysis.cli import main

    out, _ = reports_run
    monkeypatch.delenv("ANALYSIS_NO_PROGRESS", raising=False)  # as in a user's shell
    assert main(["postmortem", "--data", str(sim_processed), "--campaign", "C02", "--out", str(tmp_path)]) == 0
    assert f"Post-mortem written: {tmp_path / 'C02' / 'postmortem.html'}" in capsys.readouterr().out
    executed = nbformat.read(str(tmp_path / "C02" / "postmortem.ipynb"), as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    stderr = [o["text"] for c in executed.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert not any("Warning" in t for t in stderr), stderr  # e.g. tqdm's "IProgress not found" without ipywidgets
    text = "\n".join(c.source for c in executed.cells if c.cell_type == "markdown")
    for heading in ("## Abstract", "## 1. Question and estimands", "## 2. Data", "## 3. Methods",
                    "## 4. Results", "## 5. Robustness", "## 6. Threats to validity", "## 7. Reproducibility",
                    "## References"):
        assert heading in text, heading
    shown = "\n".join(str(o.get("data", {}).get("text/html", "")) for c in executed.cells
                      for o in c.get("outputs", []))
    assert "This section failed" not in shown and "Estimands and estimates" in shown
    page = (tmp_path / "C02" / "postmortem.html").read_text()
    assert "Threats to validity" in page and "it/s]" not in page and "campaign_id = " not in page
    assert (tmp_path / "C02" / "results.json").read_text() == (out / "C02" / "results.json").read_text()


# ---------------------------------------------------------------- nbval over the committed notebooks

def test_nbval_committed_notebooks(sim_processed, tmp_path):
    env = {**os.environ, "ANALYSIS_DATA_DIR": str(sim_processed), "ANALYSIS_OUT_DIR": str(tmp_path),
           "MPLBACKEND": "agg", "ANALYSIS_NO_PROGRESS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
           "--nbval-sanitize-with", str(PROJ_ROOT / "tests" / "nbval_sanitize.cfg"),
           "-o", "addopts=", "--rootdir", str(tmp_path),
           *(str(NOTEBOOKS_DIR / f"{n}.ipynb") for n in NOTEBOOKS)]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def refresh_committed_outputs(processed: Path) -> None:
    """Re-execute the notebooks on ``processed`` (the seed-7 test simulation) and keep only checked outputs."""
    import papermill as pm

    for name in NOTEBOOKS:
        path = NOTEBOOKS_DIR / f"{name}.ipynb"
        executed = pm.execute_notebook(str(path), None, parameters={"data_dir": str(processed)},
                                       kernel_name="python3", progress_bar=False, log_output=False,
                                       extra_arguments=["--IPKernelApp.log_level=ERROR"])
        nb = nbformat.read(str(path), as_version=4)
        by_source = {c.source: c for c in executed.cells}
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
            if "nbval-check-output" in cell.metadata.get("tags", []):
                cell.outputs = by_source[cell.source].outputs
                cell.execution_count = by_source[cell.source].execution_count
        nbformat.write(nb, str(path))


if __name__ == "__main__":  # python tests/test_notebooks.py PROCESSED_DIR
    refresh_committed_outputs(Path(sys.argv[1]).resolve())
