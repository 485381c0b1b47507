"""Many-seed validation of the synthetic control and structural time-series designs.

Writes ``docs/validation_lift.md`` in four sections, each between its own markers so one can be
re-run alone:

* ``factor``: coverage of the 95% intervals, bias and false-positive rates on a factor-model
  data-generating process that neither estimator assumes;
* ``placebo``: the in-space placebo p-value's false-positive rate with the treated region drawn like
  the donors (exchangeable) and from the middle of their range (the factor study's design);
* ``ci``: every ``ci_method`` of the synthetic control (coverage, width, rejections) on both;
* ``simulator``: both geo designs of :func:`analysis.lift.synth.geo_lift` on the project's simulator,
  against its recorded truth, with and without an effect.

Usage: ``python benchmarks/validation_lift.py [--sims 300] [--part all|factor|placebo|simulator|ci]``
"""

from __future__ import annotations

import argparse
import math
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.config import DOCS_DIR
from analysis.lift import its, synth

TITLE = "# Validation: synthetic control and structural time series\n"
SIM_SEED0 = 10_000


def run_factor(n_sims: int = 300) -> pd.DataFrame:
    """Factor-model studies; one row per (design, scenario)."""
    rows = []
    studies = [
        ("synthetic control (outcome-only)", "lift 5", lambda: synth.simulation_study(n_sims, effect=5.0)),
        ("synthetic control (outcome-only)", "no effect", lambda: synth.simulation_study(n_sims, effect=0.0)),
        ("synthetic control (ridge-augmented)", "lift 5",
         lambda: synth.simulation_study(n_sims, effect=5.0, augment="ridge")),
        ("structural time series (8 controls)", "lift 5", lambda: its.simulation_study(n_sims, effect=5.0)),
        ("structural time series (8 controls)", "no effect", lambda: its.simulation_study(n_sims, effect=0.0)),
    ]
    for design, scenario, fn in studies:
        t0 = time.perf_counter()
        study = fn()
        s = synth.summarise_study(study)
        rows.append({"design": design, "scenario": scenario, "campaigns": int(s["n"]),
                     "coverage_95": s["coverage"], "bias": s["bias"],
                     "relative_bias": s["relative_bias"] if scenario != "no effect" else float("nan"),
                     "mean_ci_width": s["mean_ci_width"], "rejects_zero_ci": s["rejection_rate_ci"],
                     "placebo_p_le_0.05": s.get("rejection_rate_placebo", float("nan")),
                     "seconds": time.perf_counter() - t0})
    return pd.DataFrame(rows)


def run_placebo(n_sims: int = 300) -> pd.DataFrame:
    """Placebo p-value under no effect: treated region exchangeable with the donors or at their centre."""
    rows = []
    for label, exch in (("drawn like the donors (exchangeable)", True), ("centre of the donors' range", False)):
        for cutoff in (None, 5.0):
            t0 = time.perf_counter()
            ps = []
            for i in range(n_sims):
                panel, _ = synth.factor_panel(1000 + i, effect=0.0, exchangeable=exch)
                start = panel["date"].min() + pd.Timedelta(days=60)
                r = synth.synthetic_control(panel, outcome="y", unit="region", time="date", treated_unit="treated",
                                            treatment_start=start, in_time_placebo=None, ci_method="placebo",
                                            placebo_max_pre_rmspe_ratio=cutoff, progress_bar=False)
                ps.append(r.p_value)
            p = pd.Series(ps)
            rows.append({"treated region": label,
                         "placebos ranked": "all" if cutoff is None else f"pre-RMSPE <= {cutoff:g}x treated",
                         "campaigns": n_sims, "p_le_0.05": float((p <= 0.05).mean()),
                         "p_le_0.10": float((p <= 0.10).mean()), "seconds": time.perf_counter() - t0})
    return pd.DataFrame(rows)


