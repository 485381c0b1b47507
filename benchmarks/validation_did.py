"""Many-seed validation of the DiD, survey and CUPED estimators; writes docs/validation_did.md.

Each data-generating process differs from the estimator's model (heterogeneous effects, AR(1) noise,
staggered cohorts with dynamic effects). For each design we record, over many simulated data sets, the
coverage of the 95 % interval, the bias relative to the true effect, and the false-positive rate when
there is no effect.

A second study runs ``staggered_did`` on the simulator's regional sales (``analysis.simulate.generate``,
4 campaigns, 240 days per seed) against the injected ATT of each staggered rollout, in a process pool, and
writes its table between the ``simulator`` markers of docs/validation_did.md.

Run: ``python benchmarks/validation_did.py [--sims 400]`` (synthetic panels) or
``python benchmarks/validation_did.py --simulator-seeds 100 [--workers 2]`` (simulator study only).
"""

from __future__ import annotations

import argparse
import re
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.config import DOCS_DIR
from analysis.lift.did import did, event_study, staggered_did, staggered_panel
from analysis.lift.survey import cuped, proportion_lift
from analysis.progress import progress


def ar_noise(rng, n: int, T: int, phi: float = 0.5, sd: float = 1.0) -> np.ndarray:
    e = np.zeros((n, T))
    for t in range(T):
        e[:, t] = (phi * e[:, t - 1] if t else 0) + rng.normal(0, sd, n)
    return e


