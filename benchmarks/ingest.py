"""Time and peak memory of ``simulate`` + ``ingest`` on the demo set and a 10x larger set.

Each step runs in its own subprocess so its peak RSS is its own. Writes a section of
``docs/performance.md`` between ``<!-- ingest:start -->`` and ``<!-- ingest:end -->``.

Usage: ``python benchmarks/ingest.py [--campaigns 10 100]``.
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


def _run(args: list[str]) -> tuple[float, float]:
    """Run ``python -m analysis ARGS``; return (wall seconds, peak RSS MiB of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "analysis", *args], check=True, capture_output=True,
                   env={"ANALYSIS_NO_PROGRESS": "1", "ANALYSIS_SALT": "bench", "PATH": ""})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(after, before) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--campaigns", type=int, nargs="+", default=[10, 100])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.campaigns:
            raw, out = Path(tmp) / f"raw{k}", Path(tmp) / f"out{k}"
            sim_wall, sim_rss = _run(["simulate", "--out", str(raw), "--campaigns", str(k)])
            ing_wall, ing_rss = _run(["ingest", "--raw", str(raw), "--out", str(out)])
            n_daily = sum(1 for _ in open(raw / "post_metrics.csv")) - 1
            rows.append((k, n_daily, sim_wall, sim_rss, ing_wall, ing_rss))
            print(f"campaigns={k}: simulate {sim_wall:.1f} s ({sim_rss:.0f} MiB), "
                  f"ingest {ing_wall:.1f} s ({ing_rss:.0f} MiB)", flush=True)
    lines = ["<!-- ingest:start -->", "## Simulate and ingest", "",
             "`benchmarks/ingest.py`: each command in its own process (wall time includes Python start-up and "
             "imports; peak RSS is the largest child process so far, so it never decreases down the table).",
             "", "| campaigns | post_metrics rows | simulate (s) | simulate peak (MiB) | ingest (s) | "
             "ingest peak (MiB) |", "|---|---|---|---|---|---|"]
    lines += [f"| {k} | {n:,} | {sw:.1f} | {sr:.0f} | {iw:.1f} | {ir:.0f} |" for k, n, sw, sr, iw, ir in rows]
    lines += ["", "Targets: the demo set simulates in under 30 s; 10x the demo ingests on a 24 GiB machine.",
              "<!-- ingest:end -->"]
    block = "\n".join(lines)
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    pattern = re.compile(r"<!-- ingest:start -->.*?<!-- ingest:end -->", re.S)
    text = pattern.sub(block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