def run_simulator(n_seeds: int = 300, jobs: int = 2) -> pd.DataFrame:
    """Both geo designs on ``n_seeds`` simulated data sets (campaigns=4, days=240), lift and no effect."""
    seeds = range(SIM_SEED0, SIM_SEED0 + n_seeds)
    parts = []
    for null in (False, True):
        t0 = time.perf_counter()
        study = synth.simulator_study(seeds, null=null, jobs=jobs)
        tab = synth.summarise_simulator_study(study)
        tab["seconds"] = time.perf_counter() - t0
        parts.append(tab)
    return pd.concat(parts, ignore_index=True)


def _ci_rows_for_seed(args: tuple[int, bool]) -> list[dict]:
    """Every ``ci_method`` of the rescaled synthetic control on the geo campaigns of one simulated data set."""
    import warnings

    from analysis.simulate import generate

    seed, null = args
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tables, truth = generate(seed=seed, campaigns=4, days=240, show_progress=False,
                                 effect_scale=0.0 if null else 1.0)
    rows = []
    for cid, t in truth["campaigns"].items():
        for entry in t.get("lift", []):
            if entry.get("design") != "geo":
                continue
            start, end = pd.Timestamp(entry["window"]["start"]), pd.Timestamp(entry["window"]["end"])
            panel = synth.geo_panel(tables["geo_sales_daily"], tables["geo_assignment"], cid, metric=entry["metric"])
            panel = panel[panel["date"] <= end]
            for method in synth.CI_METHODS:
                t0 = time.perf_counter()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        r = synth.synthetic_control(panel, outcome=entry["metric"], unit="region", time="date",
                                                    treated_unit="treated", treatment_start=start, rescale=True,
                                                    placebos=method == "placebo", in_time_placebo=None,
                                                    ci_method=method, progress_bar=False)
                    lo, hi, effect = r.ci_low, r.ci_high, r.effect
                except ValueError:
                    # too short a pre-period for this method: no finite interval at this level
                    lo, hi, effect = -math.inf, math.inf, math.nan
                rows.append({"ci_method": method, "null": null, "truth": float(entry["effect"]),
                             "effect": effect, "ci_low": lo, "ci_high": hi,
                             "seconds": time.perf_counter() - t0})
    return rows


def _ci_summary(study: pd.DataFrame, data: str) -> pd.DataFrame:
    out = []
    for (method, null), g in study.groupby(["ci_method", "null"], sort=False):
        covered = (g["ci_low"] <= g["truth"]) & (g["truth"] <= g["ci_high"])
        width = g["ci_high"] - g["ci_low"]
        finite = width[np.isfinite(width)]
        out.append({"data": data, "ci_method": method, "scenario": "no effect" if null else "lift",
                    "campaigns": len(g), "coverage_95": float(covered.mean()),
                    "unbounded": float((~np.isfinite(width)).mean()),
                    "mean_ci_width": float(finite.mean()) if len(finite) else float("nan"),
                    "median_ci_width": float(width.median()),
                    "rejects_zero_ci": float(((g["ci_low"] > 0) | (g["ci_high"] < 0)).mean()),
                    "seconds_per_fit": float(g["seconds"].mean())})
    return pd.DataFrame(out)


def run_ci(n_sims: int = 300, jobs: int = 2) -> pd.DataFrame:
    """Every ``ci_method`` of the synthetic control on the factor model and on the simulator's geo holdouts."""
    from concurrent.futures import ProcessPoolExecutor

    factor = []
    for method in synth.CI_METHODS:
        for effect in (5.0, 0.0):
            t0 = time.perf_counter()
            study = synth.simulation_study(n_sims, effect=effect, ci_method=method, progress_bar=False)
            secs = (time.perf_counter() - t0) / n_sims
            factor.append(study.assign(ci_method=method, null=effect == 0.0, seconds=secs))
    tasks = [(s, null) for null in (False, True) for s in range(SIM_SEED0, SIM_SEED0 + n_sims)]
    rows: list[dict] = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for out in pool.map(_ci_rows_for_seed, tasks, chunksize=5):
            rows += out
    order = {m: i for i, m in enumerate(synth.CI_METHODS)}
    tab = pd.concat([_ci_summary(pd.concat(factor), "factor model"), _ci_summary(pd.DataFrame(rows), "simulator")],
                    ignore_index=True)
    tab["_o"] = tab["ci_method"].map(order)
    return tab.sort_values(["data", "scenario", "_o"], kind="stable").drop(columns="_o").reset_index(drop=True)


