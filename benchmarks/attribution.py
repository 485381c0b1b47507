"""Benchmark: full follower and order attribution of one campaign (365 days, 25 creators, 100 posts,
1,000 bootstrap replicates), the model's parts, and the vectorised bootstrap against a naive loop;
writes its section of docs/performance.md."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

os.environ.setdefault("ANALYSIS_NO_PROGRESS", "1")

import numpy as np  # noqa: E402

from analysis.attribution import _engine as E  # noqa: E402
from analysis.attribution import attribute_followers, attribute_orders  # noqa: E402
from analysis.attribution.followers import make_spec  # noqa: E402
from analysis.attribution._data import build_panel  # noqa: E402
from analysis.attribution.toy import make_toy_data  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
START, END = "<!-- attribution:start -->", "<!-- attribution:end -->"


def naive_boot(spec: E.Spec, res: E.EngineResult, n_boot: int, seed: int) -> np.ndarray:
    """The same bootstrap, one replicate and one kernel at a time with fresh least squares."""
    rng = np.random.default_rng(seed)
    ok = spec.ok
    yo = spec.y[ok]
    Xo = res.best.X[ok]
    fitted = Xo @ res.beta
    r = yo - fitted
    blocks = E.block_ids(len(yo), spec.block)
    cands = res.fits[:6]
    folds = E.block_ids(len(yo), spec.block) % spec.folds
    out = np.empty(n_boot)
    for b in range(n_boot):
        ystar = fitted + r * rng.standard_normal(blocks[-1] + 1)[blocks]
        best, best_err = None, np.inf
        for kf in cands:
            X = kf.X[ok]
            err = 0.0
            for f in range(spec.folds):
                tr = folds != f
                D = np.diag(np.where(kf.pen, kf.lam, 0.0))
                beta = np.linalg.solve(X[tr].T @ X[tr] + D, X[tr].T @ ystar[tr])
                err += np.sum((ystar[~tr] - X[~tr] @ beta) ** 2)
            if err < best_err:
                best, best_err = kf, err
        X = best.X[ok]
        beta = np.linalg.solve(X.T @ X + np.diag(np.where(best.pen, best.lam, 0.0)), X.T @ ystar)
        out[b] = (ystar - X @ beta)[spec.window[ok]].sum()
    return out


def _best_of_3(attribute, tables, campaign_id: str = "C01") -> float:
    """Seconds of the fastest of three full runs (1,000 replicates), after a warm-up (imports, caches)."""
    attribute(tables, campaign_id, n_boot=10)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        attribute(tables, campaign_id, n_boot=1000, seed=0)
        times.append(time.perf_counter() - t0)
    return min(times)


def _geo_campaign() -> tuple[dict, str, int]:
    """A simulated year (30 regions, 365 days) and its geo-test campaign, with the number of orders."""
    from analysis.simulate import generate

    tables, truth = generate(seed=0, campaigns=3, days=365, show_progress=False)
    cid = next(c for c, t in truth["campaigns"].items() if any(e["design"] == "geo" for e in t["lift"]))
    return tables, cid, len(tables["orders"])


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true", help="print the table only (docs/performance.md untouched)")
    a = ap.parse_args(argv)
    tables, _ = make_toy_data(seed=0, days=365, creators=25, posts=100)
    full = _best_of_3(attribute_followers, tables)
    orders = _best_of_3(attribute_orders, tables)
    gtables, gcid, n_orders = _geo_campaign()
    geo_orders = _best_of_3(attribute_orders, gtables, gcid)
    t0 = time.perf_counter()
    attribute_orders(gtables, gcid, n_boot=1000, seed=0, geo=False)
    geo_off = time.perf_counter() - t0
    panel = build_panel(tables, "C01")
    spec = make_spec(panel, panel.brand["new_followers"].to_numpy(float))
    t0 = time.perf_counter()
    res0 = E.run(spec, n_boot=0, calibrate=False)
    point = time.perf_counter() - t0
    t0 = time.perf_counter()
    res1 = E.run(spec, n_boot=0)
    placebo = time.perf_counter() - t0 - point
    t0 = time.perf_counter()
    E.run(spec, n_boot=1000)
    vec = time.perf_counter() - t0 - point - placebo
    nb = 100
    t0 = time.perf_counter()
    with E.single_threaded_blas():
        naive_boot(spec, res0, nb, 0)
    naive = (time.perf_counter() - t0) * 1000 / nb
    ratio = naive / vec
    lines = [
        START,
        "## Attribution",
        "",
        "`benchmarks/attribution.py`: one campaign of the toy data set, 365 days, 25 creators, 100 posts. The method "
        f"(`docs/methods.md`): baseline regression plus every campaign's creator exposure through {len(res0.fits)} "
        "candidate carry-over kernels (blocked cross-validation, estimates averaged over kernels by held-out fit), "
        "creators partially pooled (penalty by cross-validation); intervals of the total and of creators are "
        "Newey-West (HAC) standard errors scaled by a placebo calibration (root mean square placebo z, Student "
        "quantile with overlapping-batch degrees of freedom) "
        f"({int(len(res1.placebo_z))} placebo campaigns here); the daily and cumulative bands are the same "
        "interval day by day, and a 1,000-replicate block wild bootstrap with kernel re-selection among the 6+ "
        "best kernels measures how stable the kernel choice is. Orders use the same model on daily orders, "
        "revenue and new-customer orders (exposure: tagged site sessions; baseline with the holiday weeks); revenue "
        "and new-customer orders take the kernel chosen for orders.",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| full `attribute_followers` (profile-visit first stage, fit, placebos, 1,000 replicates; best of 3) "
        f"| {full:.2f} |",
        f"| full `attribute_orders` (three outcomes, 1,000 replicates each; best of 3) | {orders:.2f} |",
        f"| `attribute_orders` on a geo-test campaign (simulated year, 30 regions, {n_orders:,} orders): model plus "
        f"the holdout's synthetic control on orders, revenue and new-customer orders by region; best of 3 "
        f"| {geo_orders:.2f} |",
        f"| the same without the holdout reading (`geo=False`, one run) | {geo_off:.2f} |",
        f"| model fit without bootstrap ({len(res0.fits)} kernels, penalty by CV) | {point:.2f} |",
        f"| placebo calibration ({int(len(res1.placebo_z))} shifted placebo campaigns) | {placebo:.2f} |",
        f"| vectorised bootstrap, 1,000 replicates | {vec:.2f} |",
        f"| naive loop bootstrap, extrapolated to 1,000 (measured on {nb}) | {naive:.2f} |",
        "",
        f"Vectorised / naive speed-up of the bootstrap: {ratio:.0f}x. Target: full attribution under 5 s on 2 cores "
        f"(followers {'met' if full < 5 else 'NOT met'}; orders {'met' if orders < 5 else 'NOT met'}; orders of a "
        f"geo-test campaign {'met' if geo_orders < 5 else 'NOT met'}).",
        "",
        END,
    ]
    block = "\n".join(lines)
    print(block)
    if a.no_write:
        return 0
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
