"""Execute the campaign report notebook for each campaign and export HTML without code.

``python -m analysis report --data DIR --out DIR [--campaign ID ...] [--jobs N]`` runs
``notebooks/10_campaign_report.ipynb`` once per campaign with papermill, in a process pool
(one kernel per process, absolute paths), with a per-cell timeout and a progress bar. Each
campaign gets ``OUT/<campaign_id>/report.ipynb``, ``report.html`` (no code, no prompts, no
injected-parameters cell, figures embedded as PNG) and ``results.json``; ``OUT/index.html``
links them with each campaign's status and key figures. A failing campaign keeps its partial
notebook and its error; the others finish; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from analysis.config import NOTEBOOKS_DIR
from analysis.fileio import atomic_write_text

__all__ = ["NOTEBOOK", "POSTMORTEM", "ReportOutcome", "cli", "export_html", "postmortem_cli", "run_one", "run_reports",
           "write_index"]

#: The per-campaign notebook.
NOTEBOOK = NOTEBOOKS_DIR / "10_campaign_report.ipynb"
#: The academic-style post-mortem of one campaign (``python -m analysis postmortem``).
POSTMORTEM = NOTEBOOKS_DIR / "20_postmortem.ipynb"
#: Seconds a single cell may run before the report fails.
CELL_TIMEOUT = 600
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]
#: Headline KPIs shown in index.html.
INDEX_KPIS = ("views", "engagement_rate", "cost", "cpm", "revenue", "roas")


@dataclass(frozen=True)
class ReportOutcome:
    """What happened to one campaign's report."""

    campaign_id: str
    status: str  # "ok" or "failed"
    notebook: str  # relative to the output directory
    html: str | None
    results: str | None
    error: str | None = None
    seconds: float = 0.0
    cell_seconds: float = 0.0
    export_seconds: float = 0.0
    objective: str = ""
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _kernel_env() -> None:
    os.environ["MPLBACKEND"] = "agg"
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


#: Set in the kernel's environment only: nobody watches a report being written, and a progress bar's
#: carriage-return updates would land in the notebook's stderr output and so in report.html.
KERNEL_ONLY_ENV = {"ANALYSIS_NO_PROGRESS": "1"}


@contextlib.contextmanager
def _temporary_env(values: dict[str, str | None]):
    """Set ``values`` in ``os.environ`` (which a kernel started now inherits; ``None`` removes the variable)
    and restore the previous values afterwards."""
    old = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _cell_seconds(nb: Any) -> float:
    """Sum of the cells' own execution times recorded by papermill in the notebook metadata."""
    total = 0.0
    for cell in nb.cells:
        d = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if isinstance(d, (int, float)):
            total += float(d)
    return total


def export_html(notebook_path: str | os.PathLike, html_path: str | os.PathLike) -> Path:
    """Write ``notebook_path`` as HTML with no code cells, prompts or injected parameters.

    Figures stay embedded as PNG data URIs; cells tagged ``remove-cell`` or
    ``injected-parameters`` are dropped.
    """
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    c = Config()
    c.TagRemovePreprocessor.remove_cell_tags = ("injected-parameters", "remove-cell", "parameters")
    c.TagRemovePreprocessor.remove_input_tags = ("hide-input",)
    c.TagRemovePreprocessor.enabled = True
    c.HTMLExporter.exclude_input = True
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    exporter = HTMLExporter(config=c)
    exporter.register_preprocessor(TagRemovePreprocessor(config=c), enabled=True)
    nb = nbformat.read(str(notebook_path), as_version=4)
    body, _ = exporter.from_notebook_node(nb)
    return atomic_write_text(html_path, body)


#: Seconds between writes of the output notebook while it runs (papermill's own engine writes it
#: before and after every cell); it is always written at the start and at the end, also after an error.
SAVE_EVERY_S = 10.0
#: How nbclient stops a report's kernel once the notebook has run. Every output has arrived and the notebook
#: wrote results.json itself (atomically) before its last cell ended, so the kernel holds nothing still
#: needed; a graceful shutdown (interrupt, then wait for the interpreter to tear down pandas, statsmodels
#: and matplotlib) took about 1 s of each report's overhead (1.7-1.9 s against 0.7-0.8 s immediate, C08 of
#: the demo data, two runs each).
KERNEL_SHUTDOWN = "immediate"
#: Thread-count variables of BLAS and OpenMP that parallel report kernels split between them.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: Name of the papermill engine registered by :func:`_register_engine`.
ENGINE = "analysis-nbclient"


