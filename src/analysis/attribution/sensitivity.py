"""How much the follower attribution moves under other reasonable choices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis._blas import one_blas_thread
from analysis.attribution._data import build_panel
from analysis.attribution.followers import _creator_names, _f, _followers_from_panel, visit_weights
from analysis.htmlsafe import NotebookRepr
from analysis.progress import progress

#: An alternative whose 95% interval is this many times as wide as the main one's leaves the total
#: undetermined: the reading names it apart instead of quoting it in the range (a 60-day baseline
#: window around a 9-week window can leave trend and carry-over unidentified).
UNDETERMINED_WIDTH = 10.0

#: Columns of :meth:`SensitivityResult.summary`.
COLUMNS = ("scenario", "detail", "incremental", "ci_low", "ci_high", "change", "change_pct", "kernel",
           "attributed")


@dataclass(frozen=True)
class SensitivityResult(NotebookRepr):
    """The follower attribution re-run under alternative choices.

    Attributes
    ----------
    campaign_id : str
    table : pandas.DataFrame
        One row per scenario (the first is the main analysis): ``scenario, detail, incremental, ci_low,
        ci_high, change, change_pct, kernel``, and for leave-one-creator-out rows ``attributed``, the
        main analysis's attribution to the creator left out. Leaving a creator out drops its exposure
        from the model while its follows stay in the data: a total that hardly moves means they are still
        credited to the campaign's window; a falling total means the baseline absorbs them.
    handles : dict
        Creator id -> handle, for readings and plots.
    """

    campaign_id: str
    table: pd.DataFrame = field(repr=False)
    handles: dict = field(default_factory=dict, repr=False)

    @property
    def main(self) -> float:
        """The main analysis's incremental total."""
        return float(self.table.loc[0, "incremental"])

    def alternatives(self) -> pd.DataFrame:
        """The modelling alternatives (kernels, pooling, exposure, baseline windows), without the main row."""
        t = self.table
        return t[(t["scenario"] != "main") & (t["scenario"] != "leave one creator out")]

    def undetermined(self) -> pd.Series:
        """Per row, whether its interval is over :data:`UNDETERMINED_WIDTH` times as wide as the main one's."""
        width = self.table["ci_high"] - self.table["ci_low"]
        main = float(width.iloc[0])
        return (width > UNDETERMINED_WIDTH * main) if np.isfinite(main) and main > 0 else width != width

    def leave_one_out(self) -> pd.DataFrame:
        """The leave-one-creator-out rows."""
        return self.table[self.table["scenario"] == "leave one creator out"]

    def summary(self) -> pd.DataFrame:
        """The scenario table (a copy), creators named by handle."""
        t = self.table.copy()
        loo = t["scenario"] == "leave one creator out"
        t.loc[loo, "detail"] = [f"without {self.handles.get(c, c)}" for c in t.loc[loo, "detail"]]
        return t

    def reading(self) -> str:
        """How far the total moves under the alternatives, and whether leaving a creator out agrees."""
        alt = self.alternatives()
        poor = self.undetermined()
        shown, wild = alt[~poor[alt.index]], alt[poor[alt.index]]
        main = self.main
        main_row = self.table.loc[0]
        parts = []
        if len(shown) and main:
            lo, hi = shown.loc[shown["incremental"].idxmin()], shown.loc[shown["incremental"].idxmax()]
            parts.append(
                f"Under other reasonable choices the total ranges from {lo['incremental']:,.0f} "
                f"({lo['scenario']}: {lo['detail']}, {lo['change_pct']:+.0%}) to {hi['incremental']:,.0f} "
                f"({hi['scenario']}: {hi['detail']}, {hi['change_pct']:+.0%}) against {main:,.0f} in the main "
                "analysis")
            inside = int(((shown["incremental"] >= main_row["ci_low"])
                          & (shown["incremental"] <= main_row["ci_high"])).sum())
            parts[-1] += f"; {inside} of {len(shown)} alternatives fall inside the main 95% interval."
        for _, r in wild.iterrows():
            times = (r["ci_high"] - r["ci_low"]) / (main_row["ci_high"] - main_row["ci_low"])
            parts.append(
                f"With {r['scenario']}: {r['detail']} the data do not determine the total (95% interval "
                f"{r['ci_low']:,.0f} to {r['ci_high']:,.0f}, {times:,.0f} times as wide as the main one), so its "
                f"estimate of {r['incremental']:,.0f} is left out of that range.")
        loo = self.leave_one_out()
        if len(loo):
            big = loo.loc[loo["attributed"].idxmax()]
            h = self.handles.get(big["detail"], big["detail"])
            half = (main_row["ci_high"] - main_row["ci_low"]) / 2
            s = (f"Leaving {h}, the largest contributor ({big['attributed']:,.0f} attributed), out of the model "
                 f"(its follows stay in the data) changes the total by {big['change']:+,.0f}")
            if np.isfinite(big["change_pct"]):
                s += f" ({big['change_pct']:+.0%})"
            # The creator's follows are still credited to the campaign when the total loses less than half
            # of what the creator was attributed; losing more means the baseline took them over.
            change = float(big["change"])
            note = (f" (a change within the main interval's half-width, {half:,.0f})"
                    if abs(change) <= half else "")
            if abs(change) <= 0.5 * abs(big["attributed"]):
                s += ": its follows are still credited to the campaign, so the total does not rest on modelling it."
            elif change < 0:
                s += (": the baseline then absorbs them, so the total rests on that creator's exposure being "
                      f"modelled{note}; read it with this in mind.")
            else:
                s += f": without it the other creators' response rises; the total rests on how it is modelled{note}."
            parts.append(s)
        return " ".join(parts)

    def plot(self, ax=None):
        """Each scenario's total with its interval; the main estimate and interval as a reference band."""
        from analysis.plotting import axes

        t = self.summary()
        ax = axes(ax, figsize=(7, max(3, 0.3 * len(t))))
        y = np.arange(len(t))[::-1]
        row0 = t.iloc[0]
        ax.axvspan(row0["ci_low"], row0["ci_high"], color="C0", alpha=0.12, lw=0)
        ax.axvline(row0["incremental"], color="C0", lw=1)
        colors = ["C0" if s == "main" else ("C2" if s == "leave one creator out" else "C1") for s in t["scenario"]]
        poor = self.undetermined().to_numpy()
        ok = ~poor
        ax.errorbar(t["incremental"][ok], y[ok], xerr=[(t["incremental"] - t["ci_low"])[ok],
                                                      (t["ci_high"] - t["incremental"])[ok]],
                    fmt="none", ecolor="0.4", lw=0.8)
        ax.scatter(t["incremental"][ok], y[ok], c=[c for c, k in zip(colors, ok) if k], zorder=3, s=18)
        if poor.any():  # undetermined alternatives would squash the scale: named at the left edge instead
            lo, hi = float(t["ci_low"][ok].min()), float(t["ci_high"][ok].max())
            pad = 0.05 * (hi - lo)
            ax.set_xlim(lo - pad, hi + pad)
            for yy, (_, r) in zip(y[poor], t[poor].iterrows()):
                ax.annotate(f"off scale: {r['incremental']:,.0f} ({r['ci_low']:,.0f} to {r['ci_high']:,.0f})",
                            (lo - pad, yy), xytext=(4, 0), textcoords="offset points", va="center",
                            fontsize=8, color="C3")
        ax.set_yticks(y, [r["scenario"] if r["scenario"] == "main" else f"{r['scenario']}: {r['detail']}"
                          for _, r in t.iterrows()])
        ax.set_xlabel("incremental new followers")
        ax.set_title("Sensitivity: the total under alternative choices\n(band: main 95% interval)")
        from analysis.plotting import format_count_axis

        return format_count_axis(ax, "x", max_ticks=6)

    def to_dict(self) -> dict:
        """JSON-safe scenarios (``results.json`` ``followers.sensitivity``)."""
        rows = []
        for r in self.table.itertuples(index=False):
            rows.append({"scenario": r.scenario, "detail": r.detail, "incremental": _f(r.incremental),
                         "ci_low": _f(r.ci_low), "ci_high": _f(r.ci_high), "change": _f(r.change),
                         "change_pct": _f(r.change_pct), "kernel": r.kernel, "attributed": _f(r.attributed)})
        alt = self.alternatives()
        poor = self.undetermined()
        shown = alt[~poor[alt.index]]
        return {"scenarios": rows,
                "range": [_f(shown["incremental"].min()), _f(shown["incremental"].max())] if len(shown) else None,
                "undetermined": [f"{r.scenario}: {r.detail}" for r in alt[poor[alt.index]].itertuples()],
                "reading": self.reading()}


