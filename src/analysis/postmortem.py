"""The post-mortem: one campaign's analysis written up as a short paper.

``notebooks/20_postmortem.ipynb`` narrates it: question and estimands, data, methods with their
assumptions, results with intervals, robustness, threats to validity, reproducibility and references.
It runs the same sections as the campaign report (:mod:`analysis.campaign`), so its ``results.json``
equals the report's for the same data and seed; this module adds what a paper needs beyond the report.

Every text here is built from numbers and from escaped values: handles, captions and other data
strings are shown through :mod:`analysis.htmlsafe`.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from analysis import __version__, config
from analysis.campaign import CampaignReport, Section, number_formats, run_all

__all__ = ["METHODS", "REFERENCES", "MethodNote", "abstract", "data_summary", "estimands", "methods",
           "reproducibility", "robustness", "run", "threats"]


@dataclass(frozen=True)
class MethodNote:
    """One analysis of the post-mortem: what it estimates, what it assumes and where it was validated."""

    key: str
    analysis: str
    method: str
    assumptions: str
    validation: str
    reference: str


#: The analyses a post-mortem can draw on. ``key`` is the lift design name (``results.json`` ``lift``)
#: or the report section that runs the analysis.
METHODS: tuple[MethodNote, ...] = (
    MethodNote("synthetic_control", "Geo holdout", "synthetic control on regional daily sales",
               "the treated regions' sales are a stable weighted mix of control regions' before and after the "
               "start; no spill-over into control regions", "docs/validation_lift.md",
               "Abadie, Diamond and Hainmueller (2010)"),
    MethodNote("did", "Geo holdout", "difference-in-differences on regional daily sales",
               "parallel trends of treated and control regions without the campaign; no spill-over",
               "docs/validation_did.md", "Angrist and Pischke (2009)"),
    MethodNote("causal_impact", "Geo holdout", "structural time series of the treated regions' sales (local "
               "level, regression on the control regions fitted by the Kalman filter), in the manner of "
               "CausalImpact", "the controls are unaffected by the campaign and their relation to the treated "
               "series is stable", "docs/validation_lift.md", "Brodersen et al. (2015)"),
    MethodNote("staggered_did", "Staggered rollout", "group-time average treatment effects with never-treated "
               "controls", "parallel trends per adoption cohort; no anticipation", "docs/validation_did.md",
               "Callaway and Sant'Anna (2021)"),
    MethodNote("survey", "Brand-lift survey", "difference of proportions, exposed vs control, Newcombe "
               "interval, Holm correction across questions", "random assignment to exposed and control; "
               "comparable response rates in both arms", "docs/validation_survey.md",
               "Newcombe (1998); Holm (1979)"),
    MethodNote("attribution", "Followers and orders caused", "baseline regression of the brand account's "
               "daily new followers (and daily orders) plus creator exposure through an estimated carry-over "
               "kernel, creators partially pooled; Newey-West errors calibrated on placebo campaigns",
               "the baseline's trend, weekday, own-posting and paid-media terms describe the days without "
               "the campaign; creators' follows arrive through their views with a common delay shape",
               "docs/validation_attribution.md; its distributed lag and HAC errors reproduce Stock and Watson "
               "(2007, section 15.1) on their orange-juice data", "Broadbent (1979); Newey and West (1987)"),
    MethodNote("sentiment", "Audience voice", "VADER with a slang and emoji lexicon, a sarcasm rule and a spam "
               "filter; Wilson intervals for shares", "comments are a sample of the audience; the lexicon "
               "reads the audience's language", "tests/test_sentiment.py", "Hutto and Gilbert (2014)"),
)

#: Works cited by the post-mortem, in the form printed under "References".
REFERENCES: tuple[str, ...] = (
    "Abadie, A., Diamond, A. and Hainmueller, J. (2010). Synthetic control methods for comparative case studies. "
    "Journal of the American Statistical Association 105(490), 493-505.",
    "Angrist, J. D. and Pischke, J.-S. (2009). Mostly Harmless Econometrics. Princeton University Press.",
    "Broadbent, S. (1979). One way TV advertisements work. Journal of the Market Research Society 21(3), 139-166.",
    "Brodersen, K. H., Gallusser, F., Koehler, J., Remy, N. and Scott, S. L. (2015). Inferring causal impact using "
    "Bayesian structural time-series models. Annals of Applied Statistics 9(1), 247-274.",
    "Callaway, B. and Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time periods. "
    "Journal of Econometrics 225(2), 200-230.",
    "Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian Journal of "
    "Statistics 6(2), 65-70.",
    "Hutto, C. J. and Gilbert, E. (2014). VADER: a parsimonious rule-based model for sentiment analysis of social "
    "media text. Proceedings of ICWSM 8(1), 216-225.",
    "Newcombe, R. G. (1998). Interval estimation for the difference between independent proportions. "
    "Statistics in Medicine 17(8), 873-890.",
    "Newey, W. K. and West, K. D. (1987). A simple, positive semi-definite, heteroskedasticity and "
    "autocorrelation consistent covariance matrix. Econometrica 55(3), 703-708.",
    "Stock, J. H. and Watson, M. W. (2007). Introduction to Econometrics, 2nd ed. Addison Wesley.",
)

#: Library versions recorded under "Reproducibility".
LIBRARIES = ("numpy", "pandas", "scipy", "statsmodels", "matplotlib", "seaborn", "vaderSentiment", "papermill")


def run(rep: CampaignReport) -> CampaignReport:
    """Run every section of the campaign report once (the post-mortem shows them and builds on them)."""
    run_all(rep)
    return rep


def _sec(rep: CampaignReport, key: str) -> Section | None:
    sec = rep.sections.get(key)
    return sec if sec is not None and sec.ok else None


def _from_geo(inc: dict) -> bool:
    """Whether a results.json incremental-orders entry was read from a geo holdout or regional roll-out."""
    return bool(inc.get("read_from"))


def _num(v: Any) -> bool:
    return v is not None and isinstance(v, (int, float, np.number)) and bool(np.isfinite(float(v)))


def abstract(rep: CampaignReport) -> str:
    """The abstract: objective, window and the main estimates with their intervals (plain text: display it
    with :func:`analysis.htmlsafe.paragraph`)."""
    res = rep.results()
    c = rep.campaign
    parts = [f"We analyse campaign {rep.campaign_id} of {c.get('brand', '')} ({c.get('objective', '')} objective, "
             f"{rep.start.date()} to {rep.end.date()})."]
    f = res.get("followers") or {}
    if _num(f.get("incremental")):
        parts.append(f"Against a counterfactual of the brand account without the campaign, it brought about "
                     f"{f['incremental']:,.0f} additional new followers (95% interval {f['ci_low']:,.0f} to "
                     f"{f['ci_high']:,.0f}) over the campaign and {_tail(f, rep)}.")
    inc = (res.get("conversions") or {}).get("incremental") or {}
    direct = (res.get("conversions") or {}).get("direct") or {}
    if _num(inc.get("orders")):
        by = f" (read from the {inc['read_from']} on the shop's orders)" if _from_geo(inc) else ""
        parts.append(f"Incremental orders{by} were {inc['orders']:,.0f} (95% interval {inc['ci_low']:,.0f} to "
                     f"{inc['ci_high']:,.0f}), against {direct.get('orders', 0):,} carrying its codes and links.")
    lifts = [e for e in res.get("lift") or [] if _num(e.get("effect"))]
    if lifts:
        up = sum(_num(e.get("ci_low")) and e["ci_low"] > 0 for e in lifts)
        down = sum(_num(e.get("ci_high")) and e["ci_high"] < 0 for e in lifts)
        said = f"{up} {'shows' if up == 1 else 'show'} an increase"
        if down:
            said += f" and {down} {'a decrease' if down == 1 else 'decreases'}"
        parts.append(f"Of {len(lifts)} lift estimate{'s' if len(lifts) != 1 else ''} from its experimental "
                     f"designs, {said} whose 95% interval excludes zero.")
    n = len(threats(rep))
    parts.append(f"Section 6 lists {n} threat{'s' if n != 1 else ''} to these conclusions.")
    return " ".join(parts)


def _tail(followers: dict, rep: CampaignReport) -> str:
    """"its 28-day tail": the days the follower window runs past the campaign's end."""
    end = (followers.get("window") or {}).get("end")
    if not end:
        return "a tail after it"
    days = (pd.Timestamp(end) - rep.end.normalize()).days
    return f"its {days}-day tail" if days > 0 else "no tail after it"


