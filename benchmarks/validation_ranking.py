"""How well can any estimator of this kind rank creators? Writes docs/validation_ranking.md.

The follower validation (``validation_attribution.py``) misses its ranking target: for creators above
5% of a campaign's caused follows, the model's Spearman correlation with the truth is below 0.8 in
most campaigns. This study asks where the limit lies, on the same 200 simulated data sets
(``build_core(seed, campaigns=3, days=365)``, the core of ``generate``):

* the model as shipped (``attribute_followers``, point estimates), and the same model on the same data
  sets with the brand's own baseline made noise-free (``baseline_noise=0``: new followers and profile
  views at their expected values; the caused follows are unchanged);
* an *oracle-form* estimator that no analysis can run: the brand's new followers regressed on every
  creator's **true** daily views (before reporting glitches) passed through the simulator's **true**
  follow-lag distribution, with the same baseline controls and creator deviations ridge-penalised
  towards their campaign's mean; the penalty is picked **in hindsight** (the one value that ranks best
  across all campaigns, and, as a loose upper bound, the best value for each campaign separately);
* the same oracle form with each creator's deviation shared across the brand's campaigns (a creator who
  works in several campaigns of the year keeps one deviation, plus a per-campaign one): how much a
  program-level fit that pools a creator's campaigns could add;
* ranking by views alone, for reference.

Usage: ``python benchmarks/validation_ranking.py [--seeds 200] [--jobs 2] [--no-write]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("ANALYSIS_NO_PROGRESS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "validation_ranking.md"
#: Ridge penalties of the oracle-form estimator, relative to the mean diagonal of the penalised Gram block.
PENALTIES = np.r_[0.0, np.logspace(-4, 3, 15)]
#: Spearman's rho of few creators takes few values; 0.8 is one of them (0.7999999999999999 in floating point).
RHO_TARGET = 0.8 - 1e-9
#: Penalty of the shared creator deviation relative to the per-campaign one (shared-deviation oracle).
SHARED_RATIOS = (0.1, 0.3, 1.0)


def ridge_rates(y: np.ndarray, controls: np.ndarray, exposure: np.ndarray, group: np.ndarray,
                penalty: float) -> np.ndarray:
    """Per-unit response of ``y`` to ``exposure`` (days x units): controls, one slope per campaign
    (``group``) and unit deviations ridge-penalised by ``penalty`` x the mean diagonal of their Gram block."""
    groups = np.unique(group)
    G = np.column_stack([exposure[:, group == g].sum(axis=1) for g in groups])
    X = np.column_stack([controls, G, exposure])
    pen = np.r_[np.zeros(controls.shape[1] + G.shape[1]), np.ones(exposure.shape[1])]
    XtX = X.T @ X
    scale = float(np.mean(np.diag(XtX)[pen > 0]))
    D = np.diag(pen * penalty * scale + 1e-9 * np.maximum(np.diag(XtX), 1e-12))
    b = np.linalg.solve(XtX + D, X.T @ y)
    k = controls.shape[1]
    return b[k + np.searchsorted(groups, group)] + b[k + len(groups):]


def ridge_shared_rates(y: np.ndarray, controls: np.ndarray, exposure: np.ndarray, group: np.ndarray,
                       creator: np.ndarray, penalty: float, ratio: float) -> np.ndarray:
    """As :func:`ridge_rates`, plus one deviation per creator shared by all its units (campaigns),
    penalised by ``ratio`` x ``penalty``; a unit's rate is its campaign's slope plus both deviations."""
    groups, creators = np.unique(group), np.unique(creator)
    G = np.column_stack([exposure[:, group == g].sum(axis=1) for g in groups])
    C = np.column_stack([exposure[:, creator == k].sum(axis=1) for k in creators])
    X = np.column_stack([controls, G, C, exposure])
    k0, k1 = controls.shape[1] + G.shape[1], controls.shape[1] + G.shape[1] + C.shape[1]
    XtX = X.T @ X
    scale = float(np.mean(np.diag(XtX)[k1:]))
    pen = np.r_[np.zeros(k0), np.full(C.shape[1], ratio), np.ones(exposure.shape[1])]
    D = np.diag(pen * penalty * scale + 1e-9 * np.maximum(np.diag(XtX), 1e-12))
    b = np.linalg.solve(XtX + D, X.T @ y)
    k = controls.shape[1]
    return b[k + np.searchsorted(groups, group)] + b[k0 + np.searchsorted(creators, creator)] + b[k1:]


def _rho(est: np.ndarray, truth: np.ndarray) -> float:
    return float(stats.spearmanr(est, truth)[0])


def one_seed(seed: int) -> list[dict]:
    import warnings

    from analysis.attribution import attribute_followers
    from analysis.attribution._data import build_panel
    from analysis.simulate.core import FOLLOW_LAG_MAX, FOLLOW_LAG_MEAN, FOLLOW_LAG_SHAPE, _lag_pmf, build_core

    warnings.simplefilter("ignore")
    pmf = _lag_pmf(FOLLOW_LAG_SHAPE, FOLLOW_LAG_MEAN, FOLLOW_LAG_MAX)
    rows: dict[str, dict] = {}
    true_daily = None  # the creators' true daily views: the same at every noise level
    for noise in (1.0, 0.0):
        world = build_core(seed=seed, campaigns=3, days=365, baseline_noise=noise)
        tag = "" if noise == 1.0 else "_calm"
        if true_daily is None:
            true_daily = world.exposure.pivot_table(index="date", columns=["campaign_id", "creator_id"],
                                                    values="views", aggfunc="sum", fill_value=0)
        for cid, tr in world.truth["campaigns"].items():
            try:
                panel = build_panel(world.tables, cid)
            except ValueError:
                continue
            units = panel.units
            sel = (units["campaign_id"] == cid).to_numpy()
            ids = units.loc[sel, "creator_id"].to_numpy()
            tv = pd.Series(tr["followers"]["by_creator"], dtype=float).reindex(ids).fillna(0.0).to_numpy()
            if tv.sum() <= 0:
                continue
            big = tv / tv.sum() > 0.05
            if big.sum() < 3:
                continue
            row = rows.setdefault(cid, {"seed": seed, "campaign_id": cid, "n_big": int(big.sum())})
            fa = attribute_followers(world.tables, cid, n_boot=0, seed=seed)
            est = fa.by_creator.set_index("creator_id")["incremental"].reindex(ids).to_numpy()
            row[f"model{tag}"] = _rho(est[big], tv[big])
            ex = true_daily.reindex(index=panel.dates, fill_value=0)
            true_views = ex.reindex(columns=pd.MultiIndex.from_frame(units[["campaign_id", "creator_id"]]),
                                    fill_value=0).to_numpy(float) / 1000
            lagged = np.column_stack([np.convolve(true_views[:, j], pmf)[: len(true_views)]
                                      for j in range(true_views.shape[1])])
            reach = lagged[panel.window_mask()][:, sel].sum(axis=0)
            if noise == 1.0:
                row["views"] = _rho(panel.views[:, sel].sum(axis=0)[big], tv[big])
                # how alike the large creators' daily exposure curves are (median pairwise correlation)
                c = np.corrcoef(lagged[:, sel][:, big].T)
                row["overlap"] = float(np.nanmedian(c[np.triu_indices_from(c, 1)]))
            y = panel.brand["new_followers"].to_numpy(float)
            group = units["campaign_id"].to_numpy()
            for i, pen in enumerate(PENALTIES):
                rate = ridge_rates(y, panel.controls, lagged, group, pen)[sel]
                row[f"oracle{tag}_{i}"] = _rho((rate * reach)[big], tv[big])
            if noise == 1.0:
                creator = units["creator_id"].to_numpy()
                row["repeat_big"] = int(sum((creator == c).sum() > 1 for c in ids[big]))
                for i, pen in enumerate(PENALTIES):
                    for j, ratio in enumerate(SHARED_RATIOS):
                        rate = ridge_shared_rates(y, panel.controls, lagged, group, creator, pen, ratio)[sel]
                        row[f"shared_{i}_{j}"] = _rho((rate * reach)[big], tv[big])
    return list(rows.values())


def _share(x: pd.Series) -> float:
    return float((x.dropna() >= RHO_TARGET).mean())


def summarise(d: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    out = []

    def add(what: str, x: pd.Series, note: str = "") -> None:
        x = x.dropna()
        out.append({"ranking": what, "median": f"{x.median():.2f}", "mean": f"{x.mean():.2f}",
                    "share >= 0.8": f"{_share(x):.0%}", "campaigns": len(x), "note": note})

    meta = {}
    add("views alone (reference)", d["views"])
    add("the model", d["model"])
    add("the model, noise-free baseline", d["model_calm"], "same data sets, baseline noise removed")
    for tag, label in (("", ""), ("_calm", ", noise-free baseline")):
        cols = [f"oracle{tag}_{i}" for i in range(len(PENALTIES))]
        share = pd.Series({c: _share(d[c]) for c in cols})
        best = share.idxmax()
        meta[f"best_penalty{tag}"] = float(PENALTIES[cols.index(best)])
        meta[f"best_penalty_index{tag}"] = cols.index(best)
        add(f"oracle form, one penalty chosen in hindsight{label}", d[best],
            f"true views and follow lag; penalty {meta[f'best_penalty{tag}']:g}")
        add(f"oracle form, each campaign's best penalty in hindsight{label}", d[cols].max(axis=1),
            "loose upper bound (a maximum over 16 noisy values)")
        if not tag:
            cols = [c for c in d.columns if c.startswith("shared_")]
            share = pd.Series({c: _share(d[c]) for c in cols})
            best = share.idxmax()
            i, j = (int(v) for v in best.split("_")[1:])
            meta.update(shared_penalty=float(PENALTIES[i]), shared_ratio=float(SHARED_RATIOS[j]),
                        repeat_share=float((d["repeat_big"] > 0).mean()),
                        shared_gain=float(d[best].mean() - d[f"oracle_{meta['best_penalty_index']}"].mean()))
            add("oracle form, creator deviations shared across the brand's campaigns, penalties chosen in "
                "hindsight", d[best], f"penalty {PENALTIES[i]:g}, shared deviation's penalty x {SHARED_RATIOS[j]:g}")
    hi = d["overlap"] > d["overlap"].median()
    meta.update(overlap_median=float(d["overlap"].median()),
                model_low_overlap=float(d.loc[~hi, "model"].median()),
                model_high_overlap=float(d.loc[hi, "model"].median()),
                share_low_overlap=_share(d.loc[~hi, "model"]), share_high_overlap=_share(d.loc[hi, "model"]),
                calm_shift=float(d["model_calm"].mean() - d["model"].mean()),
                overlap_rho=float(stats.spearmanr(d["overlap"], d["model"], nan_policy="omit")[0]))
    return pd.DataFrame(out), meta


def _readings(table: pd.DataFrame, meta: dict) -> list[str]:
    """Plain-language readings of the study, worded from its measured figures."""
    share = dict(zip(table["ranking"], table["share >= 0.8"]))
    out = [f"* Removing the baseline's noise moves the model's mean correlation by {meta['calm_shift']:+.2f}."]
    gap = meta["model_high_overlap"] - meta["model_low_overlap"]
    how = "clearly worse" if gap < -0.1 else "clearly better" if gap > 0.1 else "about the same"
    out.append(
        f"* Campaigns whose large creators' daily exposure curves overlap more (median pairwise correlation above "
        f"{meta['overlap_median']:.2f}) rank {how}: median "
        f"{meta['model_high_overlap']:.2f} ({meta['share_high_overlap']:.0%} at 0.8 or above) against "
        f"{meta['model_low_overlap']:.2f} ({meta['share_low_overlap']:.0%}) where they overlap less (Spearman "
        f"correlation of overlap and the model's ranking over campaigns {meta['overlap_rho']:+.2f}).")
    med = dict(zip(table["ranking"], table["median"]))
    skey = next(k for k in med if k.startswith("oracle form, creator deviations shared"))
    out.append(
        f"* In {meta['repeat_share']:.0%} of the campaigns at least one large creator also works in another "
        f"campaign of the brand's year. Sharing each creator's deviation across those campaigns (a program-level "
        f"fit) moves the oracle's mean correlation by {meta['shared_gain']:+.2f} (median {med[skey]}, 0.8 or above "
        f"in {share[skey]}, with both penalties picked in hindsight)"
        + (": the creators' other campaigns add little; the baseline's noise (the noise-free rows above), not "
           "the overlap of co-posting creators, limits the ranking." if meta["shared_gain"] < 0.03 else
           ", so a program-level fit is worth building."))
    key = "oracle form, one penalty chosen in hindsight"
    m = float(med[key])
    verdict = ("beyond what even this oracle reaches" if m < 0.8 - 0.005 else
               "at the edge of what even this oracle reaches" if m <= 0.8 + 0.005 else None)
    out.append(
        f"* The oracle form, which knows the true views and follow lag and picks its penalty by looking at the "
        f"truth, reaches a median of {med[key]} and 0.8 or above in {share[key]} of campaigns (the model: "
        f"{med['the model']}, {share['the model']}; views alone: {med['views alone (reference)']}, "
        f"{share['views alone (reference)']}). "
        + (f"The ranking target (a median of 0.8) is thus {verdict}; an estimator that must estimate the lag and "
           "its penalty from the data should be expected to fall below it." if verdict else
           "The oracle clears the ranking target (a median of 0.8), so better modelling of this kind could too."))
    return out


def write_doc(table: pd.DataFrame, meta: dict, seconds: float, n_seeds: int, jobs: int) -> None:
    lines = [
        "# How well can creators be ranked? An oracle study",
        "",
        "Generated by `benchmarks/validation_ranking.py` (also run by `make validate`); do not edit by hand.",
        "",
        f"* {n_seeds} seeds of `analysis.simulate.core.build_core(campaigns=3, days=365)` (the same data sets as "
        "`docs/validation_attribution.md`); every campaign with at least three creators above 5% of its caused "
        "follows; Spearman correlation of each ranking with the creators' true caused follows (those creators only).",
        "* *Noise-free baseline*: the same seeds with `baseline_noise=0`: the brand's own new followers and "
        "profile views at their expected values, the campaign's caused follows unchanged.",
        "* *Oracle form*: not an analysis anyone can run. New followers regressed on every creator's true daily "
        "views (before reporting glitches) convolved with the simulator's true follow-lag distribution, the "
        "model's baseline controls, one slope per campaign and creator deviations ridge-penalised towards it. "
        "The penalty is chosen by looking at the truth: either the one value that ranks best over all campaigns, "
        "or each campaign's best value (an optimistic bound, since it is the maximum of 16 noisy correlations).",
        "* *Shared deviations*: the oracle form with one more deviation per creator, shared by all the "
        "campaigns it works in during the brand's year and ridge-penalised at "
        + ", ".join(f"{r:g}" for r in SHARED_RATIOS) + " times the per-campaign penalty; both penalties are "
        f"chosen in hindsight from {len(PENALTIES) * len(SHARED_RATIOS)} pairs, so this row is slightly more "
        "optimistic than the single-penalty oracle's.",
        f"* Wall time {seconds / 60:.1f} min on {jobs} processes.",
        "",
        "| ranking | median | mean | share >= 0.8 | campaigns | note |",
        "|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        lines.append(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} |")
    lines += [
        "",
        "Readings, computed from the same runs:",
        "",
        *_readings(table, meta),
        "",
    ]
    DOC.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="print the table only (no docs written)")
    a = ap.parse_args(argv)
    from tqdm import tqdm

    t0 = time.perf_counter()
    rows: list[dict] = []
    with ProcessPoolExecutor(a.jobs) as ex:
        for r in tqdm(ex.map(one_seed, range(1, a.seeds + 1)), total=a.seeds, desc="ranking", file=sys.stderr):
            rows += r
    table, meta = summarise(pd.DataFrame(rows))
    secs = time.perf_counter() - t0
    print(table.to_string(index=False))
    if not a.no_write:
        write_doc(table, meta, secs, a.seeds, a.jobs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