def to_markdown(table: pd.DataFrame) -> str:
    def fmt(v: object) -> str:
        if isinstance(v, float):
            return "" if v != v else f"{v:.3f}"
        return str(v)

    head = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "".join("| " + " | ".join(fmt(v) for v in row) + " |\n" for row in table.itertuples(index=False))
    return head + body


FACTOR_TEXT = (
    "## Factor model\n\n"
    "Each row repeats the estimator on simulated campaigns from a data-generating process that is "
    "neither estimator's model: regions from a 3-factor interactive fixed-effects model (AR(0.8) factors, "
    "heterogeneous loadings, AR(0.5) idiosyncratic noise, sd 2), 60 pre-period and 20 post-period days for "
    "the synthetic control (20 donor regions), 120 and 30 days for the structural time series (8 control "
    "regions). The injected lift ramps linearly over the post-period and averages 5 per day (about 5% of "
    "the level). `coverage_95` is the share of 95% intervals containing the true average effect; "
    "`rejects_zero_ci` the share of intervals excluding zero (power under a lift, false-positive rate "
    "under no effect); `placebo_p_le_0.05` the share of in-space placebo p-values at most 0.05 (21 units, "
    "so the smallest attainable p-value is 0.048). The synthetic control's interval is the default "
    "`ci_method=\"conformal\"` (average effect, linear trend allowed over the post-period); the other "
    "choices are compared in \"Intervals of the synthetic control\".\n\n"
    "Targets: coverage 92-98%, |relative bias| under 5%, false-positive rate at most 6%.\n\n"
    "The structural time series integrates over any variance estimated at zero (the default "
    "`parameter_uncertainty=\"boundary\"`, see \"On the simulator\"); with plug-in variances it covered "
    "96.0% here (false positives 4.0%, mean width 12.69). With it the intervals are conservative on this "
    "data-generating process (98.0%, false positives 2.0%, at the upper end of the target): 8 control "
    "regions track a 3-factor process only in part, and the model's level absorbs the rest.\n\n")

PLACEBO_TEXT = (
    "## In-space placebo p-value: exchangeability\n\n"
    "The placebo p-value (rank of the treated unit's post/pre RMSPE ratio among all units) is a "
    "permutation test: it is exact when, without an effect, the treated unit is one more draw from the "
    "donors' process. The factor study above breaks that on purpose: the treated region's loadings come "
    "from the middle of the donors' range (uniform 0.8-1.2 against 0.3-1.7). Such a unit is fitted well "
    "inside the donors' convex hull, so its small pre-period RMSPE is partly overfit and its ratio is "
    "inflated; donors at the edge of the range are fitted badly before and after, with ratios near one. "
    "The treated ratio then ranks too high and the test over-rejects (about twice the nominal rate at "
    "10%). With the treated region drawn like the donors the same code holds its size. Dropping "
    "badly fitted placebos (Abadie, Diamond and Hainmueller 2010; `placebo_max_pre_rmspe_ratio=5`) "
    "barely helps, because the over-rejection comes from the treated unit's own overfit, not from "
    "the dropped placebos. This is a property of the test, not a bug: when the treated unit was chosen "
    "for being well matched, read the conformal interval (whose false-positive rate stays at the "
    "nominal level in the same study) rather than the placebo rank. 21 units; seeds 1000-1299.\n\n")