def _register_engine() -> None:
    """Register papermill's nbclient engine with fewer writes of the output notebook.

    Rewriting the whole notebook (figures included) twice per cell is most of papermill's own time
    per report. The notebook is still written when execution starts, at least every
    :data:`SAVE_EVERY_S` seconds, and when it ends, including after a failing cell, a timeout or a
    dead kernel (papermill's ``finally``), so a failed campaign keeps its partial notebook.
    """
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

    if ENGINE in papermill_engines._engines:
        return

    class _Manager(NotebookExecutionManager):
        _final = False

        def save(self, **kwargs):
            elapsed = (self.now() - self.last_save_time).total_seconds()
            if self._final or elapsed >= SAVE_EVERY_S:
                super().save(**kwargs)

        def notebook_start(self, **kwargs):
            self._final = True
            try:
                super().notebook_start(**kwargs)
            finally:
                self._final = False

        def notebook_complete(self, **kwargs):
            self._final = True
            super().notebook_complete(**kwargs)

    class _Engine(NBClientEngine):
        @classmethod
        def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=True, log_output=False,
                             autosave_cell_every=30, **kwargs):
            nb_man = _Manager(nb, output_path=output_path, progress_bar=progress_bar,
                              log_output=log_output, autosave_cell_every=autosave_cell_every)
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

    papermill_engines.register(ENGINE, _Engine)


def run_one(campaign_id: str, data_dir: str, out_dir: str, notebook: str = str(NOTEBOOK),
            timeout: int = CELL_TIMEOUT, seed: int | None = None, *, stem: str = "report",
            progress_bar: bool = False) -> dict[str, Any]:
    """Execute the report notebook for one campaign (in the current process) and export it.

    Writes ``OUT/<campaign_id>/<stem>.ipynb``, ``<stem>.html`` and ``results.json``. Never raises for a
    notebook error: the outcome carries ``status="failed"`` and the message, and the partial notebook
    (written by papermill) is kept and exported. ``progress_bar`` shows papermill's bar over the cells.
    """
    import nbformat
    import papermill as pm

    _kernel_env()
    cdir = Path(out_dir).resolve() / campaign_id
    cdir.mkdir(parents=True, exist_ok=True)
    nb_path, html_path, res_path = cdir / f"{stem}.ipynb", cdir / f"{stem}.html", cdir / "results.json"
    res_path.unlink(missing_ok=True)
    params: dict[str, Any] = {"campaign_id": campaign_id, "data_dir": str(Path(data_dir).resolve()),
                              "out_dir": str(cdir)}
    if seed is not None:
        params["seed"] = int(seed)
    t0 = time.perf_counter()
    error = None
    try:
        _register_engine()
        with _temporary_env(KERNEL_ONLY_ENV):
            pm.execute_notebook(str(notebook), str(nb_path), parameters=params, kernel_name="python3",
                                execution_timeout=timeout, extra_arguments=KERNEL_ARGS, log_output=False,
                                progress_bar=progress_bar, engine_name=ENGINE, shutdown_kernel=KERNEL_SHUTDOWN)
    except pm.PapermillExecutionError as exc:
        error = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
    except Exception as exc:  # kernel death, timeout, missing notebook: recorded per campaign
        error = f"{type(exc).__name__}: {exc}"
    html_rel = None
    cell_s = export_s = 0.0
    if nb_path.exists():
        try:
            cell_s = _cell_seconds(nbformat.read(str(nb_path), as_version=4))
            t1 = time.perf_counter()
            export_html(nb_path, html_path)
            export_s = time.perf_counter() - t1
            html_rel = f"{campaign_id}/{stem}.html"
        except Exception as exc:
            error = error or f"HTML export failed: {type(exc).__name__}: {exc}"
    results = None
    objective = ""
    figures: dict[str, Any] = {}
    if res_path.exists():
        results = f"{campaign_id}/results.json"
        r = json.loads(res_path.read_text(encoding="utf-8"))
        objective = r.get("objective", "")
        figures = {k: (r.get("kpis", {}).get(k) or {}).get("value") for k in INDEX_KPIS}
        fol = r.get("followers") or {}
        figures["incremental_followers"] = fol.get("incremental")
        figures["incremental_followers_ci"] = [fol.get("ci_low"), fol.get("ci_high")]
        targeted = [ln for ln in (r.get("scorecard") or {}).get("lines", []) if ln.get("target") is not None]
        figures["targets_met"] = [sum(ln.get("status") in ("met", "on track") for ln in targeted), len(targeted)]
        figures["warnings"] = len(r.get("warnings", []))
    elif error is None:
        error = "the notebook finished without writing results.json"
    seconds = time.perf_counter() - t0
    return ReportOutcome(campaign_id=campaign_id, status="failed" if error else "ok",
                         notebook=f"{campaign_id}/{stem}.ipynb", html=html_rel, results=results, error=error,
                         seconds=seconds, cell_seconds=cell_s, export_seconds=export_s, objective=objective,
                         figures=figures).to_dict()


