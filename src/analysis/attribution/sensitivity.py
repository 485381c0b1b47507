"""How much the follower attribution moves under other reasonable choices."""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis.attribution._data import build_panel
from analysis.attribution.followers import _followers_from_panel, visit_weights
from analysis.progress import progress


def sensitivity(data: Any, campaign_id: str, *, n_boot: int = 0, seed: int = 0,
                baseline_days: tuple[int, ...] = (60, 120), leave_one_out: bool = True) -> pd.DataFrame:
    """Re-run the follower attribution under alternative choices.

    Scenarios: the main analysis; geometric-only and Weibull-only kernels; no creator pooling; plain
    views as exposure (no brand-profile-visit weights); the
    baseline fitted on ``baseline_days`` either side of the window only; and, for every creator, the
    campaign without that creator's posts (leave-one-creator-out: the total changes by roughly that
    creator's contribution if attributions are stable).

    Returns
    -------
    pandas.DataFrame
        ``scenario, detail, incremental, ci_low, ci_high, change, change_pct, kernel``.
    """
    panel = build_panel(data, campaign_id)
    y = panel.brand["new_followers"].to_numpy(float)
    w, info = visit_weights(panel)
    kw = dict(n_boot=n_boot, seed=seed, alpha=0.05, exposure=panel.views * w[None, :],
              exposure_relvar=info.get("weight_relvar"))
    jobs = [("main", "", dict(kernels=("geometric", "weibull"), pool=True)),
            ("kernel", "geometric only", dict(kernels=("geometric",), pool=True)),
            ("kernel", "weibull only", dict(kernels=("weibull",), pool=True)),
            ("pooling", "one response per campaign", dict(kernels=("geometric", "weibull"), pool=False)),
            ("exposure", "plain views (no profile-visit weights)",
             dict(kernels=("geometric", "weibull"), pool=True, exposure=panel.views, exposure_relvar=None))]
    jobs += [("baseline window", f"{d} days either side", dict(kernels=("geometric", "weibull"), pool=True,
                                                                baseline_days=d)) for d in baseline_days]
    if leave_one_out:
        crs = sorted(panel.units.loc[panel.units["campaign_id"] == panel.campaign_id, "creator_id"])
        if len(crs) > 1:
            jobs += [("leave one creator out", c, dict(kernels=("geometric", "weibull"), pool=True, drop_creator=c))
                     for c in crs]
    rows = []
    for scen, detail, extra in progress(jobs, desc="sensitivity"):
        fa = _followers_from_panel(panel, y, **{**kw, **extra})
        rows.append({"scenario": scen, "detail": detail, "incremental": fa.incremental, "ci_low": fa.ci_low,
                     "ci_high": fa.ci_high, "kernel": fa.kernel["label"]})
    out = pd.DataFrame(rows)
    main = out.loc[0, "incremental"]
    out["change"] = out["incremental"] - main
    out["change_pct"] = out["change"] / abs(main) if main else float("nan")
    return out
