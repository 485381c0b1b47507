"""Follower-growth attribution: incremental brand follows by campaign, creator and post."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis._blas import one_blas_thread
from analysis.attribution import _engine as E
from analysis.attribution._data import Panel, build_panel
from analysis.config import ATTRIBUTION_TAIL_DAYS, check_alpha
from analysis.htmlsafe import NotebookRepr


#: Warning added when the total's interval includes zero (the reading says so in words).
ZERO_INTERVAL_WARNING = "the interval of the total includes zero"
#: Start of the warning given when the whole interval of the total is below zero (the post-mortem looks for it).
BELOW_ZERO_PHRASE = "the interval of the total lies wholly below zero"


def _f(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def make_spec(panel: Panel, y: np.ndarray, *, pool: bool = True, drop_creator: str | None = None,
              fit_mask: np.ndarray | None = None, exposure: np.ndarray | None = None,
              exposure_relvar: np.ndarray | None = None) -> E.Spec:
    """The engine's inputs for the panel's target campaign and outcome ``y``.

    ``exposure`` (days x units, columns as ``panel.units``) replaces the daily views as the exposure;
    ``exposure_relvar`` (one value per unit) is the relative variance of an estimated exposure weight,
    passed on to the creators' intervals.
    """
    units = panel.units
    views = panel.views if exposure is None else np.asarray(exposure, float)
    relvar = None if exposure_relvar is None else np.asarray(exposure_relvar, float)
    if drop_creator is not None:
        keep = ~((units["campaign_id"] == panel.campaign_id) & (units["creator_id"] == drop_creator))
        units, views = units[keep].reset_index(drop=True), views[:, keep.to_numpy()]
        relvar = None if relvar is None else relvar[keep.to_numpy()]
    groups = sorted(units["campaign_id"].unique())
    gi = {g: i for i, g in enumerate(groups)}
    y = np.asarray(y, dtype=float).copy()
    if fit_mask is not None:
        y[~fit_mask] = np.nan
    spec = E.Spec(y=y, controls=panel.controls, views=views,
                  unit_group=units["campaign_id"].map(gi).to_numpy(), target=gi[panel.campaign_id],
                  window=panel.window_mask(), pool=pool, exposure_relvar=relvar)
    spec.unit_frame = units  # type: ignore[attr-defined]
    return spec


#: A negative credit to an overlapping campaign at least this share of the campaign's own total (in size) is
#: read as the two campaigns' exposures not being told apart.
OVERLAP_NEGATIVE_SHARE = 0.1
#: Correlation between this campaign's total and an overlapping campaign's credit at or below which the two are
#: read as not told apart (a collinear overlap: their combined total is the better-determined number).
OVERLAP_COLLINEAR_RHO = -0.6
#: Opening words of the warning of a collinear overlap.
COLLINEAR_PHRASE = "the data barely tell this campaign's exposure from that of the overlapping campaign"
#: Opening words of the warning that the data are too short to calibrate the intervals on placebo windows.
WEAK_CALIBRATION_PHRASE = "too few placebo windows fit in the data to calibrate the intervals"
#: Gap between a creator's modelled and TikTok-reported share of follows that the reading calls a difference.
SHARE_GAP = 0.05


def _creator_names(panel: Panel) -> dict[str, str]:
    if panel.creators is not None and {"creator_id", "handle"} <= set(panel.creators.columns):
        c = panel.creators
        return dict(zip(c["creator_id"].astype(str), c["handle"].astype(str)))
    return {}


def _ranking_caution(c: pd.DataFrame) -> list[str]:
    """A sentence on how settled the order of the leading creators is (``c``: :meth:`comparison`).

    Creators whose intervals overlap the leader's are named: the data do not say which of them brought
    more. The order of creators is the least certain part of an attribution from one account-level
    series (``docs/validation_attribution.md``).
    """
    if len(c) < 2 or not np.isfinite(c["ci_low"].iloc[0]):
        return []
    top = c.iloc[0]
    close = c.iloc[1:][c["ci_high"].iloc[1:] >= top["ci_low"]]
    if close.empty:
        return [f"{top['handle']}'s interval lies above every other creator's: the lead is clear."]
    names = ", ".join(close["handle"].astype(str).head(3)) + (f" and {len(close) - 3} more" if len(close) > 3 else "")
    return [f"The intervals of {names} overlap {top['handle']}'s, so the data do not settle which of them "
            "brought more (the order of creators is the least reliable part of this analysis; see the "
            "validation of creator rankings in docs/validation_attribution.md)."]


def _leader_sentence(c: pd.DataFrame) -> list[str]:
    """The chance that the leading creator truly brought the most, the runner-up's, and what it means.

    ``c`` is :meth:`FollowerAttribution.comparison`. Empty when the chances are not available (then
    :func:`_ranking_caution` speaks instead). The chances account for how far apart the estimates are
    relative to their uncertainty, which overlapping intervals alone overstate.
    """
    if c.empty or "p_top" not in c or not np.isfinite(c["p_top"].iloc[0]):
        return []
    p0 = float(c["p_top"].iloc[0])
    text = (f"Given the estimates and their uncertainty, the chance that {c['handle'].iloc[0]} truly brought "
            f"the most is {p0:.0%}")
    if len(c) > 1:
        j = int(np.argmax(c["p_top"].to_numpy()[1:])) + 1
        text += f" (next: {c['handle'].iloc[j]}, {c['p_top'].iloc[j]:.0%})"
    if p0 >= 0.9:
        return [text + ": the lead is clear."]
    verdict = "likely, but not settled" if p0 >= 0.5 else "the data do not settle who brought the most"
    return [f"{text}: {verdict} (the order of creators is the least reliable part of this analysis; "
            "docs/validation_attribution.md shows how often it is right and that these chances are calibrated)."]


def _and(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True)
class FollowerAttribution(NotebookRepr):
    """Incremental brand followers of one campaign, in total, by day and by creator.

    Attributes
    ----------
    campaign_id : str
    incremental, ci_low, ci_high : float
        Observed minus counterfactual new followers over the campaign window (start to end plus
        the attribution tail), and its ``1 - alpha`` interval (kernel-averaged HAC, placebo-calibrated).
    daily : pandas.DataFrame
        ``date, observed, counterfactual, incremental, ci_low, ci_high, cumulative, cum_ci_low,
        cum_ci_high, modelled_effect, other_campaigns, in_window`` over the brand account's whole
        history (cumulative within the window; ``other_campaigns`` is the modelled effect of the other
        campaigns' posts, part of the counterfactual).
    by_creator : pandas.DataFrame
        ``creator_id, handle, incremental, ci_low, ci_high, share, views, p_top, reported_follows,
        profile_view_share, follows_per_1000_views``; shares add up to one and ``incremental`` to the total.
        ``p_top`` is the chance that the creator truly brought the most (normal approximation of every
        creator's estimate and standard error; :func:`analysis.attribution._engine.leader_probability`),
        calibrated in ``docs/validation_attribution.md``.
        ``ci_low``/``ci_high`` are empirical-Bayes prediction intervals of the creator's true contribution:
        they include the bias of partial pooling and the uncertainty of the creator's profile-visit weight
        (``docs/methods.md``, Intervals).
    by_post : pandas.DataFrame
        Each creator's attribution split over their posts by adstocked exposure in the window.
    kernel : dict
        The carry-over kernel chosen by cross-validation (family, parameters, mean lag, half-life),
        the cross-validation table and how often each kernel won in the bootstrap.
    posts : pandas.DataFrame
        The campaign's posts (``post_id, creator_id, posted_date``).
    window : tuple of pandas.Timestamp
        Start and end (incl. tail) of the attribution window.
    warnings : tuple of str
    overlapping : dict
        Other campaigns of the brand account with posts exposed in this window, and the model's
        estimate of the outcome they caused inside it (``daily["other_campaigns"]`` day by day). It is
        part of the counterfactual (the brand without *this* campaign), not of :attr:`incremental`.
    overlap_split : dict
        Per overlapping campaign: ``credit`` (as in :attr:`overlapping`), ``correlation`` of that credit
        with :attr:`incremental` (from the same HAC covariance as the intervals), and ``combined`` with
        ``combined_ci_low`` / ``combined_ci_high``, the two together and their interval. A correlation at
        or below :data:`OVERLAP_COLLINEAR_RHO` means the data barely tell the two exposures apart: the
        split between them is fragile and the combined total is the better-determined number
        (``docs/methods.md``, Limitations).
    """

    campaign_id: str
    incremental: float
    ci_low: float
    ci_high: float
    daily: pd.DataFrame = field(repr=False)
    by_creator: pd.DataFrame = field(repr=False)
    by_post: pd.DataFrame = field(repr=False)
    kernel: dict = field(repr=False)
    posts: pd.DataFrame = field(repr=False)
    window: tuple[pd.Timestamp, pd.Timestamp] = field(repr=False)
    campaign_end: pd.Timestamp = field(repr=False)
    alpha: float = 0.05
    n_boot: int = 0
    outcome: str = "new followers"
    warnings: tuple[str, ...] = ()
    overlapping: dict = field(default_factory=dict, repr=False)
    overlap_split: dict = field(default_factory=dict, repr=False)
    nominal_window: tuple[pd.Timestamp, pd.Timestamp] | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ tables
    def summary(self) -> pd.DataFrame:
        """One tidy row: the total with its interval, the kernel and the persistence figures."""
        cf = self.daily.loc[self.daily["in_window"], "counterfactual"].sum()
        return pd.DataFrame([{
            "campaign_id": self.campaign_id, "outcome": self.outcome, "incremental": self.incremental,
            "ci_low": self.ci_low, "ci_high": self.ci_high,
            "relative_to_counterfactual": self.incremental / cf if cf > 0 else np.nan,
            "post_campaign_incremental": self.post_campaign_incremental,
            "kernel": self.kernel["label"], "kernel_half_life_days": self.kernel["half_life"],
            "effect_half_life_days": self.effect_half_life, "creators": len(self.by_creator),
            "window_start": self.window[0], "window_end": self.window[1], "n_boot": self.n_boot,
        }])

    @property
    def post_campaign_incremental(self) -> float:
        """Incremental follows arriving after the campaign's end (within the attribution tail)."""
        d = self.daily
        return float(d.loc[d["in_window"] & (d["date"] > self.campaign_end), "incremental"].sum())

    @property
    def effect_half_life(self) -> float | None:
        """Days after the campaign's end until the modelled daily effect halves (None if not reached)."""
        d = self.daily.set_index("date")["modelled_effect"]
        after = d[d.index >= self.campaign_end]
        if after.empty or after.iloc[0] <= 0:
            return None
        below = np.nonzero(after.to_numpy() <= after.iloc[0] / 2)[0]
        return float(below[0]) if len(below) else None

    def comparison(self) -> pd.DataFrame:
        """Modelled incremental follows per creator vs TikTok-reported follows vs profile-view share.

        ``reported_follows`` are follows of the creator's own account attributed by TikTok to the
        campaign posts; ``modelled_share`` and ``reported_share`` / ``profile_view_share`` put the
        three on one scale, and ``ratio_to_reported`` shows where the bases disagree.
        """
        c = self.by_creator
        rep = c["reported_follows"]
        out = pd.DataFrame({
            "creator_id": c["creator_id"], "handle": c["handle"],
            "modelled_incremental": c["incremental"], "ci_low": c["ci_low"], "ci_high": c["ci_high"],
            "reported_follows": rep,
            "modelled_share": c["share"],
            "reported_share": rep / rep.sum() if rep.sum() > 0 else np.nan,
            "profile_view_share": c["profile_view_share"],
            "p_top": c["p_top"],
        })
        out["ratio_to_reported"] = np.where(rep > 0, out["modelled_incremental"] / rep.where(rep > 0), np.nan)
        return out.sort_values("modelled_incremental", ascending=False).reset_index(drop=True)

    @property
    def counts_followers(self) -> bool:
        """Whether the outcome is the brand's followers: only then do TikTok's reported follows of the
        creators' posts (and the profile-view shares) speak to it; orders and revenue are read without them."""
        return "follower" in self.outcome

    def _repr_tables(self) -> list[tuple[str, pd.DataFrame]]:
        if not self.counts_followers:
            by = self.comparison().drop(columns=["reported_follows", "reported_share", "profile_view_share",
                                                 "ratio_to_reported"])
            return [("Incremental " + self.outcome, self.summary()), ("By creator", by)]
        return [("Incremental " + self.outcome, self.summary()),
                ("By creator: modelled vs TikTok-reported", self.comparison())]

    def _window_words(self) -> str:
        """``campaign plus 28-day tail``, or how the brand account's data cut that window short."""
        nominal = self.nominal_window or self.window
        tail = (nominal[1] - self.campaign_end).days
        if tuple(nominal) == tuple(self.window):
            return f"campaign plus {tail}-day tail"
        return (f"the brand account's data cover only these days of the campaign plus its {tail}-day tail, "
                f"{nominal[0]:%d %b %Y} to {nominal[1]:%d %b %Y}: a partial count")

    def _overlap_sentences(self) -> list[str]:
        """What the other campaigns live in this window account for (they sit in the counterfactual)."""
        ov = {c: v for c, v in self.overlapping.items() if abs(v) >= 0.5}
        if not ov:
            return []
        names = sorted(ov, key=lambda c: (-abs(ov[c]), c))
        who = ("Campaign " if len(names) == 1 else "Campaigns ") + _and(names)
        credit = _and([f"{c} about {ov[c]:,.0f}" for c in names])
        out = [f"{who} also had posts live in this window; the model credits {credit} of the window's "
               f"{self.outcome}, which belong to the counterfactual (the brand without this campaign), not to this "
               "campaign's total. Where campaigns overlap, the split between them is less certain than either "
               "total (docs/methods.md, Limitations)."]
        neg = [c for c in names if ov[c] < 0 and abs(ov[c]) >= OVERLAP_NEGATIVE_SHARE * abs(self.incremental)]
        if neg:
            out.append(f"A negative credit ({_and(neg)}) says the model cannot separate that exposure from this "
                       "campaign's: what one gains the other loses, so this campaign's total is unreliable too.")
        lvl = int(round(100 * (1 - self.alpha)))
        for c in self.collinear_overlaps:
            d = self.overlap_split[c]
            out.append(f"This campaign's total and {c}'s credit move against each other (correlation "
                       f"{d['correlation']:.2f}): the data barely tell the two campaigns' exposures apart, so how the "
                       f"{self.outcome} divide between them is fragile. Together they brought about "
                       f"{d['combined']:,.0f} ({lvl}% interval {d['combined_ci_low']:,.0f} to "
                       f"{d['combined_ci_high']:,.0f}), the better-determined number.")
        return out

    @property
    def collinear_overlaps(self) -> list[str]:
        """Overlapping campaigns whose credit correlates with this campaign's total at or below
        :data:`OVERLAP_COLLINEAR_RHO` (most negative first)."""
        return _collinear(self.overlap_split, self.overlapping)

    def reading(self) -> list[str]:
        """Plain-language sentences a report can print (the caveats are in :attr:`warnings`)."""
        return [sentence for para in self.paragraphs() for sentence in para]

    def paragraphs(self) -> list[list[str]]:
        """:meth:`reading`'s sentences grouped into paragraphs: the total, the creators, and (for followers
        only) the comparison with TikTok-reported follows."""
        lvl = int(round(100 * (1 - self.alpha)))
        paras: list[list[str]] = []
        out = [f"The campaign brought about {self.incremental:,.0f} additional {self.outcome} "
               f"({lvl}% interval {self.ci_low:,.0f} to {self.ci_high:,.0f}) between "
               f"{self.window[0]:%d %b %Y} and {self.window[1]:%d %b %Y} ({self._window_words()}), against what "
               "the baseline predicts without it."]
        if self.ci_low <= 0 <= self.ci_high:
            out.append("The interval includes zero: the data cannot rule out that the campaign added no "
                       f"{self.outcome}.")
        elif self.ci_high < 0:
            out.append(f"The interval lies wholly below zero: taken at face value the campaign cost the brand "
                       f"{self.outcome}. Campaigns seldom do, so this more likely reflects noise (about one or two "
                       "in a hundred campaigns with no effect at all show it), a baseline that misses something in "
                       "this window, or an overlapping campaign the model cannot tell apart from this one: read the "
                       "total as unreliable.")
        k = self.kernel
        out.append(f"Responses follow exposure with a {k['family']} carry-over (mean delay {k['mean_lag']:.1f} "
                   f"days, chosen by out-of-sample fit); {self.post_campaign_incremental:,.0f} of the "
                   f"incremental {self.outcome} arrived after the campaign ended.")
        out += self._overlap_sentences()
        paras.append(out)
        c = self.comparison()
        if len(c) == 1:
            paras += self._single_creator(c.iloc[0])
        elif len(c):
            top = c.iloc[0]
            out = []
            paras.append(out)
            out.append(f"The largest contribution is {top['handle']} with {top['modelled_incremental']:,.0f} "
                       f"({100 * top['modelled_share']:.0f}% of the total).")
            out += _leader_sentence(c) or _ranking_caution(c)
            if self.counts_followers and np.isfinite(c["reported_share"]).any():
                diff = (c["modelled_share"] - c["reported_share"]).abs()
                j = int(diff.idxmax())
                pair = f"{100 * c.loc[j, 'modelled_share']:.0f}% vs {100 * c.loc[j, 'reported_share']:.0f}%"
                lead = (f"Modelled shares differ most from TikTok-reported follows for {c.loc[j, 'handle']} ({pair})"
                        if diff[j] >= SHARE_GAP else
                        f"Modelled shares agree with TikTok-reported follows within {100 * SHARE_GAP:.0f} points for "
                        f"every creator (the largest gap: {c.loc[j, 'handle']}, {pair})")
                paras.append([
                    f"{lead}: reported follows count follows of the creator's own account on the day TikTok logs "
                    "them, while the model counts follows of the brand account above the baseline, "
                    "including delayed ones; creators whose audiences follow them but not the brand (or "
                    "the reverse) differ most."])
        return paras

    def _single_creator(self, top: pd.Series) -> list[list[str]]:
        """The creator paragraphs of a campaign with one creator: no ranking, counts instead of shares."""
        out = [[f"{top['handle']} is the campaign's only creator: all {top['modelled_incremental']:,.0f} incremental "
                f"{self.outcome} (interval above) are theirs, and there is no ranking to read."]]
        if self.counts_followers and np.isfinite(top["reported_follows"]) and top["reported_follows"] > 0:
            out.append([
                f"TikTok reports {top['reported_follows']:,.0f} follows of {top['handle']}'s own account from the "
                f"campaign posts, against the model's {top['modelled_incremental']:,.0f} new followers of the brand "
                "account: the two count different things (the creator's follows on the day TikTok logs them; the "
                "brand's follows above the baseline, including delayed ones), so only their ratio "
                f"({top['ratio_to_reported']:.2f} brand followers per reported follow) is worth comparing across "
                "campaigns."])
        return out

    def to_dict(self) -> dict:
        """The ``results.json`` ``followers`` block (CONTRACT section 3), JSON-safe, with extra keys."""
        return {
            "incremental": _f(self.incremental), "ci_low": _f(self.ci_low), "ci_high": _f(self.ci_high),
            "by_creator": {str(r.creator_id): {"incremental": _f(r.incremental), "ci_low": _f(r.ci_low),
                                               "ci_high": _f(r.ci_high), "share": _f(r.share),
                                               "p_top": _f(r.p_top)}
                           for r in self.by_creator.itertuples()},
            "kernel": {"family": self.kernel["family"], "label": self.kernel["label"],
                       "mean_lag_days": _f(self.kernel["mean_lag"]),
                       "half_life_days": _f(self.kernel["half_life"])},
            "post_campaign_incremental": _f(self.post_campaign_incremental),
            "overlapping_campaigns": {c: _f(v) for c, v in sorted(self.overlapping.items())},
            "overlap_split": {c: {k: _f(v) for k, v in d.items()} for c, d in sorted(self.overlap_split.items())},
            "effect_half_life_days": _f(self.effect_half_life),
            "window": {"start": self.window[0].date().isoformat(), "end": self.window[1].date().isoformat()},
            "alpha": _f(self.alpha), "n_boot": int(self.n_boot), "warnings": list(self.warnings),
        }

    # ------------------------------------------------------------------ plots
    def plot(self, ax=None):
        """Observed vs counterfactual daily values with the interval band and post markers."""
        from analysis.plotting import axes, mark_window

        ax = axes(ax, figsize=(9, 4))
        d = self.daily
        lo, hi = self.window[0] - pd.Timedelta(days=60), self.window[1] + pd.Timedelta(days=30)
        d = d[(d["date"] >= lo) & (d["date"] <= hi)]
        ax.plot(d["date"], d["observed"], color="0.3", lw=1, label="observed")
        ax.plot(d["date"], d["counterfactual"], color="C0", lw=1.5, label="counterfactual (without this campaign)")
        if "other_campaigns" in d and (d["other_campaigns"].abs() >= 0.5).any():
            ax.plot(d["date"], d["counterfactual"] - d["other_campaigns"], color="C0", lw=1, ls="--",
                    label="without any campaign")
        band = d["in_window"]
        ax.fill_between(d.loc[band, "date"], d.loc[band, "observed"] - d.loc[band, "ci_high"],
                        d.loc[band, "observed"] - d.loc[band, "ci_low"], color="C0", alpha=0.2,
                        label=f"{int(round(100 * (1 - self.alpha)))}% interval")
        mark_window(ax, self.window[0], self.campaign_end, label="campaign")
        for pdate in self.posts["posted_date"].unique():
            ax.axvline(pdate, color="C3", lw=0.5, alpha=0.4)
        ax.set_ylabel(self.outcome + " per day")
        ax.set_title(f"{self.campaign_id}: {self.outcome}, observed vs counterfactual (red ticks: posts)")
        # a boxed legend over the quiet days
        ax.legend(loc="best", fontsize=8, frameon=True, framealpha=0.9, edgecolor="0.8")
        from analysis.plotting import date_axis, format_count_axis

        return date_axis(format_count_axis(ax))

    def plot_cumulative(self, ax=None):
        """Cumulative incremental over the window with its interval."""
        from analysis.plotting import axes

        ax = axes(ax, figsize=(8, 4))
        d = self.daily[self.daily["in_window"]]
        ax.plot(d["date"], d["cumulative"], color="C0", label="cumulative incremental")
        ax.fill_between(d["date"], d["cum_ci_low"], d["cum_ci_high"], color="C0", alpha=0.2)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.axvline(self.campaign_end, color="C1", ls="--", lw=1, label="campaign end")
        ax.set_ylabel(f"cumulative incremental {self.outcome}")
        ax.set_title(f"{self.campaign_id}: cumulative incremental {self.outcome} "
                     f"({int(round(100 * (1 - self.alpha)))}% interval)")
        ax.legend(loc="upper left", fontsize=8)
        from analysis.plotting import date_axis, format_count_axis

        return date_axis(format_count_axis(ax))

    def plot_creators(self, ax=None):
        """Bar chart of incremental per creator with intervals; labels carry the chance of being the top (>= 1%)."""
        from analysis.plotting import axes

        c = self.by_creator.sort_values("incremental")
        ax = axes(ax, figsize=(7, max(3, 0.28 * len(c))))
        y = np.arange(len(c))
        ax.barh(y, c["incremental"], color="C0", alpha=0.8)
        ax.errorbar(c["incremental"], y, xerr=[c["incremental"] - c["ci_low"], c["ci_high"] - c["incremental"]],
                    fmt="none", ecolor="0.2", lw=0.8)
        p = c["p_top"] if "p_top" in c else pd.Series(np.nan, index=c.index)
        ax.set_yticks(y, [f"{h}  ({q:.0%})" if np.isfinite(q) and q >= 0.01 else str(h)
                          for h, q in zip(c["handle"], p)])
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set_xlabel(f"incremental {self.outcome}")
        ax.set_title("Attribution by creator (partially pooled)"
                     + ("\n(in brackets: chance of being the top creator)" if np.isfinite(p).any() else ""))
        from analysis.plotting import format_count_axis

        return format_count_axis(ax, "x", max_ticks=6)


def _target_views(panel: Panel, tunits: pd.DataFrame) -> np.ndarray:
    """Daily views (thousands) of the given (campaign, creator) units."""
    key = pd.MultiIndex.from_frame(panel.units[["campaign_id", "creator_id"]])
    j = key.get_indexer(pd.MultiIndex.from_frame(tunits[["campaign_id", "creator_id"]]))
    return panel.views[:, j]


def visit_weights(panel: Panel, *, bounds: tuple[float, float] = (0.2, 5.0)) -> tuple[np.ndarray, dict]:
    """Relative brand-profile-visit rate of every exposure unit, from the brand's daily profile views.

    First stage of the funnel views -> brand profile visits -> follows: the brand account's daily
    ``profile_views`` are regressed on the same baseline and on every unit's same-day views (no lag
    beyond a short carry-over, creators partially pooled towards their campaign's mean, penalty by
    blocked cross-validation). A unit's weight is its visits per 1,000 views over its campaign's
    views-weighted mean, clipped to ``bounds``; the follower model then uses views x weight (visits,
    up to a campaign constant) as exposure. All weights are 1 when profile views are missing or show
    no response to campaign views.
    """
    m = panel.views.shape[1]
    ones = np.ones(m)
    info = {"used": False}
    if "profile_views" not in panel.brand.columns:
        return ones, info
    P = pd.to_numeric(panel.brand["profile_views"], errors="coerce").to_numpy(float)
    if np.isfinite(P).sum() < panel.controls.shape[1] + 30 or np.nanstd(P) == 0:
        return ones, info
    spec = make_spec(panel, P)
    kernels = [E.geometric(0.0), E.geometric(0.3), E.geometric(0.5)]
    try:
        res = E.run(spec, kernels=kernels, n_boot=0, calibrate=False)
    except (ValueError, np.linalg.LinAlgError):
        return ones, info
    rate = E.unit_coefs(spec, res.beta)
    var = E.coef_variance(spec, res.best, spec.block)
    w = ones.copy()
    relvar = np.zeros(m)
    for g in spec.groups:
        sel = spec.unit_group == g
        v = panel.views[:, sel].sum(axis=0)
        mean = float(np.dot(rate[sel], v) / v.sum()) if v.sum() > 0 else 0.0
        if mean > 0:
            w[sel] = np.clip(rate[sel] / mean, *bounds)
            # relative variance of the weight (delta method), at most 1 (a 100% relative error)
            relvar[sel] = np.minimum(var[sel] / (w[sel] * mean) ** 2, 1.0)
    info = {"used": True, "visits_per_1000_views": rate, "visits_se": np.sqrt(var), "weight_relvar": relvar}
    return w, info


def assemble(panel: Panel, res: E.EngineResult, *, y: np.ndarray, alpha: float, n_boot: int,
             outcome: str, warnings: list[str]) -> dict:
    """Common pieces of follower and order attributions from one engine run."""
    spec = res.spec
    units = spec.unit_frame  # type: ignore[attr-defined]
    tu = spec.tunits
    W = spec.window
    eff = res.effect_daily.sum(axis=1)
    oth = E.other_units(spec)
    od = res.other_daily if res.other_daily is not None else np.zeros((len(eff), len(oth)))
    other = od.sum(axis=1)
    # the other campaigns' modelled effect inside this window, per campaign (overlapping campaigns)
    ocid = units["campaign_id"].to_numpy()[oth]
    wsum = od[W].sum(axis=0)
    overlapping = {str(c): float(wsum[ocid == c].sum()) for c in sorted(set(ocid))
                   if np.abs(od[W][:, ocid == c]).sum() > 0.5}
    observed = np.where(spec.ok, y, np.nan)
    cf = res.fitted - eff
    inc = np.where(spec.ok, observed - cf, eff)
    zq = float(stats.norm.ppf(1 - alpha / 2))
    # bands: the kernel-averaged, placebo-calibrated HAC standard errors of the total, day by day
    dse = res.daily_se if res.daily_se is not None else np.full(len(inc), np.nan)
    cse = res.cum_se if res.cum_se is not None else np.full(len(inc), np.nan)
    lo, hi = inc - zq * dse, inc + zq * dse
    cum = np.where(W, np.cumsum(np.where(W, inc, 0.0)), np.nan)
    clo, chi = cum - zq * cse, cum + zq * cse
    daily = pd.DataFrame({"date": panel.dates, "observed": observed, "counterfactual": cf, "incremental": inc,
                          "ci_low": lo, "ci_high": hi, "cumulative": cum,
                          "cum_ci_low": np.where(W, clo, np.nan), "cum_ci_high": np.where(W, chi, np.nan),
                          "modelled_effect": eff, "other_campaigns": other, "in_window": W})
    tlo, thi = res.total - zq * res.total_se, res.total + zq * res.total_se
    ulo, uhi = res.unit_total - zq * res.unit_se, res.unit_total + zq * res.unit_se
    tunits = units.iloc[tu].reset_index(drop=True)
    names = _creator_names(panel)
    total = res.total
    by = pd.DataFrame({"creator_id": tunits["creator_id"].to_numpy(),
                       "handle": [names.get(c, c) for c in tunits["creator_id"]],
                       "incremental": res.unit_total, "ci_low": ulo, "ci_high": uhi,
                       "share": res.unit_total / total if total != 0 else np.nan,
                       "views": _target_views(panel, tunits)[W].sum(axis=0) * 1000.0,
                       "p_top": E.leader_probability(res.unit_total, res.unit_se)
                       if res.unit_se is not None else np.nan})
    by["per_1000_views"] = np.where(by["views"] > 0, 1000.0 * by["incremental"] / by["views"].where(by["views"] > 0),
                                    np.nan)
    # per post: split each creator's total by the post's adstocked exposure in the window
    posts = panel.posts[panel.posts["campaign_id"] == panel.campaign_id]
    pcols = np.nonzero((panel.posts["campaign_id"] == panel.campaign_id).to_numpy())[0]
    pexp = E.adstock(panel.post_views[:, pcols], res.best.kernel)[W].sum(axis=0)
    bp = posts[["post_id", "creator_id", "posted_date"]].reset_index(drop=True).assign(exposure=pexp)
    csum = bp.groupby("creator_id")["exposure"].transform("sum")
    cinc = bp["creator_id"].map(by.set_index("creator_id")["incremental"])
    bp["incremental"] = np.where(csum > 0, cinc * bp["exposure"] / csum.where(csum > 0), 0.0)
    k = res.best.kernel
    kernel = {"family": k.family, "params": dict(k.params), "label": k.label, "mean_lag": k.mean_lag,
              "median_lag": k.median_lag, "half_life": k.half_life, "lag_weights": k.weights,
              "penalty": res.lam,
              "cv": pd.DataFrame({"kernel": [f.kernel.label for f in res.fits],
                                  "family": [f.kernel.family for f in res.fits],
                                  "cv_rmse": [float(np.sqrt(f.cv_mse)) for f in res.fits]}),
              "bootstrap_choices": dict(res.boot_kernel_counts),
              "weights": {f.kernel.label: float(w) for f, w in zip(res.fits, res.kernel_weights) if w > 0},
              "se": float(res.total_se), "calibration": float(res.calibration),
              "placebos": int(len(res.placebo_z)), "z": res.placebo_z}
    return dict(daily=daily, by=by, by_post=bp, kernel=kernel, total=total, lo=float(tlo), hi=float(thi),
                overlapping=overlapping, overlap_split=_overlap_split(res, units, overlapping, zq),
                posts=posts[["post_id", "creator_id", "posted_date"]].reset_index(drop=True))


def _collinear(split: dict, overlapping: dict) -> list[str]:
    """Campaigns of ``split`` (:attr:`FollowerAttribution.overlap_split`) credited in ``overlapping`` whose
    correlation is at or below :data:`OVERLAP_COLLINEAR_RHO`, most negative first."""
    out = [c for c, d in split.items() if c in overlapping and d.get("correlation") is not None
           and np.isfinite(d["correlation"]) and d["correlation"] <= OVERLAP_COLLINEAR_RHO]
    return sorted(out, key=lambda c: (split[c]["correlation"], c))


def _overlap_split(res: E.EngineResult, units: pd.DataFrame, overlapping: dict, zq: float) -> dict:
    """Each overlapping campaign's credit, its correlation with the total and the two combined (see
    :attr:`FollowerAttribution.overlap_split`)."""
    if res.other_groups is None:
        return {}
    names = sorted(units["campaign_id"].unique())  # the engine's campaign indices (``make_spec``)
    out = {}
    for j, g in enumerate(res.other_groups):
        cid = str(names[int(g)])
        if cid not in overlapping:
            continue
        se_t, se_o, cov = float(res.total_se), float(res.other_se[j]), float(res.other_total_cov[j])
        rho = cov / (se_t * se_o) if se_t > 0 and se_o > 0 else float("nan")
        comb = float(res.total + res.other_credit[j])
        se = float(np.sqrt(max(se_t ** 2 + se_o ** 2 + 2 * cov, 0.0)))
        out[cid] = {"credit": float(res.other_credit[j]), "correlation": rho, "combined": comb,
                    "combined_ci_low": comb - zq * se, "combined_ci_high": comb + zq * se}
    return out


@one_blas_thread
def attribute_followers(data: Any, campaign_id: str, *, n_boot: int = 1000, seed: int = 0,
                        alpha: float = 0.05, kernels: tuple[str, ...] = ("geometric", "weibull"),
                        pool: bool = True, baseline_days: int | None = None,
                        tail_days: int = ATTRIBUTION_TAIL_DAYS, funnel: bool = True,
                        view_curve: Any = None) -> FollowerAttribution:
    """Attribute the brand account's new followers to a campaign, its creators and posts.

    A baseline regression (trend, day of week, the brand's own video views, paid impressions) and every
    campaign's creator exposure (daily views through a carry-over kernel chosen by blocked
    cross-validation, creator response partially pooled towards the campaign mean) are fitted jointly
    on the brand account's whole history; incremental = observed minus the counterfactual without the
    campaign, over the campaign plus ``tail_days``. See ``docs/methods.md``.

    Parameters
    ----------
    data : path, Dataset or dict of DataFrames
        Processed directory, ``analysis.data.Dataset`` or tables by name (processed or raw layout).
    campaign_id : str
        The campaign to attribute.
    n_boot : int
        Replicates of the kernel-choice diagnostic (block wild bootstrap with kernel re-selection; how often
        each kernel wins is ``kernel["bootstrap_choices"]``); 0 skips it. The intervals and daily bands do
        not depend on it.
    seed : int
        Seed of the bootstrap.
    alpha : float
        One minus the interval's coverage.
    kernels : tuple of str
        Kernel families to compare (``"geometric"``, ``"weibull"``).
    pool : bool
        Partially pool creators (default); ``False`` fits one response per campaign, splitting it by exposure.
    baseline_days : int, optional
        Fit on this many days either side of the attribution window only (default: the whole history).
    tail_days : int
        Days after the campaign's end that still count.
    funnel : bool
        Weight each creator's views by their brand-profile-visit rate estimated from the brand's daily
        profile views (:func:`visit_weights`; default), so exposure is measured in visits, the step
        before a follow. ``False`` uses plain views.
    view_curve : sequence of float, optional
        Cumulative share of a post's views by age in days (``F[0]`` on its first day) for posts whose
        snapshots give no curve of their own (one snapshot per post), in place of the published typical
        TikTok curve; for example :func:`~analysis.attribution.measured_view_curve` of an earlier
        campaign of the same brand exported daily. Unused where the posts' snapshots give a curve.

    Returns
    -------
    FollowerAttribution
    """
    check_alpha(alpha)
    if n_boot < 0:
        raise ValueError(f"n_boot must be 0 or more (got {n_boot})")
    panel = build_panel(data, campaign_id, tail_days=tail_days, fallback_curve=view_curve)
    y = panel.brand["new_followers"].to_numpy(float)
    w, info = visit_weights(panel) if funnel else (np.ones(panel.views.shape[1]), {})
    return _followers_from_panel(panel, y, n_boot=n_boot, seed=seed, alpha=alpha, kernels=kernels, pool=pool,
                                 baseline_days=baseline_days, exposure=panel.views * w[None, :],
                                 exposure_relvar=info.get("weight_relvar"))


def _weak_calibration_warning(res: E.EngineResult, outcome: str) -> str:
    """The warning of :func:`analysis.attribution._engine.weak_calibration`, with the days it would take."""
    W = res.spec.window
    idx = np.nonzero(W)[0]
    lw = int(idx[-1] - idx[0] + 1)
    n = len(res.placebo_z)
    need = E.placebo_days_needed(lw)
    got = f"only {n} fit" if n else "none fits"
    source = "the brand account's daily data" if "follower" in outcome else "daily orders"
    return (f"{WEAK_CALIBRATION_PHRASE} ({got} beside the {lw}-day window in {len(W):,} days of {source}): "
            "they measure how much the robust standard error understates the spread of a window total, so the "
            f"intervals are widened by the largest factor allowed ({E.CALIBRATION_CAP:g} times that error) instead "
            f"of a measured one; about {need:,} days of {source} around the campaign calibrate them")


def _fit_mask(panel: Panel, baseline_days: int | None) -> np.ndarray | None:
    if baseline_days is None:
        return None
    lo = panel.start - pd.Timedelta(days=int(baseline_days))
    hi = panel.window_end + pd.Timedelta(days=int(baseline_days))
    return np.asarray((panel.dates >= lo) & (panel.dates <= hi))


def _followers_from_panel(panel: Panel, y: np.ndarray, *, n_boot: int, seed: int, alpha: float,
                          kernels: tuple[str, ...], pool: bool, baseline_days: int | None = None,
                          drop_creator: str | None = None, outcome: str = "new followers",
                          exposure: np.ndarray | None = None,
                          exposure_relvar: np.ndarray | None = None,
                          leader_chances: bool = True,
                          kernel_list: list[E.Kernel] | None = None) -> FollowerAttribution:
    """One attribution of outcome ``y`` on a built panel.

    ``leader_chances=False`` leaves ``p_top`` empty (NaN): the chances are validated for followers only
    (for orders they were conservative, ``docs/validation_attribution.md``), and the reading then falls
    back on the overlap caution. ``kernel_list`` replaces the candidate kernels of ``kernels`` (the
    conversions pass the orders' chosen kernel to revenue and new-customer orders).
    """
    spec = make_spec(panel, y, pool=pool, drop_creator=drop_creator, fit_mask=_fit_mask(panel, baseline_days),
                     exposure=exposure, exposure_relvar=exposure_relvar)
    cands = E.candidate_kernels(tuple(kernels)) if kernel_list is None else list(kernel_list)
    res = E.run(spec, kernels=cands, n_boot=n_boot, seed=seed, alpha=alpha)
    warnings = list(panel.warnings)
    parts = assemble(panel, res, y=y, alpha=alpha, n_boot=n_boot, outcome=outcome, warnings=warnings)
    by = parts["by"]
    pdl = panel.post_daily
    tp = panel.posts[panel.posts["campaign_id"] == panel.campaign_id]
    w = pdl[pdl["post_id"].isin(tp["post_id"]) & (pdl["date"] >= panel.start) & (pdl["date"] <= panel.window_end)]
    w = w.merge(tp[["post_id", "creator_id"]], on="post_id")
    rep = w.groupby("creator_id")[["follows", "profile_views"]].sum()
    by["reported_follows"] = by["creator_id"].map(rep["follows"]).fillna(0.0)
    pv = by["creator_id"].map(rep["profile_views"]).fillna(0.0)
    by["profile_view_share"] = pv / pv.sum() if pv.sum() > 0 else np.nan
    by = by.rename(columns={"per_1000_views": "follows_per_1000_views"})
    unseen = by.loc[by["views"] <= 0, "handle"].astype(str).tolist()
    if unseen:
        n = len(unseen)
        warnings.append(f"{_and(unseen[:5])}{f' and {n - 5} more' if n > 5 else ''} "
                        f"{'has' if n == 1 else 'have'} campaign posts but no views in the window's post metrics: "
                        f"credited 0 with no interval; whatever {'it' if n == 1 else 'they'} brought is counted "
                        "with the other creators and the baseline")
    if E.weak_calibration(res):
        warnings.append(_weak_calibration_warning(res, outcome))
    if not leader_chances:
        by["p_top"] = np.nan
    if (by["incremental"] < 0).any():
        neg = int((by["incremental"] < 0).sum())
        warnings.append(f"{neg} creator{' has' if neg == 1 else 's have'} a negative point attribution "
                        "(noise around zero effect); their intervals show the uncertainty")
    if parts["lo"] <= 0 <= parts["hi"]:
        warnings.append(ZERO_INTERVAL_WARNING)
    elif parts["hi"] < 0:
        warnings.append(f"{BELOW_ZERO_PHRASE}: a campaign seldom costs {outcome}; noise, the baseline or an "
                        "overlapping campaign the model cannot separate from this one is the likelier cause, so "
                        "the total is unreliable")
    for c in _collinear(parts["overlap_split"], parts["overlapping"]):
        d = parts["overlap_split"][c]
        warnings.append(f"{COLLINEAR_PHRASE} {c} (correlation of the total with {c}'s credit "
                        f"{d['correlation']:.2f}): how the {outcome} divide between the two is fragile; their "
                        f"combined total, {d['combined']:,.0f}, is better determined")
    return FollowerAttribution(
        campaign_id=panel.campaign_id, incremental=float(parts["total"]), ci_low=parts["lo"], ci_high=parts["hi"],
        daily=parts["daily"], by_creator=by.sort_values("incremental", ascending=False).reset_index(drop=True),
        by_post=parts["by_post"], kernel=parts["kernel"], posts=parts["posts"],
        window=panel.observed_window, campaign_end=panel.end, alpha=alpha, n_boot=n_boot,
        outcome=outcome, warnings=tuple(warnings), overlapping=parts["overlapping"],
        overlap_split=parts["overlap_split"],
        nominal_window=(panel.start, panel.window_end))