def _fmt(v: Any, kind: str) -> str:
    if v is None:
        return "–"
    try:
        from analysis.metrics import format_value

        return format_value(kind, v)
    except Exception:
        return f"{v:,.4g}" if isinstance(v, (int, float)) else str(v)


def _followers_cell(figures: dict[str, Any]) -> str:
    """The incremental followers with their interval below, escaped."""
    inc = figures.get("incremental_followers")
    if inc is None:
        return "–"
    lo, hi = figures.get("incremental_followers_ci") or (None, None)
    ci = f'<div class="ci">{html.escape(f"{lo:,.0f} to {hi:,.0f}")}</div>' if lo is not None and hi is not None else ""
    return html.escape(f"{inc:,.0f}") + ci


def write_index(out_dir: str | os.PathLike, outcomes: list[dict[str, Any]]) -> Path:
    """Write ``OUT/index.html``: one row per campaign with status, key figures and links (all escaped)."""
    e = html.escape
    rows = []
    for o in sorted(outcomes, key=lambda o: o["campaign_id"]):
        f = o.get("figures") or {}
        links = []
        for label, key in (("report", "html"), ("notebook", "notebook"), ("results.json", "results")):
            if o.get(key):
                links.append(f'<a href="{e(o[key])}">{e(label)}</a>')
        status = e(o["status"])
        campaign = (f'<a href="{e(o["html"])}">{e(o["campaign_id"])}</a>' if o.get("html")
                    else e(o["campaign_id"]))
        err = f'<div class="error">{e(o["error"])}</div>' if o.get("error") else ""
        cells = "".join(f'<td class="num">{e(_fmt(f.get(k), k))}</td>' for k in INDEX_KPIS)
        met, targeted = f.get("targets_met") or (None, 0)
        rows.append(
            f'<tr class="{status}"><td>{campaign}</td><td>{e(o.get("objective") or "")}</td>'
            f'<td class="status">{status}{err}</td><td>{e(f"{met} of {targeted}" if targeted else "–")}</td>'
            f'{cells}<td class="num">{_followers_cell(f)}</td>'
            f'<td class="num">{e(str(f.get("warnings", "–")))}</td><td class="links">{"<br>".join(links)}</td></tr>')
    from analysis.metrics import REGISTRY

    numeric = [REGISTRY[k].label for k in INDEX_KPIS] + ["Incremental followers (95% interval)", "Warnings"]
    heads = "".join(f'<th class="num">{e(h)}</th>' if h in numeric else f"<th>{e(h)}</th>"
                    for h in ("Campaign", "Objective", "Status", "Targets met", *numeric, "Links"))
    n_ok = sum(o["status"] == "ok" for o in outcomes)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Campaign reports</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