SIMULATOR_TEXT = (
    "## On the simulator\n\n"
    "`analysis.lift.synth.simulator_study` runs both designs of `geo_lift` on every geo campaign of "
    "data sets from `analysis.simulate.generate(seed, campaigns=4, days=240)` (seeds 10000 onwards; one "
    "geo campaign each: 10-15 of 30 regions treated, the rest controls, 14-42 test days after a "
    "pre-period of about 80 days). Regional sales there are log-linear in clustered national factors "
    "with region-specific weekly patterns, trends, shocks and AR(0.5) noise, drawn as Poisson orders "
    "times a basket size: not either estimator's model. The truth is the simulator's record: the "
    "average over the campaign's days of the extra revenue injected into the treated regions, summed. "
    "The designs read the campaign window (its start to end date; the days after the end, which still "
    "carry an adstock tail, are left out).\n\n"
    "* synthetic control: the treated regions' total against the control regions with `rescale=True` "
    "(each control scaled to the total's pre-period level; without it the total lies far outside the "
    "controls' range and the fit is useless), conformal interval;\n"
    "* structural time series: each control region a separate regressor. Summing the controls into one "
    "regressor gave 91% coverage on 80 pilot seeds (the sum mixes the factor loadings of other clusters), "
    "each region separately 94% with the same interval width.\n\n"
    "Under no effect the same data sets are generated with `effect_scale=0`, which injects no campaign "
    "effect (the truth then records zero), and read on the same windows. `mean_abs_error_relative_effect` "
    "compares the relative effects (effect over the counterfactual). With 15-20 control regions the "
    "placebo p-value cannot go below 1/16-1/21, so `placebo_p_le_0.05` is near zero by construction there.\n\n"
    "Targets: coverage 92-98%, |relative bias| under 5%, false-positive rate at most 6%.\n\n"
    "The synthetic control's interval is the default `ci_method=\"conformal\"`: the Chernozhukov-Wuthrich-Zhu "
    "moving-block test of the average effect with the effect allowed to change linearly over the window. "
    "The constant-effect version of the same test over-covered here (99.7%, power 59%): the simulator's "
    "effect builds up with adstocked views over the window, so under the true average the shifted blocks "
    "that straddle the window's start see the effect's deviations from its average, and the permutation "
    "distribution widens. Removing the post-period residuals' linear trend before forming the blocks takes "
    "out most of that build-up; the comparison of every `ci_method` is in the section \"Intervals of the "
    "synthetic control\" below.\n\n"
    "Reading (300 seeds, 10000-10299): both designs are unbiased (relative bias under 1%) and recover the "
    "relative effect to about 1.1-1.4 points. Under a lift the synthetic control's interval covers the truth "
    "97.0% of the time (power 78.7%) and the structural time series' 97.0% (power 92.0%, intervals about "
    "an eighth narrower). Under no effect the synthetic control covers zero 94.3% of the time "
    "(false-positive rate 5.7%) and the structural time series 97.0% (3.0%, 9 of 300; binomial standard "
    "error 1.0 point). The structural time series integrates over any variance estimated at zero "
    "(`parameter_uncertainty=\"boundary\"`, the default): with plug-in variances it covered 93.7% under "
    "both scenarios (false-positive rate 6.3%, 19 of 300, intervals 16% narrower, power 93.7%), and "
    "17 of its 19 misses came from the 142 holdouts whose level variance was estimated at zero (12% of "
    "them, against 1.3% of the others); redrawing every variance (`\"laplace\"`) gave 98.0% and 2.0% "
    "with intervals 35% wider than the plug-in, and the Student-t scale correction (`\"scale\"`) "
    "93.7% and 6.3% (2% wider; no miss moved). The synthetic control's interval is still slightly "
    "conservative under a lift: the simulator's build-up is concave (adstock), and the part of it a "
    "straight line does not capture still reaches the shifted blocks. For the size of a geo effect the "
    "structural time series remains the sharper reading; the synthetic control is the design-robust "
    "second reading, with near-nominal coverage.\n\n")

