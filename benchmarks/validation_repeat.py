"""Many-seed validation of the repeat-collaboration ratio; writes a section of docs/validation_repeat.md.

Each seed simulates a brand year (``analysis.simulate.generate``) in which a creator's later campaigns
with the brand multiply its viewers' brand-profile-visit rate by a per-creator factor (log-normal around
``repeat_effect``, recorded in ``truth["repeat"]``). Every campaign is attributed once
(``attribute_followers``, no bootstrap: the ratio's interval uses the spread over creators and the
campaigns' total intervals for the error creators share within a campaign), then

* the brand-wide ratio (:func:`analysis.attribution.repeat.repeat_collaborations`) and
* each campaign's returning-creator ratio (:func:`analysis.attribution.repeat.returning_creators`, the
  campaign report's piece)

are compared with the injected population multiplier and with the realised ratio of caused follows per
view (later vs first, the same definition on the true follows). ``repeat_effect=1`` gives the false-positive
rate.

Usage: ``python benchmarks/validation_repeat.py [--seeds 40] [--effects 1.2 1.0 2.0] [--jobs 1] [--no-write]
[--store DIR]`` (``--store`` keeps each seed's attributions so a re-run only redoes the comparison).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("ANALYSIS_NO_PROGRESS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "validation_repeat.md"
START, END = "<!-- repeat:start -->", "<!-- repeat:end -->"
CAMPAIGNS, DAYS = 10, 365


def simulate_and_attribute(seed: int, effect: float, store: Path | None = None) -> tuple[dict, dict, dict]:
    """One simulated brand year and every campaign's follower attribution (read from ``store`` if saved there).

    The attributions are the expensive part (minutes per seed); saving them lets the comparison itself be
    re-run on the same worlds in seconds.
    """
    import pickle

    from analysis.attribution.repeat import attribute_campaigns
    from analysis.simulate import generate

    path = None if store is None else store / f"seed{seed}_effect{effect:g}.pkl"
    if path is not None and path.exists():
        with path.open("rb") as fh:
            return pickle.load(fh)
    tables, truth = generate(seed=seed, campaigns=CAMPAIGNS, days=DAYS, show_progress=False, repeat_effect=effect)
    cache = attribute_campaigns(tables, list(truth["campaigns"]), skip_errors=True, show_progress=False,
                                n_boot=0, seed=seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            pickle.dump((tables, truth, cache), fh, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    return tables, truth, cache


def one_seed(args: tuple) -> list[dict]:
    """Simulate one seed with the given population multiplier; one row per estimate (brand and campaigns)."""
    import warnings

    from analysis.attribution.repeat import repeat_collaborations, returning_creators

    seed, effect = args[0], args[1]
    store = args[2] if len(args) > 2 else None
    warnings.simplefilter("ignore")
    tables, truth, cache = simulate_and_attribute(seed, effect, store)
    cache = dict(cache)
    rt = truth["repeat"]
    base = {"seed": seed, "effect": effect, "sample_multiplier": rt["sample_multiplier"]}
    rows = []
    br = repeat_collaborations(tables, campaign_ids=sorted(cache), attributions=cache)
    rows.append({**base, "level": "brand", "campaign_id": "", "ratio": br.ratio, "lo": br.ci_low,
                 "hi": br.ci_high, "p": br.p_value, "n": br.n, "realised": rt["realised_ratio"],
                 "shared_share": br.shared_share, "n_clusters": br.n_clusters, "method": br.method})
    for cid in sorted(cache):
        r = returning_creators(tables, cid, attribution=cache[cid], cache=cache)
        if r.n_repeat_creators == 0:
            continue
        # realised ratio for this campaign's returning creators: this campaign vs their first
        logs = []
        for cr in r.pairs["creator_id"]:
            c = rt["creators"].get(cr)
            if c is None:
                continue
            per = c["follows_per_1000_views"]
            f0, f1 = per.get(c["first_campaign"]), per.get(cid)
            if f0 and f1 and f0 > 0 and f1 > 0:
                logs.append(np.log(f1 / f0))
        rows.append({**base, "level": "campaign", "campaign_id": cid, "ratio": r.ratio, "lo": r.ci_low,
                     "hi": r.ci_high, "p": r.p_value, "n": r.n,
                     "realised": float(np.exp(np.mean(logs))) if logs else None,
                     "shared_share": r.shared_share, "n_clusters": r.n_clusters, "method": r.method})
    return rows


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (effect, level), g in df.groupby(["effect", "level"], sort=False):
        est = g.dropna(subset=["ratio"])
        cov_pop = ((est["lo"] <= effect) & (effect <= est["hi"])).mean()
        real = est.dropna(subset=["realised"])
        cov_real = ((real["lo"] <= real["realised"]) & (real["realised"] <= real["hi"])).mean()
        gm_bias = float(np.exp(np.mean(np.log(est["ratio"]) - np.log(effect)))) if len(est) else np.nan
        gm_bias_real = (float(np.exp(np.mean(np.log(real["ratio"]) - np.log(real["realised"].astype(float)))))
                        if len(real) else np.nan)
        sig = (est["p"] < 0.05).mean()
        out.append({"population multiplier": effect, "level": level, "runs": len(g), "estimated": len(est),
                    "median n creators": float(est["n"].median()) if len(est) else np.nan,
                    "median estimate": float(est["ratio"].median()) if len(est) else np.nan,
                    "estimate / truth (geometric mean)": gm_bias,
                    "estimate / realised (geometric mean)": gm_bias_real,
                    "covers population multiplier": cov_pop, "covers realised ratio": cov_real,
                    "p < 0.05": sig,
                    "median hi / lo": float((est["hi"] / est["lo"]).median()) if len(est) else np.nan,
                    "median shared share": float(pd.to_numeric(est.get("shared_share"), errors="coerce").median())
                    if len(est) and "shared_share" in est else np.nan})
    return pd.DataFrame(out)


def paired(df: pd.DataFrame) -> pd.DataFrame:
    """Brand level, same seeds: ratio at each multiplier over the ratio without the effect (1)."""
    b = df[df["level"] == "brand"].dropna(subset=["ratio"]).pivot(index="seed", columns="effect", values="ratio")
    out = []
    if 1.0 not in b.columns:
        return pd.DataFrame(out)
    for e in [c for c in b.columns if c != 1.0]:
        d = np.log(b[e] / b[1.0]).dropna()
        out.append({"effect": e, "seeds": len(d), "ratio": float(np.exp(d.mean())), "rises": float((d > 0).mean()),
                    "recovered": float(d.mean() / np.log(e))})
    return pd.DataFrame(out)


def render(table: pd.DataFrame, n_seeds: int, seconds: float, jobs: int, pairs: pd.DataFrame | None = None) -> str:
    lines = [START, "",
             f"Generated by `benchmarks/validation_repeat.py --seeds {n_seeds}` "
             f"({n_seeds} seeds per multiplier, `generate(campaigns={CAMPAIGNS}, days={DAYS})`, "
             f"{seconds / 60:.1f} min on {jobs} process(es)); do not edit by hand.", "",
             "| population multiplier | level | runs | estimated | median creators | median estimate | "
             "estimate / truth | estimate / realised | 95% CI covers multiplier | covers realised | p < 0.05 | "
             "median CI high / low | median shared share of variance |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples(index=False):
        v = list(r)
        lines.append(f"| {v[0]:g} | {v[1]} | {v[2]} | {v[3]} | {v[4]:.0f} | {v[5]:.2f} | {v[6]:.2f} | {v[7]:.2f} | "
                     f"{100 * v[8]:.1f}% | {100 * v[9]:.1f}% | {100 * v[10]:.1f}% | {v[11]:.2f} | "
                     f"{100 * v[12]:.0f}% |")
    lines += ["", "`brand`: one ratio per seed over every campaign (`repeat_collaborations`); `campaign`: one per "
              "campaign with returning creators (`returning_creators`, the report's piece). `estimate / truth` is "
              "the geometric mean of estimate over the population multiplier (1 = unbiased); with multiplier 1, "
              "`p < 0.05` is the false-positive rate; otherwise it is the power. `median CI high / low` is the "
              "interval's width as a ratio; `shared share` the part of the log ratio's variance due to errors "
              "creators share within a campaign.", ""]
    if pairs is not None and len(pairs):
        lines += ["Same seeds with and without the effect (brand level; only the repeat follows differ):", "",
                  "| population multiplier | seeds | estimate / estimate without effect (geometric mean) | "
                  "rises | share of log effect recovered |", "|---|---|---|---|---|"]
        for r in pairs.itertuples(index=False):
            lines.append(f"| {r.effect:g} | {r.seeds} | {r.ratio:.2f} | {100 * r.rises:.0f}% | "
                         f"{100 * r.recovered:.0f}% |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def write_section(text: str) -> None:
    doc = DOC.read_text() if DOC.exists() else "# Validation of the repeat-collaboration ratio\n\n" + START + END + "\n"
    if START in doc and END in doc:
        doc = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _m: text, doc, flags=re.S)
    else:
        doc = doc.rstrip() + "\n\n" + text + "\n"
    DOC.write_text(doc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=40, help="seeds per multiplier (default 40)")
    ap.add_argument("--effects", type=float, nargs="+", default=[1.2, 1.0, 2.0],
                    help="population multipliers to simulate (default 1.2 1.0 2.0)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--no-write", action="store_true", help="print the table, do not touch the doc")
    ap.add_argument("--csv", type=Path, default=None, help="also write the per-run rows to this CSV")
    ap.add_argument("--store", type=Path, default=None,
                    help="directory to save each seed's data and attributions in (and reuse them from)")
    a = ap.parse_args(argv)
    from tqdm import tqdm

    tasks = [(1000 + s, e, a.store) for e in a.effects for s in range(a.seeds)]
    t0 = time.perf_counter()
    rows: list[dict] = []
    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs) as ex:
            for r in tqdm(ex.map(one_seed, tasks), total=len(tasks), desc="seeds"):
                rows += r
    else:
        for t in tqdm(tasks, desc="seeds"):
            rows += one_seed(t)
    seconds = time.perf_counter() - t0
    df = pd.DataFrame(rows)
    if a.csv:
        df.to_csv(a.csv, index=False)
    table = summarise(df)
    text = render(table, a.seeds, seconds, a.jobs, paired(df))
    print(text)
    if not a.no_write:
        write_section(text)
        print(f"written to {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