.table-wrap {{ overflow-x: auto; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: .35rem .6rem; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }}
th.num {{ text-align: right; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
td.links {{ white-space: nowrap; font-size: .9em; }}
th {{ background: #f3f5f8; }} tr.failed td.status {{ color: #c0392b; font-weight: bold; }}
tr.ok td.status {{ color: #2e8b57; }} .ci {{ font-size: .8em; color: #666; }}
.error {{ font-weight: normal; font-size: .85em; max-width: 30rem; }}
</style></head><body>
<h1>Campaign reports</h1>
<p>{n_ok} of {len(outcomes)} reports succeeded.</p>
<div class="table-wrap"><table><thead><tr>{heads}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></div></body></html>
"""
    return atomic_write_text(Path(out_dir) / "index.html", page)


def _campaign_ids(data_dir: Path) -> list[str]:
    from analysis.data import load

    return load(data_dir).campaign_ids


def run_reports(data_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                campaigns: list[str] | None = None, jobs: int | None = None,
                notebook: str | os.PathLike = NOTEBOOK, timeout: int = CELL_TIMEOUT,
                show_progress: bool | None = None) -> list[dict[str, Any]]:
    """Run the report notebook for each campaign in a process pool and write ``index.html``.

    Parameters
    ----------
    data_dir : path
        Processed directory written by ``ingest``.
    out_dir : path
        Output directory (created).
    campaigns : list of str, optional
        Campaign ids (all when None).
    jobs : int, optional
        Parallel notebooks (default: number of cores).
    notebook : path
        The notebook to execute.
    timeout : int
        Seconds per cell.
    show_progress : bool, optional
        Force the progress bar on or off (default: on unless ``ANALYSIS_NO_PROGRESS`` is set).

    Returns
    -------
    list of dict
        One :class:`ReportOutcome` dict per campaign, in campaign order.

    Raises
    ------
    ValueError
        If ``data_dir`` is not a processed directory or a campaign id is unknown.
    """
    data_dir, out_dir = Path(data_dir).resolve(), Path(out_dir).resolve()
    known = _campaign_ids(data_dir)
    ids = list(dict.fromkeys(campaigns)) if campaigns else known
    unknown = [c for c in ids if c not in known]
    if unknown:
        raise ValueError(f"unknown campaign id(s) {', '.join(unknown)}; the data set holds: {', '.join(known)}")
    if not Path(notebook).exists():
        raise ValueError(f"report notebook {Path(notebook).name} not found")
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = max(1, min(int(jobs or os.cpu_count() or 1), len(ids)))
    _kernel_env()
    # parallel kernels share the cores: each one's BLAS and OpenMP get their share, unless already set
    share = str(max(1, (os.cpu_count() or 1) // jobs))
    added = {v: share for v in THREAD_VARS if jobs > 1 and v not in os.environ}
    with _temporary_env(added):
        return _run_pool(ids, data_dir, out_dir, notebook, timeout, jobs, show_progress)


def _run_pool(ids: list[str], data_dir: Path, out_dir: Path, notebook: str | os.PathLike, timeout: int, jobs: int,
              show_progress: bool | None) -> list[dict[str, Any]]:
    from analysis.progress import progress

    outcomes: dict[str, dict[str, Any]] = {}
    bar = progress(range(len(ids)), desc="campaign reports", total=len(ids),
                   disable=None if show_progress is None else not show_progress)
    if jobs == 1:
        for cid in ids:
            outcomes[cid] = run_one(cid, str(data_dir), str(out_dir), str(notebook), timeout)
            next(bar, None)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            pending = {pool.submit(run_one, cid, str(data_dir), str(out_dir), str(notebook), timeout): cid
                       for cid in ids}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    cid = pending.pop(fut)
                    try:
                        outcomes[cid] = fut.result()
                    except Exception as exc:  # the worker process itself died
                        outcomes[cid] = ReportOutcome(cid, "failed", f"{cid}/report.ipynb", None, None,
                                                      error=f"{type(exc).__name__}: {exc}").to_dict()
                    next(bar, None)
    for _ in bar:
        pass
    ordered = [outcomes[c] for c in ids]
    write_index(out_dir, ordered)
    return ordered


def _processed_dir(args: argparse.Namespace) -> Path:
    """``--data``, checked to be a directory (a clear command error otherwise)."""
    from analysis.cli import CommandError

    data = Path(args.data)
    if not data.is_dir():
        raise CommandError(f"--data {data} is not a directory (run `python -m analysis ingest` first)")
    return data


def cli(args: argparse.Namespace) -> int:
    """``python -m analysis report``: run the reports, print a summary, exit 1 if any failed."""
    from analysis.cli import CommandError

    if args.jobs is not None and args.jobs < 1:
        raise CommandError("--jobs must be at least 1")
    data = _processed_dir(args)
    try:
        outcomes = run_reports(data, args.out, campaigns=args.campaign, jobs=args.jobs, notebook=NOTEBOOK)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    failed = [o for o in outcomes if o["status"] != "ok"]
    for o in outcomes:
        line = f"{o['campaign_id']}: {o['status']} ({o['seconds']:.1f} s)"
        if o.get("error"):
            line += f" - {o['error']}"
        print(line, file=sys.stderr if o["status"] != "ok" else sys.stdout)
    print(f"{len(outcomes) - len(failed)} of {len(outcomes)} reports written; index: "
          f"{Path(args.out) / 'index.html'}")
    return 1 if failed else 0


def postmortem_cli(args: argparse.Namespace) -> int:
    """``python -m analysis postmortem``: execute the post-mortem notebook for one campaign, with HTML.

    Writes ``OUT/<campaign_id>/postmortem.ipynb``, ``postmortem.html`` and ``results.json`` (byte-identical
    to the campaign report's for the same data and seed). Exit status 1 when the notebook fails (its
    partial notebook and HTML are kept).
    """
    from analysis.cli import CommandError
    from analysis.progress import progress_enabled

    data = _processed_dir(args).resolve()
    try:
        known = _campaign_ids(data)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.campaign not in known:
        raise CommandError(f"unknown campaign id {args.campaign}; the data set holds: {', '.join(known)}")
    out = Path(args.out).resolve()
    o = run_one(args.campaign, str(data), str(out), str(POSTMORTEM), stem="postmortem",
                progress_bar=progress_enabled())
    if o["status"] != "ok":
        print(f"{args.campaign}: failed ({o['seconds']:.1f} s) - {o['error']}", file=sys.stderr)
        return 1
    print(f"Post-mortem written: {out / o['html']} ({o['seconds']:.1f} s)")
    return 0