@one_blas_thread
def sensitivity(data: Any, campaign_id: str, *, n_boot: int = 0, seed: int = 0,
                baseline_days: tuple[int, ...] = (60, 120), leave_one_out: bool = True,
                view_curve: Any = None) -> SensitivityResult:
    """Re-run the follower attribution under alternative choices.

    Scenarios: the main analysis; geometric-only and Weibull-only kernels; no creator pooling; plain
    views as exposure (no brand-profile-visit weights); the
    baseline fitted on ``baseline_days`` either side of the window only; and, for every creator, the
    model without that creator's exposure (leave-one-creator-out; its follows stay in the data, so a
    stable total means they are still credited to the campaign, a falling one that the baseline absorbs
    them).

    Parameters
    ----------
    data : path, Dataset or dict of DataFrames
    campaign_id : str
    n_boot, seed
        Bootstrap replicates and seed of every run (the totals' intervals need no bootstrap).
    baseline_days : tuple of int
        Alternative baseline windows, days either side of the attribution window.
    leave_one_out : bool
        Add one run per creator without that creator's posts.
    view_curve : sequence of float, optional
        Cumulative share of a post's views by age in days (``F[0]`` on its first day) for posts whose
        snapshots give no curve of their own (one snapshot per post), in place of the published typical
        TikTok curve; for example :func:`~analysis.attribution.measured_view_curve` of an earlier
        campaign of the same brand exported daily. Unused where the posts' snapshots give a curve.

    Returns
    -------
    SensitivityResult
    """
    panel = build_panel(data, campaign_id, fallback_curve=view_curve)
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
    main_by = None
    for scen, detail, extra in progress(jobs, desc="sensitivity"):
        fa = _followers_from_panel(panel, y, **{**kw, **extra})
        if main_by is None:
            main_by = fa.by_creator.set_index("creator_id")["incremental"]
        rows.append({"scenario": scen, "detail": detail, "incremental": fa.incremental, "ci_low": fa.ci_low,
                     "ci_high": fa.ci_high, "kernel": fa.kernel["label"],
                     "attributed": float(main_by.get(detail, np.nan)) if scen == "leave one creator out" else np.nan})
    out = pd.DataFrame(rows)
    main = out.loc[0, "incremental"]
    out["change"] = out["incremental"] - main
    out["change_pct"] = out["change"] / abs(main) if main else float("nan")
    return SensitivityResult(campaign_id=panel.campaign_id, table=out[list(COLUMNS)], handles=_creator_names(panel))
