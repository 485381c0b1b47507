"""Many-seed validation of the brand-lift survey reading on the simulator's surveys.

For seeds ``0 .. N-1``, ``analysis.simulate.generate(seed, campaigns=4, days=240)`` writes brand-lift
surveys (exposed and control respondents answering several yes/no questions; the simulator draws each
answer from the question's control rate plus the campaign's injected uplift for the exposed group).
``analysis.lift.survey.survey_lift`` reads every survey (Newcombe hybrid score interval, Holm
correction within a campaign) and each question's interval is compared with the injected difference
of proportions recorded in ``truth.json`` (design ``survey``). The same seeds are simulated with
``effect_scale=0`` (no campaign effect, every truth 0) for the false-positive rates, per question
(unadjusted interval excludes 0) and per campaign (any Holm-adjusted p-value under 0.05).

Usage: ``python benchmarks/validation_survey.py [--seeds 300] [--no-write]``; writes the marked
section of ``docs/validation_survey.md``.
"""

from __future__ import annotations

import argparse
import re
import time
import warnings
from pathlib import Path

import pandas as pd

DOC = Path(__file__).resolve().parents[1] / "docs" / "validation_survey.md"
START, END = "<!-- survey:start -->", "<!-- survey:end -->"
TARGETS = {"coverage": (0.92, 0.98), "abs_relative_bias": 0.05, "false_positive": 0.06}


def one_seed(seed: int, *, null: bool = False) -> list[dict]:
    """One row per (campaign, question) of the seed's surveys: truth, estimate and interval."""
    from analysis.lift.survey import survey_lift
    from analysis.simulate import generate

    tables, truth = generate(seed=seed, campaigns=4, days=240, show_progress=False,
                             effect_scale=0.0 if null else 1.0)
    survey = tables.get("brand_lift_survey")
    if survey is None or survey.empty:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = survey_lift(survey).table.set_index(["campaign_id", "question"])
    rows = []
    for cid, camp in truth["campaigns"].items():
        for e in camp.get("lift") or []:
            if e["design"] != "survey" or (cid, e["metric"]) not in res.index:
                continue
            r = res.loc[(cid, e["metric"])]
            rows.append({"seed": seed, "null": null, "campaign_id": cid, "question": e["metric"],
                         "truth": float(e["effect"]), "effect": float(r["effect"]),
                         "ci_low": float(r["ci_low"]), "ci_high": float(r["ci_high"]),
                         "p_value": float(r["p_value"]), "p_adjusted": float(r["p_value_adjusted"])})
    return rows


def study(seeds: range) -> pd.DataFrame:
    """Rows of :func:`one_seed` for every seed, with and without the campaign effect."""
    from analysis.progress import progress

    rows = []
    for s in progress(list(seeds), desc="survey seeds"):
        rows += one_seed(s) + one_seed(s, null=True)
    return pd.DataFrame(rows)


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Coverage, bias and rejection rates of the lifted questions and of the null worlds."""
    df = df.assign(covers=(df["ci_low"] <= df["truth"]) & (df["truth"] <= df["ci_high"]),
                   excludes_zero=(df["ci_low"] > 0) | (df["ci_high"] < 0))
    lifted = df[~df["null"] & (df["truth"] != 0)]
    zero_in_lifted = df[~df["null"] & (df["truth"] == 0)]
    null = df[df["null"]]
    fam = null.groupby(["seed", "campaign_id"])["p_adjusted"].min() < 0.05
    rel_bias = float((lifted["effect"] - lifted["truth"]).sum() / lifted["truth"].sum())
    rows = [
        {"check": "questions with an injected uplift: 95% interval covers the truth",
         "target": "92-98%", "measured": lifted["covers"].mean(), "runs": len(lifted),
         "met": TARGETS["coverage"][0] <= lifted["covers"].mean() <= TARGETS["coverage"][1]},
        {"check": "questions with an injected uplift: bias sum(est - truth) / sum(truth)",
         "target": "abs < 5%", "measured": rel_bias, "runs": len(lifted),
         "met": abs(rel_bias) < TARGETS["abs_relative_bias"]},
        {"check": "questions with an injected uplift: interval excludes 0 (power)", "target": "(report)",
         "measured": lifted["excludes_zero"].mean(), "runs": len(lifted), "met": None},
        {"check": "questions without uplift in lifted campaigns: interval excludes 0",
         "target": "<= 6%", "measured": zero_in_lifted["excludes_zero"].mean(),
         "runs": len(zero_in_lifted),
         "met": zero_in_lifted["excludes_zero"].mean() <= TARGETS["false_positive"]},
        {"check": "no campaign effect: question's interval excludes 0", "target": "<= 6%",
         "measured": null["excludes_zero"].mean(), "runs": len(null),
         "met": null["excludes_zero"].mean() <= TARGETS["false_positive"]},
        {"check": "no campaign effect: any Holm-adjusted p < 0.05 in a campaign (family-wise)",
         "target": "<= 6%", "measured": fam.mean(), "runs": len(fam),
         "met": fam.mean() <= TARGETS["false_positive"]},
    ]
    return pd.DataFrame(rows)


def render(table: pd.DataFrame, seeds: int, seconds: float) -> str:
    lines = [START, "",
             f"Generated by `benchmarks/validation_survey.py --seeds {seeds}` ({seconds / 60:.1f} min); "
             "do not edit by hand.", "",
             "| check | target | measured | runs | met |", "|---|---|---|---|---|"]
    for r in table.itertuples():
        measured = f"{r.measured:+.1%}" if "bias" in r.check else f"{r.measured:.1%}"
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.check} | {r.target} | {measured} | {r.runs} | {met} |")
    return "\n".join(lines + ["", END])


def write(section: str) -> None:
    head = ("# Validation of the brand-lift survey reading\n\n"
            "`analysis.lift.survey.survey_lift` on the simulator's brand-lift surveys, against the "
            "uplift the simulator injected (see `benchmarks/validation_survey.py` for the set-up). "
            "Intervals are Newcombe's hybrid score intervals of the difference of proportions; "
            "p-values are corrected within a campaign's questions with Holm's method.\n\n")
    text = DOC.read_text() if DOC.exists() else head
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=300,
                    help="simulated data sets, one survey campaign each (default 300)")
    ap.add_argument("--no-write", action="store_true", help="print the table, do not touch the doc")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    df = study(range(args.seeds))
    table = summarise(df)
    section = render(table, args.seeds, time.perf_counter() - t0)
    print(section)
    if not args.no_write:
        write(section)
    return 0 if all(m is not False for m in table["met"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