CI_TEXT = (
    "## Intervals of the synthetic control\n\n"
    "Every `ci_method` of `synthetic_control` on the same campaigns: the factor model above (outcome-only "
    "fit, 20 donors, 60 + 20 days, a lift ramping linearly from 0.5 to 1.5 times its average of 5; seeds "
    "1000-1299) and the simulator's geo holdouts (rescaled fit, as `geo_lift` runs it; seeds 10000-10299, "
    "no effect via `effect_scale=0`). `rejects_zero_ci` is power under a lift and the false-positive rate "
    "under no effect; widths are in the outcome's units per period.\n\n"
    "* `conformal` (default): Chernozhukov-Wuthrich-Zhu moving-block test of \"the average effect is theta\" "
    "with the effect allowed to change linearly over the post-period (the post-period residuals' "
    "least-squares trend, which has mean zero, is removed before the T cyclic shifts are formed);\n"
    "* `conformal_constant`: the paper's test of a constant effect;\n"
    "* `conformal_pre`: candidate (a) in its literal form, the post-period residual sum ranked among the "
    "blocks of the same length inside the pre-period only;\n"
    "* `in_time`: in-time placebos, each pre-period window of the post-period's length left out of the fit, "
    "the interval from the conformal quantiles of their average gaps;\n"
    "* `placebo`: in-space placebos, quantiles of the donors' RMSPE-scaled placebo effects.\n\n"
    "Targets: coverage 92-98%, false-positive rate at most 6%.\n\n"
    "Reading (300 campaigns each): the default is the only choice within the targets on both data sets: "
    "94.0% coverage (power 95.0%) and 5.7% false positives on the factor model, 97.0% (power 78.7%) and 5.7% "
    "on the simulator. The constant-effect test is as accurate under no effect but wide when the effect "
    "varies over the window (99.7% coverage and 58.7% power on the simulator, 96.3% and 81.0% on the factor "
    "model, intervals about 40% wider). Ranking the post-period only among pre-period blocks "
    "(`conformal_pre`) and in-time placebos (`in_time`) make the effect's profile irrelevant but "
    "under-cover (87-90% and 79-87%) with false-positive rates of 10-21%: a pre-period of 60-85 days holds "
    "only one to six non-overlapping blocks as long as a 14-42-day window, so the tails of the block "
    "distribution rest on a handful of effectively independent draws, and the blocks are not a "
    "permutation group (the post-period block is independent of the pre-period blocks, which overlap "
    "each other); the in-time fits also use data on both sides of each left-out window, which likely "
    "makes their errors smaller than the real fit's extrapolation. In-space placebos (`placebo`) "
    "under-cover on the factor model (86.7%, false positives 13.3%: the treated region at the donors' "
    "centre is not exchangeable with them, see the placebo section) and give no 95% interval for 71% of "
    "the simulator's holdouts, which have fewer than 20 units; their 95.7% coverage there is mostly those "
    "unbounded intervals.\n\n")


def _replace(text: str, name: str, body: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = f"{start}\n{body}{end}"
    if start in text and end in text:
        return re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: section, text, flags=re.S)
    return text.rstrip("\n") + "\n\n" + section + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=300, help="simulated campaigns per study (default 300)")
    parser.add_argument("--part", choices=["all", "factor", "placebo", "simulator", "ci"], default="all")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for the simulator study")
    parser.add_argument("--out", type=Path, default=DOCS_DIR / "validation_lift.md")
    args = parser.parse_args()
    text = args.out.read_text() if args.out.exists() else TITLE
    if not text.startswith(TITLE):
        text = TITLE + "\n" + text
    intro = ("Generated by `python benchmarks/validation_lift.py` (`--part` re-runs one section).\n")
    if intro not in text:
        text = text.replace(TITLE, TITLE + "\n" + intro, 1)
    if args.part in ("all", "factor"):
        text = _replace(text, "factor", FACTOR_TEXT + to_markdown(run_factor(args.sims)))
    if args.part in ("all", "placebo"):
        text = _replace(text, "placebo", PLACEBO_TEXT + to_markdown(run_placebo(args.sims)))
    if args.part in ("all", "simulator"):
        text = _replace(text, "simulator", SIMULATOR_TEXT + to_markdown(run_simulator(args.sims, args.jobs)))
    if args.part in ("all", "ci"):
        text = _replace(text, "ci", CI_TEXT + to_markdown(run_ci(args.sims, args.jobs)))
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