def panel_2x2(seed: int, effect: bool = True, n: int = 40, T: int = 12):
    """Block adoption at T/2 for half the units; unit-specific effects (mean 1.5); AR(1) noise."""
    rng = np.random.default_rng(seed)
    tr = rng.random(n) < 0.5
    tr[:2], tr[2:4] = True, False
    a = rng.normal(0, 2, n)
    lam = np.cumsum(rng.normal(0, 0.5, T))
    post = np.arange(T) >= T // 2
    tau_i = rng.gamma(4, 1.5 / 4, n) * effect
    te = tr[:, None] * post[None, :] * tau_i[:, None] * (1 + 0.1 * (np.arange(T) - T // 2))[None, :]
    y = 10 + a[:, None] + lam[None, :] + ar_noise(rng, n, T) + te
    df = pd.DataFrame({"u": np.repeat(np.arange(n), T), "t": np.tile(np.arange(T), n), "y": y.ravel(),
                       "g": np.repeat(tr.astype(int), T), "post": np.tile(post.astype(int), n)})
    df["d"] = df["g"] * df["post"]
    # the population ATT (unit effects are a draw: clustered intervals cover this, not the sample mean)
    truth = 1.5 * (1 + 0.1 * np.arange(T - T // 2)).mean() * effect
    return df, truth


def panel_staggered(seed: int, effect: bool = True, n: int = 60, T: int = 30):
    """Cohorts adopting at 10, 15, 20 and never; effects larger for early cohorts and growing with time."""
    rng = np.random.default_rng(seed)
    coh = rng.choice([10, 15, 20, np.inf], size=n, p=[0.25, 0.25, 0.25, 0.25])
    a = rng.normal(0, 2, n)
    lam = np.cumsum(rng.normal(0, 0.5, T))
    t = np.arange(T)
    ev = t[None, :] - coh[:, None]
    scale = np.select([coh == 10, coh == 15, coh == 20], [2.0, 1.0, 0.5], 0.0)
    te = np.where(ev >= 0, scale[:, None] * (1 + 0.1 * np.clip(ev, 0, None)), 0.0) * effect
    y = 10 + a[:, None] + lam[None, :] + ar_noise(rng, n, T) + te
    df = pd.DataFrame({"u": np.repeat(np.arange(n), T), "t": np.tile(t, n), "y": y.ravel(),
                       "cohort": np.repeat(np.where(np.isfinite(coh), coh, np.nan), T)})
    df["d"] = (df["t"] >= df["cohort"]).astype(int)
    truth = te[ev >= 0].mean() if (ev >= 0).any() else 0.0
    return df, truth


def survey_counts(seed: int, effect: bool = True):
    """Binomial groups of unequal size; the exposed rate drawn around the control one."""
    rng = np.random.default_rng(seed)
    pc = 0.2
    pt = pc + 0.03 * effect
    nc, nt = 1500, 1800
    return dict(control_successes=int(rng.binomial(nc, pc)), control_n=nc,
                treatment_successes=int(rng.binomial(nt, pt)), treatment_n=nt), pt - pc


def users_cuped(seed: int, effect: bool = True, n: int = 2000):
    """Skewed (log-normal) revenue with a correlated pre-period covariate; multiplicative 8 % lift."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1, n)
    x = np.exp(1 + 0.8 * z + rng.normal(0, 0.5, n))
    tr = rng.random(n) < 0.5
    base = np.exp(1 + 0.8 * z + rng.normal(0, 0.5, n))
    y = base * np.where(tr, 1 + 0.08 * effect, 1.0)
    mu = np.exp(1 + 0.32 + 0.125)  # E[base]
    return pd.DataFrame({"y": y, "x": x, "t": tr.astype(int)}), 0.08 * effect * mu


DESIGNS = {
    "did (2x2, unit+time FE)": lambda s, e: _run_did(s, e, post=True),
    "did (TWFE indicator)": lambda s, e: _run_did(s, e, post=False),
    "event_study (avg post)": lambda s, e: _run_es(s, e),
    "staggered_did (CS)": lambda s, e: _run_cs(s, e),
    "proportion_lift (newcombe)": lambda s, e: _run_prop(s, e),
    "cuped": lambda s, e: _run_cuped(s, e),
}


def _run_did(seed, effect, post):
    df, truth = panel_2x2(seed, effect)
    r = (did(df, outcome="y", treated="g", post="post", unit="u", time="t") if post
         else did(df, outcome="y", treated="d", unit="u", time="t"))
    return r.effect, r.ci_low, r.ci_high, r.p_value, truth


def _run_es(seed, effect):
    df, truth = panel_2x2(seed, effect)
    r = event_study(df, outcome="y", unit="u", time="t", treated="d")
    return r.effect, r.ci_low, r.ci_high, r.p_value, truth


def _run_cs(seed, effect):
    df, truth = panel_staggered(seed, effect)
    r = staggered_did(df, outcome="y", unit="u", time="t", cohort="cohort", compare_twfe=False)
    return r.effect, r.ci_low, r.ci_high, r.p_value, truth


def _run_prop(seed, effect):
    kw, truth = survey_counts(seed, effect)
    r = proportion_lift(**kw)
    return r.effect, r.ci_low, r.ci_high, r.p_value, truth


def _run_cuped(seed, effect):
    df, truth = users_cuped(seed, effect)
    r = cuped(df, metric="y", covariate="x", treatment="t")
    return r.effect, r.ci_low, r.ci_high, r.p_value, truth


def study(design: str, n_sims: int, first_seed: int = 0) -> dict:
    """Coverage, bias and false-positive rate of one design over ``n_sims`` seeds."""
    fn = DESIGNS[design]
    res = np.array([fn(first_seed + s, True) for s in range(n_sims)])
    null = np.array([fn(first_seed + s, False) for s in range(n_sims)])
    est, lo, hi, _, truth = res.T
    mean_truth = truth.mean()
    return {"design": design, "sims": n_sims, "true_effect": mean_truth,
            "coverage": float(np.mean((lo <= truth) & (truth <= hi))),
            "bias_pct": float(100 * np.mean(est - truth) / mean_truth),
            "false_positive": float(np.mean(null[:, 3] < 0.05)),
            "mean_ci_width": float(np.mean(hi - lo))}


def twfe_vs_cs(n_sims: int) -> dict:
    """Plain TWFE against Callaway-Sant'Anna on staggered cohorts with heterogeneous, dynamic effects."""
    tw, cs, tr = [], [], []
    for s in range(n_sims):
        df, truth = panel_staggered(s)
        r = staggered_did(df, outcome="y", unit="u", time="t", cohort="cohort", compare_twfe=True)
        tw.append(r.twfe_effect)
        cs.append(r.effect)
        tr.append(truth)
    tw, cs, tr = map(np.array, (tw, cs, tr))
    return {"truth": tr.mean(), "cs": cs.mean(), "twfe": tw.mean(),
            "cs_bias_pct": 100 * (cs - tr).mean() / tr.mean(), "twfe_bias_pct": 100 * (tw - tr).mean() / tr.mean()}


# ---------------------------------------------------------------------------- simulator study

#: Estimator settings compared on the simulator: the recommended one (the defaults) first.
SIM_VARIANTS = {
    "weekday base (28 days), campaign window": dict(post_end="window"),
    "same, within-cohort variance (previous interval)": dict(post_end="window", treated_variance="cohort"),
    "weekday base (28 days), whole panel": dict(),
    "universal base g-1, campaign window": dict(seasonality="none", post_end="window"),
    "universal base g-1, whole panel (old default)": dict(seasonality="none"),
}

#: Variants also run on the same rollouts without any injected effect (false-positive rate).
NULL_VARIANTS = ("weekday base (28 days), campaign window", "same, within-cohort variance (previous interval)")


def simulator_seed(seed: int) -> list[dict]:
    """Every staggered rollout of one simulated data set: truth and each variant's estimate, and the
    estimate on the same data set simulated with ``effect_scale=0`` (``null`` rows, truth 0): the same
    adoption schedule and campaign window with no injected effect of any campaign."""
    import warnings

    from analysis.simulate import generate

    tables, truth = generate(seed=seed, campaigns=4, days=240, show_progress=False)
    tables0, truth0 = generate(seed=seed, campaigns=4, days=240, show_progress=False, effect_scale=0.0)
    rows = []
    for cid, camp in truth["campaigns"].items():
        for entry in camp.get("lift") or []:
            if entry["design"] != "staggered":
                continue
            panel = staggered_panel(tables["geo_sales_daily"], tables["geo_assignment"], cid)
            end = pd.Timestamp(entry["window"]["end"])
            null_panel = staggered_panel(tables0["geo_sales_daily"], tables0["geo_assignment"], cid)
            null_truth = next(e["effect"] for e in truth0["campaigns"][cid]["lift"] if e["design"] == "staggered")
            if not (null_panel["cohort"].equals(panel["cohort"]) and null_truth == 0):
                raise RuntimeError(f"seed {seed}, {cid}: effect_scale=0 changed the rollout or left an effect")
            for name, kw in SIM_VARIANTS.items():
                runs = [(False, panel, entry["effect"])]
                if name in NULL_VARIANTS:
                    runs.append((True, null_panel, 0.0))
                for null, pan, tr in runs:
                    kw2 = {**kw, **({"post_end": end} if kw.get("post_end") == "window" else {})}
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        r = staggered_did(pan, outcome="revenue", unit="region", time="date", cohort="cohort",
                                          compare_twfe=False, **kw2)
                    rows.append({"seed": seed, "campaign_id": cid, "variant": name, "null": null, "truth": tr,
                                 "estimate": r.effect, "ci_low": r.ci_low, "ci_high": r.ci_high,
                                 "p_value": r.p_value, "pretrend_p": r.pretrend_p,
                                 "treated_variance": r.treated_variance})
    return rows


def simulator_study(seeds, workers: int = 2) -> pd.DataFrame:
    """Per-seed rows of :func:`simulator_seed` for ``seeds``, in a process pool of ``workers``."""
    seeds = list(seeds)
    out: list[dict] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for rows in progress(pool.map(simulator_seed, seeds), total=len(seeds), desc="simulator seeds"):
            out.extend(rows)
    return pd.DataFrame(out)


def simulator_table(df: pd.DataFrame) -> pd.DataFrame:
    """Coverage, bias, error and pre-trend rejections per variant; false positives on effect-free rollouts."""
    null = df[df["null"]] if "null" in df else df.iloc[:0]
    df = df[~df["null"]] if "null" in df else df
    d = df.assign(cover=(df["ci_low"] <= df["truth"]) & (df["truth"] <= df["ci_high"]),
                  err=df["estimate"] - df["truth"], width=df["ci_high"] - df["ci_low"],
                  pre_reject=df["pretrend_p"] < 0.05)
    g = d.groupby("variant", sort=False)
    tab = pd.DataFrame({
        "rollouts": g.size(), "mean_truth": g["truth"].mean(), "coverage": g["cover"].mean(),
        "bias_pct": 100 * g["err"].mean() / g["truth"].mean(),
        "median_abs_err_pct": 100 * g["err"].apply(lambda e: e.abs().median()) / g["truth"].mean(),
        "rmse": g["err"].apply(lambda e: float(np.sqrt(np.mean(e ** 2)))),
        "mean_ci_width": g["width"].mean(), "pretrend_reject": g["pre_reject"].mean(),
    })
    fp = (null["p_value"] < 0.05).groupby(null["variant"], sort=False).mean()
    tab["false_positive"] = fp.reindex(tab.index)
    return tab.reset_index()


def simulator_markdown(tab: pd.DataFrame, n_seeds: int, elapsed: float, workers: int) -> str:
    lines = [
        "<!-- simulator:start -->",
        "## `staggered_did` on the simulator's regional sales",
        "",
        f"Produced by `benchmarks/validation_did.py --simulator-seeds {n_seeds} --workers {workers}` "
        f"({elapsed:.0f} s). For seeds 0-{n_seeds - 1}, `generate(seed, campaigns=4, days=240)`; every "
        "staggered rollout is estimated on the 30-region daily revenue panel (`staggered_panel`) with "
        "never-treated controls and compared with the injected ATT per treated region-day from adoption to "
        "the campaign's end (`truth[...]['lift']`, design `staggered`). The simulator's regions have their "
        "own multiplicative weekday patterns, sizes, national factors with region-specific loadings and "
        "shocks, so parallel trends in revenue levels holds only approximately. Most regions adopt on a "
        "day of their own (single-region cohorts). False positives: the same estimator on the same seed "
        "simulated with `generate(seed, campaigns=4, days=240, effect_scale=0)`, which keeps every rollout's "
        "adoption schedule and window and injects no effect of any campaign (the truth records 0); a "
        "rejection of zero at 5 % counts as a false positive.",
        "",
        "| estimator | rollouts | mean true ATT | coverage of 95 % CI | bias (% of ATT) | "
        "median abs. error (% of ATT) | RMSE | mean CI width | pre-trend test rejects (5 %) | "
        "false positives (effect-free rollout, 5 %) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in tab.itertuples():
        lines.append(f"| {r.variant} | {r.rollouts} | {r.mean_truth:.4g} | {r.coverage:.1%} | "
                     f"{r.bias_pct:+.1f} % | {r.median_abs_err_pct:.1f} % | {r.rmse:.4g} | "
                     f"{r.mean_ci_width:.4g} | {r.pretrend_reject:.1%} | "
                     + ("" if pd.isna(r.false_positive) else f"{r.false_positive:.1%}") + " |")
    fp = tab.dropna(subset=["false_positive"])
    if len(fp):
        from scipy.stats import binomtest

        r = fp.iloc[0]
        k = int(round(r.false_positive * r.rollouts))
        ci = binomtest(k, int(r.rollouts)).proportion_ci()
        lines += ["", f"False positives of `{r.variant}`: {k} of {r.rollouts} effect-free rollouts "
                  f"({r.false_positive:.1%}; exact binomial 95 % interval {ci.low:.1%}-{ci.high:.1%}; "
                  f"one binomial standard error at 5 % is {np.sqrt(0.05 * 0.95 / r.rollouts):.1%})."]
    lines += ["<!-- simulator:end -->", ""]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace (or append) the simulator section of ``path``."""
    text = path.read_text() if path.exists() else ""
    pat = re.compile(r"<!-- simulator:start -->.*?<!-- simulator:end -->\n?", re.S)
    text = pat.sub(lambda _: section, text) if pat.search(text) else text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sims", type=int, default=400)
    ap.add_argument("--out", type=Path, default=DOCS_DIR / "validation_did.md")
    ap.add_argument("--simulator-seeds", type=int, default=0,
                    help="run only the simulator study over this many seeds")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rows", type=Path, default=None,
                    help="with --simulator-seeds: also write the per-rollout estimates to this CSV file")
    args = ap.parse_args(argv)
    if args.simulator_seeds:
        t0 = time.time()
        df = simulator_study(range(args.simulator_seeds), workers=args.workers)
        if args.rows is not None:
            df.to_csv(args.rows, index=False)
        section = simulator_markdown(simulator_table(df), args.simulator_seeds, time.time() - t0, args.workers)
        write_section(args.out, section)
        print(section)
        return
    t0 = time.time()
    rows = [study(d, args.sims) for d in progress(list(DESIGNS), desc="designs")]
    cmp = twfe_vs_cs(args.sims)
    elapsed = time.time() - t0
    tab = pd.DataFrame(rows)
    lines = [
        "# Validation of the DiD, survey and CUPED estimators",
        "",
        f"Produced by `benchmarks/validation_did.py --sims {args.sims}` ({elapsed:.0f} s). Each row simulates "
        f"{args.sims} data sets with an effect and {args.sims} without; the data-generating processes differ "
        "from the estimators' models (see the script's docstrings): unit-specific and growing effects, AR(1) "
        "noise with phi = 0.5, random common time shocks, staggered cohorts with cohort-specific dynamic "
        "effects, skewed (log-normal) revenue. Targets: coverage of the 95 % interval in 92-98 %, "
        "|bias| under 5 % of the effect, false-positive rate at most 6 %.",
        "",
        "| design | simulations | mean true effect | coverage of 95 % CI | bias (% of effect) | "
        "false-positive rate | mean CI width |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in tab.itertuples():
        lines.append(f"| {r.design} | {r.sims} | {r.true_effect:.4g} | {r.coverage:.1%} | {r.bias_pct:+.2f} % | "
                     f"{r.false_positive:.1%} | {r.mean_ci_width:.4g} |")
    se5 = np.sqrt(0.05 * 0.95 / args.sims)
    lines += [
        "",
        f"One binomial standard error of a false-positive rate near 5 % over {args.sims} simulations is "
        f"{se5:.1%}. `staggered_did`'s analytic interval scales each unit's squared influence by m/(m-1) for "
        "its group of m units (its cohort, or the never-treated units): the HC2 / CR2 leverage correction of "
        "group means, which makes a two-period, one-cohort standard error Welch's. With the global G/(G-1) "
        "factor used before, the 15-unit groups here lost about 5 % of their variance: 93.8 % coverage and "
        "6.2 % false positives at 600 simulations.",
        "",
        "## Plain TWFE is biased under staggered adoption with heterogeneous effects",
        "",
        "Cohorts adopting at periods 10, 15 and 20 (and never-treated units); the early cohort's effect is "
        "four times the late one's and every effect grows 10 % a period. The estimand is the average effect "
        "over treated unit-periods.",
        "",
        "| estimator | mean estimate | bias (% of truth) |",
        "|---|---|---|",
        f"| truth | {cmp['truth']:.4g} | |",
        f"| Callaway-Sant'Anna (`staggered_did`) | {cmp['cs']:.4g} | {cmp['cs_bias_pct']:+.1f} % |",
        f"| plain two-way fixed effects | {cmp['twfe']:.4g} | {cmp['twfe_bias_pct']:+.1f} % |",
        "",
        "TWFE uses already-treated units as controls for later adopters, subtracting part of their growing "
        "effect; the group-time estimator only compares with never-treated (or not-yet-treated) units.",
        "",
    ]
    old = args.out.read_text() if args.out.exists() else ""
    keep = re.search(r"<!-- simulator:start -->.*?<!-- simulator:end -->\n?", old, re.S)
    args.out.write_text("\n".join(lines) + ("\n" + keep.group(0) if keep else ""))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