def _number(x: float, unit: str, rep: CampaignReport) -> str:
    if unit == "proportion":
        return f"{100 * x:+.1f}"
    return f"{x:,.0f}" if unit in ("followers", "orders") else rep.fmt(unit, x)


def _shown(v: Any, lo: Any, hi: Any, unit: str, rep: CampaignReport) -> str:
    """``"12,695 (10,209 to 15,180)"``, ``"+8.7 pts (+3.5 to +14.0)"`` for proportions; registry metrics
    (e.g. revenue) as the registry formats them."""
    if not _num(v):
        return "n/a"
    text = _number(v, unit, rep) + (" pts" if unit == "proportion" else "")
    if _num(lo) and _num(hi):
        text += f" ({_number(lo, unit, rep)} to {_number(hi, unit, rep)})"
    return text


def estimands(rep: CampaignReport) -> pd.DataFrame:
    """What is estimated, over which days, and the estimate with its interval.

    Returns
    -------
    pandas.DataFrame
        ``estimand, definition, days, unit, estimate, ci_low, ci_high`` and ``shown`` (the estimate and
        interval as text, in the estimand's unit).
    """
    from analysis.config import ATTRIBUTION_TAIL_DAYS

    res = rep.results()
    tail = f"{rep.start.date()} to {(rep.end + pd.Timedelta(days=ATTRIBUTION_TAIL_DAYS)).date()}"
    rows = []
    f = res.get("followers") or {}
    if _num(f.get("incremental")):
        rows.append({"estimand": "incremental brand followers", "unit": "followers", "days": tail,
                     "definition": "observed minus counterfactual daily new followers, summed",
                     "estimate": f["incremental"], "ci_low": f["ci_low"], "ci_high": f["ci_high"]})
    inc = (res.get("conversions") or {}).get("incremental") or {}
    if _num(inc.get("orders")):
        rows.append({"estimand": "incremental orders", "unit": "orders", "days": tail,
                     "definition": ("treatment regions' orders minus their counterfactual from the control "
                                    f"regions, summed; {inc['read_from']} ({inc['design_name']})" if _from_geo(inc)
                                    else "observed minus counterfactual daily orders, summed"),
                     "estimate": inc["orders"], "ci_low": inc["ci_low"], "ci_high": inc["ci_high"]})
    for e in res.get("lift") or []:
        survey = str(e["design"]).startswith("survey")
        rows.append({"estimand": f"lift ({e['design']}, {e['metric']})", "unit": "proportion" if survey
                     else str(e["metric"]), "days": f"{rep.start.date()} to {rep.end.date()}",
                     "definition": "difference of proportions, exposed minus control" if survey
                     else "treated minus counterfactual, per post-period day",
                     "estimate": e.get("effect"), "ci_low": e.get("ci_low"), "ci_high": e.get("ci_high")})
    out = pd.DataFrame(rows, columns=["estimand", "definition", "days", "unit", "estimate", "ci_low", "ci_high"])
    out["shown"] = [_shown(r.estimate, r.ci_low, r.ci_high, r.unit, rep) for r in out.itertuples()]
    return out


