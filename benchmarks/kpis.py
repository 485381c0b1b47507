"""Benchmark the KPI engine against hand-written DuckDB SQL and a pandas groupby.

Generates a synthetic cumulative post-day table (``post_metrics`` layout, 30 days per post) with
numpy, writes it to Parquet, then runs three variants, each in its own subprocess so that peak
memory (max RSS) is measured per variant:

- ``engine``: :func:`analysis.kpis.compute_kpis` (narwhals over a lazy DuckDB relation);
- ``duckdb_sql``: the same KPIs in hand-written DuckDB SQL;
- ``pandas``: a straightforward pandas version (merge, filter, last row per post, groupby sum).

Each variant takes each post's final snapshot within its window and sums the base quantities by
campaign and creator. Results are written to the ``## KPI engine`` section of
``docs/performance.md``.

Usage: ``python benchmarks/kpis.py [--sizes 1M,10M,50M] [--repeat 3] [--no-write]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"
DAYS = 30
COUNTS = ["views", "reach", "likes", "comments", "shares", "saves", "profile_views", "follows", "link_clicks"]
TARGETS = {"sql_ratio": 1.2, "pandas_speedup": 1.5, "mem_10m_mib": 1024}


def parse_size(s: str) -> int:
    s = s.strip().upper()
    mult = {"K": 10**3, "M": 10**6}.get(s[-1], 1)
    return int(float(s[:-1] if s[-1] in "KM" else s) * mult)


def generate(n_rows: int, out: Path, seed: int = 1) -> None:
    """Write snapshots.parquet and windows.parquet with ``n_rows`` post-day rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_posts = n_rows // DAYS
    start = np.datetime64("2024-01-01", "ms")
    ids = np.char.add("p", np.arange(n_posts).astype(str))
    writer = None
    chunk = max(1, 2_000_000 // DAYS)
    for lo in range(0, n_posts, chunk):
        hi = min(n_posts, lo + chunk)
        k = hi - lo
        cols = {"post_id": pa.array(np.repeat(ids[lo:hi], DAYS)),
                "date": pa.array(np.tile(start + np.arange(DAYS).astype("timedelta64[D]"), k))}
        for c in COUNTS:
            lam = 200 if c in ("views", "reach") else 10
            cols[c] = pa.array(np.cumsum(rng.poisson(lam, size=(k, DAYS)), axis=1).ravel().astype(np.int64))
        cols["avg_watch_time_s"] = pa.array(rng.uniform(2, 30, k * DAYS))
        cols["completion_rate"] = pa.array(rng.uniform(0, 1, k * DAYS))
        table = pa.table(cols)
        if writer is None:
            writer = pq.ParquetWriter(out / "snapshots.parquet", table.schema)
        writer.write_table(table, row_group_size=1_000_000)
    writer.close()
    ends = start + rng.integers(10, DAYS, n_posts).astype("timedelta64[D]")
    pq.write_table(pa.table({
        "post_id": pa.array(ids),
        "campaign_id": pa.array(np.char.add("C", (np.arange(n_posts) % 50).astype(str))),
        "creator_id": pa.array(np.char.add("K", (np.arange(n_posts) % 2000).astype(str))),
        "window_end": pa.array(ends.astype("datetime64[ms]")),
    }), out / "windows.parquet")


SQL = """
WITH j AS (
  SELECT s.*, w.campaign_id, w.creator_id FROM read_parquet('{d}/snapshots.parquet') s
  JOIN read_parquet('{d}/windows.parquet') w USING (post_id) WHERE s.date <= w.window_end),
last AS (SELECT post_id, max(date) AS date FROM j GROUP BY post_id),
p AS (SELECT j.* FROM j JOIN last USING (post_id, date))
SELECT campaign_id, creator_id, count(*)::DOUBLE AS n_posts,
  {sums},
  sum(avg_watch_time_s * views) AS watch_time_s, sum(completion_rate * views) AS completed_views
FROM p GROUP BY campaign_id, creator_id
"""


def run_variant(variant: str, d: str) -> dict:
    """Run one variant in this process; return seconds, CPU seconds, rows and a checksum.

    Imports happen before the clock starts, for every variant.
    """
    import duckdb
    import pandas as pd

    from analysis.kpis import compute_kpis

    t0, c0 = time.perf_counter(), time.process_time()
    if variant == "engine":
        con = duckdb.connect()
        snap = con.read_parquet(f"{d}/snapshots.parquet")
        win = con.read_parquet(f"{d}/windows.parquet")
        res = compute_kpis(snap, by=["campaign_id", "creator_id"], windows=win)
        total = float(res["views"].sum())
    elif variant == "duckdb_sql":
        sums = ", ".join(f"sum({c})::DOUBLE AS {c}" for c in COUNTS)
        res = duckdb.connect().sql(SQL.format(d=d, sums=sums)).df()
        res["engagement_rate"] = (res[["likes", "comments", "shares", "saves"]].sum(axis=1)
                                  / res["views"].where(res["views"] != 0))
        res["completion_rate"] = res["completed_views"] / res["views"].where(res["views"] != 0)
        total = float(res["views"].sum())
    elif variant == "pandas":
        snap = pd.read_parquet(f"{d}/snapshots.parquet")
        win = pd.read_parquet(f"{d}/windows.parquet")
        j = snap.merge(win, on="post_id")
        j = j[j["date"] <= j["window_end"]]
        j = j.loc[j.groupby("post_id")["date"].idxmax()]
        j["watch_time_s"] = j["avg_watch_time_s"] * j["views"]
        j["completed_views"] = j["completion_rate"] * j["views"]
        res = j.groupby(["campaign_id", "creator_id"])[COUNTS + ["watch_time_s", "completed_views"]].sum()
        res["engagement_rate"] = res[["likes", "comments", "shares", "saves"]].sum(axis=1) / res["views"]
        res["completion_rate"] = res["completed_views"] / res["views"]
        total = float(res["views"].sum())
    else:
        raise ValueError(variant)
    return {"variant": variant, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "rows_out": int(len(res)), "views_total": total,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(variant: str, d: Path, repeat: int) -> dict:
    """Best wall time of ``repeat`` fresh subprocesses; peak RSS is the max over them."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, __file__, "--child", variant, str(d)], check=True,
                             capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["seconds"])
    best["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
    return best


def render(results: list[dict], machine: str) -> str:
    lines = ["## KPI engine", "",
             "Produced by `python benchmarks/kpis.py` (`make bench`). Synthetic cumulative post-day snapshots "
             f"({DAYS} days per post) in Parquet; each variant keeps each post's final snapshot within its "
             "window and sums the base quantities by campaign and creator. Each variant runs in a fresh "
             "subprocess (best wall time of the repeats, imports excluded; peak RSS of the whole process, "
             f"Python and imports included). Machine: {machine}. Wall times on a shared 2-core machine swing "
             "with other load and first-touch page faults; CPU time is the steadier comparison.", "",
             "Targets: engine within 1.2x of the DuckDB SQL baseline, at least 1.5x faster than pandas, "
             "peak memory under 1 GiB at 10M rows, 50M rows completing.", "",
             "| rows | variant | wall (s) | CPU (s) | peak RSS (MiB) | engine / SQL | pandas / engine |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['rows']:,} | {r['variant']} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | "
                     f"{r['peak_rss_mib']:.0f} | {r.get('vs_sql', '')} | {r.get('vs_pandas', '')} |")
    lines.append("")
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace (or add) the ``## KPI engine`` section of docs/performance.md."""
    old = DOC.read_text() if DOC.exists() else "# Performance\n\n"
    head, sep, rest = old.partition("## KPI engine")
    if sep:
        ends = [i for i in (rest.find("\n## "), rest.find("\n<!--")) if i >= 0]
        tail = rest[min(ends) + 1:] if ends else ""
        new = head + text + ("\n" + tail if tail else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    DOC.write_text(new)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1M,10M,50M", help="comma-separated row counts (default 1M,10M,50M)")
    ap.add_argument("--repeat", type=int, default=2, help="subprocess runs per variant (best time kept)")
    ap.add_argument("--pandas-max", default="10M", help="skip the pandas variant above this size")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update docs/performance.md")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_variant(*args.child)))
        return 0
    import os
    import platform

    machine = f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"
    results = []
    for size in [parse_size(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            t0 = time.perf_counter()
            generate(size, d)
            print(f"{size:,} rows generated in {time.perf_counter() - t0:.1f} s", flush=True)
            variants = ["engine", "duckdb_sql"] + (["pandas"] if size <= parse_size(args.pandas_max) else [])
            got = {v: measure(v, d, args.repeat) for v in variants}
        ref = got["engine"]["views_total"]
        for v, r in got.items():
            if abs(r["views_total"] - ref) > 1e-6 * abs(ref):
                raise SystemExit(f"{v} disagrees with the engine: {r['views_total']} vs {ref}")
        got["engine"]["vs_sql"] = f"{got['engine']['seconds'] / got['duckdb_sql']['seconds']:.2f}x"
        if "pandas" in got:
            got["engine"]["vs_pandas"] = f"{got['pandas']['seconds'] / got['engine']['seconds']:.1f}x"
        for v, r in got.items():
            r["rows"] = size
            results.append(r)
            print(f"{size:>11,} {v:<11} {r['seconds']:7.2f} s  cpu {r['cpu_seconds']:7.2f} s  "
                  f"peak {r['peak_rss_mib']:7.0f} MiB {r.get('vs_sql', '')} {r.get('vs_pandas', '')}", flush=True)
    text = render(results, machine)
    if not args.no_write:
        write_section(text)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
