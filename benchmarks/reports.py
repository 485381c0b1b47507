"""Benchmark: the campaign reports of the demo data set with ``--jobs 1`` and ``--jobs 2`` in the same run.

Measures the wall time of each run, the speed-up, and each report's overhead beyond its cells' own
compute (the report's wall time minus the sum of its cells' execution times recorded by papermill in
the notebook metadata: kernel start, papermill, HTML export). Writes its section of docs/performance.md.

Usage: ``python benchmarks/reports.py [--data PROCESSED] [--campaigns K] [--days D]`` (without ``--data``
the demo data set is simulated and ingested into a temporary directory first).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ANALYSIS_NO_PROGRESS", "1")
os.environ["MPLBACKEND"] = "agg"

from analysis.config import DEFAULT_SEED  # noqa: E402
from analysis.report import run_reports  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
START, END = "<!-- reports:start -->", "<!-- reports:end -->"


def _run(data: Path, out: Path, jobs: int) -> tuple[float, list[dict], float]:
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    outcomes = run_reports(data, out, jobs=jobs, show_progress=False)
    wall = time.perf_counter() - t0
    failed = [o["campaign_id"] for o in outcomes if o["status"] != "ok"]
    if failed:
        raise SystemExit(f"reports failed for {failed}: see {out}/index.html")
    return wall, outcomes, load0


def write_section(text: str) -> None:
    """Replace (or append) this benchmark's section of docs/performance.md."""
    doc = DOC.read_text() if DOC.exists() else "# Performance\n"
    block = f"{START}\n{text.rstrip()}\n{END}"
    if START in doc and END in doc:
        doc = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _m: block, doc, flags=re.S)
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(doc)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None, help="processed directory (default: simulate the demo)")
    p.add_argument("--campaigns", type=int, default=10, help="campaigns to simulate (default 10, the demo)")
    p.add_argument("--days", type=int, default=365, help="days to simulate (default 365)")
    p.add_argument("--no-write", action="store_true", help="print the table without updating the docs")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = args.data
        if data is None:
            from analysis.ingest import ingest
            from analysis.simulate import simulate

            simulate(tmp / "raw", seed=DEFAULT_SEED, campaigns=args.campaigns, days=args.days)
            ingest(tmp / "raw", tmp / "processed")
            data = tmp / "processed"
        rows = {}
        for jobs in (1, 2):
            rows[jobs] = _run(data, tmp / f"jobs{jobs}", jobs)
        (w1, o1, l1), (w2, _, l2) = rows[1], rows[2]
        n = len(o1)
        overhead = [o["seconds"] - o["cell_seconds"] for o in o1]
        cells = [o["cell_seconds"] for o in o1]
        export = [o["export_seconds"] for o in o1]
        speedup = w1 / w2
    lines = [
        "## Campaign reports",
        "",
        f"`benchmarks/reports.py`: every campaign of the demo data set ({n} campaigns) rendered by "
        "`python -m analysis report` (papermill in a process pool, HTML export) with `--jobs 1` and then "
        f"`--jobs 2` in the same run. Machine: {os.cpu_count()} cores, CPython {platform.python_version()}; "
        f"1-minute load average at the start of each run: {l1:.1f} (jobs 1) and {l2:.1f} (jobs 2). "
        "A load above the core count means other work shared the machine and the figures are inflated.",
        "",
        "| run | wall (s) | per report (s) |",
        "|---|---|---|",
        f"| `--jobs 1` | {w1:.1f} | {w1 / n:.1f} |",
        f"| `--jobs 2` | {w2:.1f} | {w2 / n:.1f} |",
        "",
        f"Speed-up of `--jobs 2` over `--jobs 1`: **{speedup:.2f}x** (target at least 1.6x on 2 cores: "
        f"{'met' if speedup >= 1.6 else 'not met'}).",
        "",
        "Per-report overhead beyond the cells' own compute (report wall time minus the sum of its cells' "
        "execution times from the notebook metadata; kernel start, papermill and HTML export), `--jobs 1`: "
        f"median **{statistics.median(overhead):.2f} s** (min {min(overhead):.2f}, max {max(overhead):.2f}); "
        f"target under 1.5 s: {'met' if statistics.median(overhead) < 1.5 else 'not met'}. Of it, the HTML export "
        f"took a median {statistics.median(export):.2f} s and kernel start plus papermill the rest "
        f"({statistics.median(overhead) - statistics.median(export):.2f} s). The cells "
        f"themselves took a median {statistics.median(cells):.1f} s per report, of which the first cell "
        "(imports of pandas, statsmodels and seaborn in a fresh kernel, and loading the data) is a fixed cost.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