def data_summary(rep: CampaignReport) -> pd.DataFrame:
    """The processed tables: rows and the date span, with the SHA-256 of each raw input (first 12 digits)."""
    man = getattr(rep.data, "manifest", None)
    if man is None:
        return pd.DataFrame(columns=["table", "rows", "first_date", "last_date", "raw_input", "sha256"])
    by_table = {}
    for fname, info in sorted(man.inputs.items()):
        for t in str(info.get("table", "")).split(", "):
            by_table.setdefault(t, (fname, str(info.get("sha256", ""))[:12]))
    rows = []
    for name in sorted(man.tables):
        t = rep.data[name]
        dates = next((t[c] for c in ("date", "posted_date", "created_date", "start_date") if c in t.columns), None)
        raw, sha = by_table.get(name, ("(derived)", ""))
        rows.append({"table": name, "rows": int(man.tables[name]["rows"]),
                     "first_date": str(pd.Timestamp(dates.min()).date()) if dates is not None and len(t) else "",
                     "last_date": str(pd.Timestamp(dates.max()).date()) if dates is not None and len(t) else "",
                     "raw_input": raw, "sha256": sha})
    return pd.DataFrame(rows)


def methods(rep: CampaignReport) -> pd.DataFrame:
    """The analyses, their assumptions and validation, and whether this campaign's data support them."""
    res = rep.results()
    designs = {e["design"] for e in res.get("lift") or []}
    used = {"attribution": _sec(rep, "attribution") is not None, "sentiment": _sec(rep, "sentiment") is not None}
    rows = [{"analysis": m.analysis, "method": m.method, "assumptions": m.assumptions, "validated in": m.validation,
             "reference": m.reference, "used here": "yes" if used.get(m.key, m.key in designs) else "no"}
            for m in METHODS]
    return pd.DataFrame(rows)


