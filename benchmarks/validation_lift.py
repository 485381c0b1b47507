"""Many-seed validation of the synthetic control and structural time-series designs.

Writes ``docs/validation_lift.md`` in three sections, each between its own markers so one can be
re-run alone:

* ``factor``: coverage of the 95% intervals, bias and false-positive rates on a factor-model
  data-generating process that neither estimator assumes;
* ``placebo``: the in-space placebo p-value's false-positive rate with the treated region drawn like
  the donors (exchangeable) and from the middle of their range (the factor study's design);
* ``simulator``: both geo designs of :func:`analysis.lift.synth.geo_lift` on the project's simulator,
  against its recorded truth, with and without an effect.

Usage: ``python benchmarks/validation_lift.py [--sims 300] [--part all|factor|placebo|simulator]``
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

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
    "so the smallest attainable p-value is 0.048).\n\n"
    "Targets: coverage 92-98%, |relative bias| under 5%, false-positive rate at most 6%.\n\n")

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
    "Under no effect the same campaigns are read on a window of the same length ending the day before "
    "the campaign starts (no injected effect there; the simulator's `effect_scale=0` is used instead "
    "where it removes the regional effect). `mean_abs_error_relative_effect` compares the relative "
    "effects (effect over the counterfactual). With 15-20 control regions the placebo p-value cannot go "
    "below 1/16-1/21, so `placebo_p_le_0.05` is near zero by construction there.\n\n"
    "Targets: coverage 92-98%, |relative bias| under 5%, false-positive rate at most 6%.\n\n"
    "Reading (300 seeds, 10000-10299): both designs are unbiased (relative bias under 1%) and recover the "
    "relative effect to about 1.2 points; under no effect both keep their false-positive rate (4.7% and "
    "6.0%) and cover zero at the nominal rate. The structural time series covers the truth at the nominal "
    "rate under a lift (93.7%) with intervals half as wide. The synthetic control's conformal interval "
    "over-covers under a lift (99.7%, power 59% against 94%): it inverts a test of a constant effect, "
    "and the simulator's effect builds up with adstocked views over the window, so under the true average "
    "the moving-block shifts that straddle the start of the window see the effect's deviations from its "
    "average and the permutation distribution widens. This is conservative, not anti-conservative, and "
    "is marked as an expected failure in `tests/test_lift_synth.py`; the fix (a test statistic that "
    "tolerates a time-varying effect) is open. For geo holdouts read the structural time series' interval "
    "for the size of the effect and use the synthetic control as the second, design-robust check.\n\n")


def _replace(text: str, name: str, body: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = f"{start}\n{body}{end}"
    if start in text and end in text:
        return re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: section, text, flags=re.S)
    return text.rstrip("\n") + "\n\n" + section + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=300, help="simulated campaigns per study (default 300)")
    parser.add_argument("--part", choices=["all", "factor", "placebo", "simulator"], default="all")
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
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