def robustness(rep: CampaignReport) -> Section:
    """Sensitivity of the follower total, the carry-over kernel's selection and the placebo calibration."""
    from analysis.campaign import NotAvailable

    def body() -> Section:
        sec = _sec(rep, "attribution")
        if sec is None:
            raise NotAvailable("the follower attribution did not run")
        fa, sens = sec.result, rep.cache.get("sensitivity")
        k = fa.kernel
        cv = k["cv"].head(6).assign(chosen=lambda d: np.where(d["kernel"] == k["label"], "yes", ""))
        boot = pd.DataFrame(sorted(k["bootstrap_choices"].items(), key=lambda kv: -kv[1]),
                            columns=["kernel", "bootstrap replicates choosing it"])
        z = np.asarray(k["z"], float)
        cal = pd.DataFrame([{"placebo campaigns": int(k["placebos"]), "RMS placebo z": float(np.sqrt(np.mean(z ** 2)))
                             if len(z) else np.nan, "interval widening factor": float(k["calibration"])}])
        tables = [("Carry-over kernels by cross-validated error (the six best)", cv),
                  ("Kernel chosen in the bootstrap replicates", boot),
                  ("Placebo calibration of the intervals", cal)]
        from analysis.attribution.followers import WEAK_CALIBRATION_PHRASE

        reading = (f"The carry-over kernel {k['label']} had the lowest blocked cross-validation error (mean delay "
                   f"{k['mean_lag']:.1f} days). ")
        if not len(z):
            reading += (f"The data leave no room to shift the campaign to dates without one (placebo campaigns), so "
                        f"the Newey-West intervals are widened by the calibration's largest factor, "
                        f"{k['calibration']:.2f}, instead of a measured one.")
        else:
            reading += (f"Shifting the campaign to {int(k['placebos'])} dates without one gave placebo totals whose "
                        f"spread widened the Newey-West intervals by a factor of {k['calibration']:.2f} (a factor of "
                        "1 means the errors were already right)"
                        + (": too few to measure that factor, so it is the calibration's largest."
                           if any(WEAK_CALIBRATION_PHRASE in w for w in fa.warnings) else "."))
        plotters = []
        if sens is not None:
            tables.insert(0, ("The total under alternative choices", sens.summary()[
                ["scenario", "detail", "incremental", "ci_low", "ci_high", "change_pct"]]))
            reading = sens.reading() + "\n\n" + reading
            plotters.append(lambda ax: sens.plot(ax=ax))

        def placebos(ax=None):
            from analysis.plotting import axes, finish

            ax = axes(ax)
            ax.hist(z, bins=max(5, min(20, len(z) // 2)), color="#1f4e79", alpha=0.8)
            for q in (-1.96, 1.96):
                ax.axvline(q, color="#8c8c8c", ls="--", lw=1)
            return finish(ax, title="Placebo campaigns: standardised totals (dashed: +-1.96)", xlabel="z",
                          ylabel="placebo campaigns")

        if len(z):
            plotters.append(placebos)
        fm = {**number_formats(",.0f", "incremental", "ci_low", "ci_high"), **number_formats(",.1f", "cv_rmse"),
              **number_formats("+.1%", "change_pct"),
              **number_formats(".2f", "RMS placebo z", "interval widening factor")}
        return Section(key="robustness", title="Robustness", reading=reading, tables=tuple(tables), formatters=fm,
                       plotters=tuple(plotters), result=sens)

    try:  # not through rep.run: the post-mortem's results.json stays the report's, byte for byte
        return body()
    except NotAvailable as exc:
        return Section(key="robustness", title="Robustness", status="not available", reason=str(exc))


def threats(rep: CampaignReport) -> list[str]:
    """Threats to the validity of the conclusions, each one sentence (plain text; escape before display)."""
    out: list[str] = []
    sec = _sec(rep, "attribution")
    if sec is not None:
        fa = sec.result
        by = fa.by_creator
        if len(by) > 1 and "p_top" in by and np.isfinite(by["p_top"]).any():
            lead = by.sort_values("incremental", ascending=False).iloc[0]
            if lead["p_top"] < 0.8:
                out.append(f"Which creator brought the most is not settled: the leader {lead['handle']} has a "
                           f"{lead['p_top']:.0%} chance of truly being the top creator.")
        if fa.ci_low <= 0 <= fa.ci_high:
            out.append("The interval of the incremental followers includes zero.")
        elif fa.ci_high < 0:
            out.append("The interval of the incremental followers lies wholly below zero, which a campaign seldom "
                       "causes: noise, a baseline that misses something in the window, or an overlapping campaign "
                       "the model cannot separate from this one is the likelier reading.")
        from analysis.attribution._data import (ASSUMED_CURVE_PHRASE, LUMPED_PHRASE, NET_ONLY_WARNING,
                                                SUPPLIED_CURVE_PHRASE)

        lumped = [w for w in fa.warnings if LUMPED_PHRASE in w]
        if any(ASSUMED_CURVE_PHRASE in w for w in lumped):
            out.append("The post metrics hold too few snapshots to show how each post's views arrived over time: "
                       "their daily timing was assumed from a published typical TikTok view curve, not measured, "
                       "so the totals as well as the split between creators are unreliable.")
        elif any(SUPPLIED_CURVE_PHRASE in w for w in lumped):
            out.append("The post metrics hold too few snapshots to show how each post's views arrived over time: "
                       "their daily timing was assumed from a view curve measured on other data (view_curve_data), "
                       "so the totals and the split between creators are only as good as that curve's fit to "
                       "these posts.")
        elif lumped:
            out.append("Much of the campaign posts' views came in snapshots covering several days: their daily "
                       "timing was reconstructed, so the carry-over and the split between creators are approximate.")
        from analysis.attribution.followers import WEAK_CALIBRATION_PHRASE

        if any(WEAK_CALIBRATION_PHRASE in w for w in fa.warnings):
            out.append("The brand account's daily data are too short around the campaign to calibrate the "
                       "intervals on placebo windows: they are widened by the largest factor allowed instead of a "
                       "measured one, so they may be wider than the data need (a year of daily data calibrates "
                       "them).")
        if NET_ONLY_WARNING in fa.warnings:
            out.append("The brand's follower data give only the net daily change: the incremental followers are "
                       "net of same-day unfollows (an undercount), and their retention could not be measured.")
        for c in fa.collinear_overlaps:
            d = fa.overlap_split[c]
            out.append(f"Campaign {c} overlaps this one so closely that the data barely tell their exposures apart "
                       f"(correlation of this total with {c}'s credit {d['correlation']:.2f}): the split between the "
                       f"two is fragile, and their combined {d['combined']:,.0f} followers (interval "
                       f"{d['combined_ci_low']:,.0f} to {d['combined_ci_high']:,.0f}) is the better-determined "
                       "number.")
        sens = rep.cache.get("sensitivity")
        if sens is not None:
            alt = sens.alternatives()
            # an alternative disagrees when its own interval excludes the main estimate (an imprecise
            # alternative far from it, e.g. a baseline window with few campaign-free days, does not)
            outside = alt[(alt["ci_low"] > fa.incremental) | (alt["ci_high"] < fa.incremental)]
            if len(outside):
                one = len(outside) == 1
                out.append(f"{len(outside)} of {len(alt)} alternative modelling choices "
                           f"{'disagrees' if one else 'disagree'} with the follower total of "
                           f"{fa.incremental:,.0f} ({'its' if one else 'their'} 95% "
                           f"{'interval excludes' if one else 'intervals exclude'} it): "
                           + "; ".join(f"{r.scenario}: {r.detail}, {r.incremental:,.0f}"
                                       for r in outside.itertuples()) + ".")
            loo = sens.leave_one_out()
            if len(loo):
                half = (fa.ci_high - fa.ci_low) / 2
                big = loo.loc[loo["attributed"].idxmax()]
                if big["change"] < -half:
                    out.append(f"The follower total rests on modelling one creator's exposure: without "
                               f"{sens.handles.get(big['detail'], big['detail'])} the baseline absorbs "
                               f"{-big['change']:,.0f} of its follows.")
    lift = _sec(rep, "lift")
    res = rep.results()
    if lift is None:
        out.append("No experimental design (geo holdout, staggered rollout or brand-lift survey) is available, so "
                   "every causal estimate rests on the baseline model.")
    for e in res.get("lift") or []:
        if e.get("design") == "survey" and _num(e.get("ci_high")) and e["ci_high"] < 0:
            out.append(f"The brand-lift survey shows a significant drop for {e['metric']}, which points at the "
                       "survey's design (assignment or response rates) rather than at the campaign.")
    conv = res.get("conversions") or {}
    inc, model = conv.get("incremental") or {}, (conv.get("attribution") or {}).get("incremental_model") or {}
    if _from_geo(inc) and all(_num(d.get(k)) for d in (inc, model) for k in ("ci_low", "ci_high")) \
            and (model["ci_low"] > inc["ci_high"] or model["ci_high"] < inc["ci_low"]):
        out.append(f"The regional design and the baseline-and-exposure model disagree on incremental orders "
                   f"({inc['orders']:,.0f} against {model['orders']:,.0f}; the intervals do not overlap): either "
                   "the model's baseline misses something or the campaign reached buyers outside its regions.")
    leak = next((w for w in rep.warnings if w.startswith("possible code leakage")), None)
    if leak:
        out.append("Discount codes of " + leak.split(": ", 1)[-1] + " were used on days without the creator's "
                   "exposure (possible code leakage): direct attribution overstates them.")
    pers = (res.get("followers") or {}).get("persistence") or {}
    if pers:
        out.append("The persistence check (views of the brand's own videos after the campaign) has low power: it "
                   "detects a doubling in about half of campaigns and a 30% rise rarely.")
    dq = _sec(rep, "data_quality")
    if dq is not None and len(dq.tables) and len(dq.tables[0][1]) and (dq.tables[0][1]["count"] > 0).any():
        out.append("Some metric snapshots were corrected by the platform or missing; the analysis uses cleaned "
                   "values.")
    return list(dict.fromkeys(out))


def reproducibility(rep: CampaignReport) -> pd.DataFrame:
    """Package and library versions, the seed, the data set and the command that reproduces the run."""
    rows = [("analysis package", __version__), ("Python", platform.python_version()),
            ("seed", str(rep.params.seed)), ("campaign", rep.campaign_id)]
    for lib in LIBRARIES:
        try:
            rows.append((lib, metadata.version(lib)))
        except metadata.PackageNotFoundError:
            rows.append((lib, "not installed"))
    man = getattr(rep.data, "manifest", None)
    if man is not None:
        rows.append(("processed data written by", f"analysis {man.version}"))
    curve = rep.params.view_curve_data is not None
    if rep.params.seed == config.DEFAULT_SEED and not curve:  # the command line takes neither
        rows.append(("command line", f"python -m analysis postmortem --data DATA_DIR --campaign {rep.campaign_id} "
                                     "--out OUT_DIR"))
    rows.append(("reproduce with", f"papermill notebooks/20_postmortem.ipynb OUT.ipynb -p campaign_id "
                                   f"{rep.campaign_id} -p seed {rep.params.seed} -p data_dir DATA_DIR"
                                   + (" -p view_curve_data CURVE_DATA_DIR" if curve else "")))
    return pd.DataFrame(rows, columns=["item", "value"])
