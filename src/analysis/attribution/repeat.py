"""Repeat collaborations: do creators who worked with the brand before bring more per view the next time?"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis._blas import one_blas_thread
from analysis.config import check_alpha
from analysis.attribution._data import _dates
from analysis.attribution.followers import FollowerAttribution, _f, attribute_followers
from analysis.conversions import read_table
from analysis.htmlsafe import NotebookRepr
from analysis.progress import progress

#: Fewest repeat creators (with positive estimates) needed before a ratio is estimated.
MIN_REPEAT_CREATORS = 3

_TABLE_COLUMNS = ["creator_id", "handle", "brand", "campaign_id", "campaign_start", "collaboration",
                  "repeat", "previous_campaigns", "incremental", "ci_low", "ci_high", "se", "views",
                  "per_1000_views", "campaign_rel_se"]
_PAIR_COLUMNS = ["creator_id", "handle", "brand", "first_campaign", "first_per_1000_views",
                 "later_campaigns", "later_per_1000_views", "log_ratio", "ratio", "included",
                 "reason"]

#: Ways the ratio's interval can be obtained (``RepeatResult.method``).
METHOD_META = "mean of creators' log ratios; t interval with shared campaign errors"
METHOD_T = "one-sample t over creators (per-creator intervals missing)"


@dataclass(frozen=True)
class RepeatResult(NotebookRepr):
    """Per-view follower response of repeat creators: later campaigns against their first one.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per creator and campaign: ``creator_id, handle, brand, campaign_id, campaign_start,
        collaboration`` (1 for the creator's first campaign with the brand, 2 for the second, ...),
        ``repeat`` (the creator had an earlier campaign with the brand), ``previous_campaigns``,
        ``incremental, ci_low, ci_high`` (modelled incremental brand followers), ``views`` (the
        creator's views in the attribution window) and ``per_1000_views`` (incremental per 1,000 views).
    pairs : pandas.DataFrame
        One row per repeat creator: the first campaign and its per-view response, the number of later
        campaigns and the geometric mean of their per-view responses, ``log_ratio`` (mean over the later
        campaigns of log(later / first)), ``ratio`` = exp(log_ratio), whether the creator enters the
        comparison (``included``) and, if not, why (``reason``).
    ratio, ci_low, ci_high : float or None
        Geometric mean over creators of the later-to-first ratio of incremental followers per 1,000
        views, with its ``1 - alpha`` interval; None when fewer than ``min_creators`` creators qualify.
        The interval's variance is the spread of the creators' log ratios over ``n`` plus the error they
        share within campaigns (each campaign's total relative standard error, weighted by how many of the
        creators' ratios involve it), with Student t on ``n - 1`` degrees of freedom
        (:func:`combine_log_ratios`). Expect attenuation towards 1: per-creator estimates are pooled
        towards their campaign's mean (``docs/validation_repeat.md``).
    p_value : float or None
        Two-sided test of mean log ratio = 0 with the same standard error and degrees of freedom.
    n : int
        Repeat creators in the comparison (positive estimates in their first and at least one later
        campaign).
    n_repeat_creators : int
        Creators with more than one campaign with the same brand.
    method : str
        How the interval was obtained (:data:`METHOD_META`, or :data:`METHOD_T` when a campaign's total
        has no interval, which is too narrow).
    n_clusters, n_campaigns : int
        Distinct (first campaign, later campaigns) pairs among the included creators (creators in one
        pair share every campaign-level error) and campaigns involved.
    df : int or None
        Degrees of freedom of the t interval.
    var_spread, var_shared : float or None
        The two parts of the log ratio's variance: spread between creators over ``n`` and errors shared
        within campaigns (see :attr:`se_log`, :attr:`shared_share`).
    """

    table: pd.DataFrame = field(repr=False)
    pairs: pd.DataFrame = field(repr=False)
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n: int
    n_repeat_creators: int
    alpha: float = 0.05
    min_creators: int = MIN_REPEAT_CREATORS
    campaign_ids: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    method: str = ""
    n_clusters: int = 0
    n_campaigns: int = 0
    df: int | None = None
    var_spread: float | None = None
    var_shared: float | None = None

    @property
    def estimated(self) -> bool:
        """Whether enough repeat creators qualified for a ratio to be estimated."""
        return self.ratio is not None

    # ------------------------------------------------------------------ tables
    def summary(self) -> pd.DataFrame:
        """One tidy row: the geometric-mean ratio, its interval, p-value and the counts."""
        return pd.DataFrame([{
            "measure": "incremental followers per 1,000 views, later vs first campaign (geometric mean ratio)",
            "ratio": np.nan if self.ratio is None else self.ratio,
            "ci_low": np.nan if self.ci_low is None else self.ci_low,
            "ci_high": np.nan if self.ci_high is None else self.ci_high,
            "p_value": np.nan if self.p_value is None else self.p_value,
            "n_creators": self.n, "n_repeat_creators": self.n_repeat_creators,
            "n_excluded": int((~self.pairs["included"]).sum()) if len(self.pairs) else 0,
            "campaigns": len(self.campaign_ids), "n_clusters": self.n_clusters, "df": self.df,
            "se_log": np.nan if self.se_log is None else self.se_log,
            "shared_share": np.nan if self.shared_share is None else self.shared_share,
            "method": self.method, "alpha": self.alpha,
        }])

    @property
    def se_log(self) -> float | None:
        """Standard error of the log ratio (spread over creators and shared campaign errors)."""
        if self.var_spread is None or self.var_shared is None:
            return None
        return float(np.sqrt(self.var_spread + self.var_shared))

    @property
    def shared_share(self) -> float | None:
        """Share of the log ratio's variance due to errors shared within campaigns."""
        se = self.se_log
        return None if not se or self.var_shared is None else float(self.var_shared / se**2)

    def reading(self) -> list[str]:
        """Plain-language sentences a report can print."""
        return [sentence for para in self.paragraphs() for sentence in para]

    def paragraphs(self) -> list[list[str]]:
        """:meth:`reading`'s sentences grouped into paragraphs: the estimate, how its interval is built, and
        how to read it."""
        lvl = int(round(100 * (1 - self.alpha)))
        nrep, excl = self.n_repeat_creators, self.n_repeat_creators - self.n
        paras: list[list[str]] = []
        if nrep == 0:
            out = ["No creator worked with the brand in more than one of the campaigns analysed, so repeat "
                   "collaborations cannot be compared with first ones."]
        elif not self.estimated:
            out = [f"Not enough repeat creators to compare: {nrep} creator{'s' if nrep != 1 else ''} worked "
                   f"with the brand more than once, {self.n} of them with a positive estimated response in both "
                   f"their first and a later campaign; at least {self.min_creators} are needed for a ratio with an "
                   "interval."]
        else:
            assert self.ratio is not None and self.ci_low is not None and self.ci_high is not None
            pct = 100 * (self.ratio - 1)
            word = "more" if pct >= 0 else "fewer"
            out = [f"Across {self.n} creators who worked with the brand again, a later campaign brought "
                   f"{abs(pct):.0f}% {word} incremental followers per 1,000 views than the same creator's "
                   f"first one (geometric mean ratio {self.ratio:.2f}, {lvl}% interval {self.ci_low:.2f} to "
                   f"{self.ci_high:.2f})."]
            if self.ci_low <= 1 <= self.ci_high:
                out.append("The interval includes 1: the data cannot tell whether repeat creators bring more "
                           "or less per view the second time.")
            else:
                out.append("The interval excludes 1: repeat creators " +
                           ("bring more" if self.ratio > 1 else "bring less") + " per view than the first time.")
            paras.append(out)
            out = []
            share = self.shared_share
            if share is not None:
                out.append(f"The interval counts the spread between creators and the error they share within a "
                           f"campaign, whose estimate they split ({100 * share:.0f}% of its variance here, taken from "
                           f"the campaigns' own intervals; {self.n_clusters} distinct "
                           f"{'pair' if self.n_clusters == 1 else 'pairs'} of first and later "
                           f"campaigns among {self.n_campaigns} campaigns).")
                if self.n_clusters == 1:
                    out.append("Every creator here compares the same two campaigns, so this is in effect one "
                               "comparison of two campaign-level estimates, and the interval rests on their precision.")
            if self.method == METHOD_T:
                out.append("Some campaigns lack an interval for their total, so this interval ignores the error "
                           "their creators share and is too narrow.")
            paras.append(out)
            out = []
            out.append("Expect the ratio to be pulled towards 1: each creator's estimate is pooled towards their "
                       "campaign's mean, so a creator's later-vs-first ratio is partly the two campaigns' ratio. "
                       "In simulations about a third of a true change on the log scale is recovered (a true x2 "
                       "reads as about x1.3), so a ratio near 1 does not rule out a real repeat effect, while one "
                       "whose interval excludes 1 points in the right direction. Creators are usually rehired "
                       "because their first campaign went well, so part of a decline can also be regression to "
                       "the mean.")
        if excl > 0 and nrep > 0:
            out.append(f"{excl} repeat creator{'s' if excl != 1 else ''} left out of the comparison: their first or "
                       "every later estimate is zero or negative (or they had no views), where a ratio is undefined.")
        return [p for p in (*paras, out) if p]

    def to_dict(self) -> dict:
        """JSON-safe dictionary (plain floats and None, no NaN)."""
        def rec(df: pd.DataFrame) -> list[dict]:
            rows = []
            for r in df.to_dict("records"):
                row = {}
                for k, v in r.items():
                    if isinstance(v, (bool, np.bool_)):
                        row[k] = bool(v)
                    elif isinstance(v, pd.Timestamp):
                        row[k] = None if pd.isna(v) else v.date().isoformat()
                    elif isinstance(v, (int, np.integer)):
                        row[k] = int(v)
                    elif isinstance(v, (float, np.floating)):
                        row[k] = _f(v)
                    elif v is None or (not isinstance(v, str) and pd.isna(v)):
                        row[k] = None
                    else:
                        row[k] = str(v)
                rows.append(row)
            return rows

        return {
            "ratio": _f(self.ratio), "ci_low": _f(self.ci_low), "ci_high": _f(self.ci_high),
            "p_value": _f(self.p_value), "n": int(self.n), "n_repeat_creators": int(self.n_repeat_creators),
            "min_creators": int(self.min_creators), "alpha": _f(self.alpha), "method": self.method,
            "df": None if self.df is None else int(self.df), "n_clusters": int(self.n_clusters),
            "n_campaigns": int(self.n_campaigns), "se_log": _f(self.se_log), "var_spread": _f(self.var_spread),
            "var_shared": _f(self.var_shared),
            "campaign_ids": list(self.campaign_ids), "pairs": rec(self.pairs), "table": rec(self.table),
            "reading": self.reading(), "warnings": list(self.warnings),
        }

    # ------------------------------------------------------------------ plots
    def plot(self, ax=None):
        """First vs later per-view response, one line per repeat creator (log scale where possible)."""
        from analysis.plotting import axes

        ax = axes(ax, figsize=(5, 4.5))
        p = self.pairs
        ok = p[(p["first_per_1000_views"] > 0) & (p["later_per_1000_views"] > 0)] if len(p) else p
        log = len(ok) == len(p) and len(p) > 0
        drawn = []
        for r in p.itertuples():
            y0, y1 = r.first_per_1000_views, r.later_per_1000_views
            if not (np.isfinite(y0) and np.isfinite(y1)):
                continue
            color = "0.6" if not r.included else ("C2" if y1 >= y0 else "C3")
            ax.plot([0, 1], [y0, y1], "o-", color=color, lw=1, alpha=0.8)
            drawn.append((float(np.log10(y1) if log else y1), str(r.handle)))
        # labels at the later end, moved apart where lines end close together
        if drawn:
            drawn.sort()
            # 4.5% of the range shown (at least one decade on the log scale)
            span = drawn[-1][0] - drawn[0][0]
            gap = 0.045 * (max(span, 1.0) if log else max(span, abs(drawn[-1][0])))
            pos = [drawn[0][0]]
            for v, _ in drawn[1:]:
                pos.append(max(v, pos[-1] + gap))
            for (v, name), at in zip(drawn, pos):
                ax.annotate(name, (1, 10 ** v if log else v), xytext=(1.04, 10 ** at if log else at),
                            textcoords="data", fontsize=7, va="center")
        if log:
            from matplotlib.ticker import FormatStrFormatter

            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
        ax.set_xticks([0, 1], ["first campaign", "later campaigns\n(geometric mean)"])
        ax.set_xlim(-0.3, 1.5)
        ax.set_ylabel("incremental followers per 1,000 views")
        if self.estimated:
            lvl = int(round(100 * (1 - self.alpha)))
            ax.set_title(f"Repeat creators: ratio {self.ratio:.2f} ({lvl}% CI {self.ci_low:.2f}-{self.ci_high:.2f}), "
                         f"n={self.n}", fontsize=9)
        else:
            ax.set_title(f"Repeat creators: too few to compare (n={self.n})", fontsize=9)
        return ax

    def plot_creators(self, ax=None):
        """Per repeat creator: incremental followers per 1,000 views in the first and each later campaign.

        One row per creator; the first campaign in grey, later ones in colour, each with its interval
        (the follower attribution's per-creator interval divided by the creator's views).
        """
        from analysis.plotting import axes

        t = self.table
        reps = t.loc[t["repeat"], "creator_id"].unique() if len(t) else []
        t = t[t["creator_id"].isin(reps)]
        ax = axes(ax, figsize=(6.5, 0.45 * max(len(reps), 3) + 1.2), layout="constrained")
        order = (self.pairs.sort_values("first_per_1000_views", na_position="first")["creator_id"].tolist()
                 if len(self.pairs) else list(reps))
        order = [c for c in order if c in set(reps)]
        ypos = {c: i for i, c in enumerate(order)}
        handles = {}
        for r in t.itertuples():
            if r.creator_id not in ypos or not (np.isfinite(r.views) and r.views > 0):
                continue
            y = ypos[r.creator_id] + (0.15 if r.repeat else -0.15)
            x = r.per_1000_views
            lo, hi = 1000.0 * r.ci_low / r.views, 1000.0 * r.ci_high / r.views
            color = "C0" if r.repeat else "0.55"
            if np.isfinite(lo) and np.isfinite(hi):
                ax.plot([lo, hi], [y, y], color=color, lw=1.5, alpha=0.8)
            label = "later campaign" if r.repeat else "first campaign"
            handles[label] = ax.plot([x], [y], "o", color=color, ms=5, label=label)[0]
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_yticks(range(len(order)), [str(t.loc[t["creator_id"] == c, "handle"].iloc[0]) for c in order])
        ax.set_xlabel("incremental brand followers per 1,000 views (interval)")
        if handles:
            ax.legend(handles=[handles[k] for k in ("first campaign", "later campaign") if k in handles],
                      fontsize=8, loc="lower right")
        lvl = int(round(100 * (1 - self.alpha)))
        ax.set_title(f"Returning creators: per-view response, first vs later ({lvl}% intervals)", fontsize=9)
        return ax


def _campaign_frame(data: Any) -> pd.DataFrame:
    c = read_table(data, "campaigns").copy()
    if "start_date" not in c.columns:
        raise ValueError("the campaigns table needs a start_date column to order a creator's campaigns")
    c["campaign_id"] = c["campaign_id"].astype(str)
    c["campaign_start"] = _dates(c["start_date"])
    if "brand" in c.columns:
        c["brand"] = c["brand"].astype(str)
    elif "brand_account" in c.columns:
        c["brand"] = c["brand_account"].astype(str)
    else:
        c["brand"] = ""
    return c[["campaign_id", "brand", "campaign_start"]].drop_duplicates("campaign_id")


def creator_campaign_table(attributions: Mapping[str, FollowerAttribution], campaigns: pd.DataFrame) -> pd.DataFrame:
    """Creator x campaign table of per-view follower response with repeat flags.

    Parameters
    ----------
    attributions : mapping of campaign id to FollowerAttribution
        Only ``by_creator`` (``creator_id, handle, incremental, ci_low, ci_high, views``) is used.
    campaigns : pandas.DataFrame
        ``campaign_id, brand, campaign_start``.

    Returns
    -------
    pandas.DataFrame
        See :attr:`RepeatResult.table`. A creator's campaigns with one brand are ordered by start date
        (then campaign id); the first is ``repeat=False``, every later one ``repeat=True``.
    """
    frames = []
    for cid, att in attributions.items():
        b = att.by_creator
        missing = {"creator_id", "incremental", "views"} - set(b.columns)
        if missing:
            raise ValueError(f"the attribution of campaign {cid!r} lacks column(s) {sorted(missing)} in by_creator")
        # the attribution's intervals are estimate +/- z se (normal, at the attribution's own alpha)
        z = float(stats.norm.ppf(1 - float(getattr(att, "alpha", 0.05)) / 2))
        tot, t_lo, t_hi = (_f(getattr(att, k, None)) for k in ("incremental", "ci_low", "ci_high"))
        ok = tot is not None and tot > 0 and t_lo is not None and t_hi is not None and t_hi >= t_lo
        # relative standard error of the campaign's total (NaN where it has no usable interval)
        rel = (t_hi - t_lo) / (2 * z) / tot if ok else np.nan
        f = pd.DataFrame({
            "creator_id": b["creator_id"].astype(str),
            "handle": (b["handle"] if "handle" in b.columns else b["creator_id"]).astype(str),
            "campaign_id": str(cid),
            "incremental": pd.to_numeric(b["incremental"], errors="coerce").astype(float),
            "ci_low": pd.to_numeric(b["ci_low"], errors="coerce").astype(float) if "ci_low" in b else np.nan,
            "ci_high": pd.to_numeric(b["ci_high"], errors="coerce").astype(float) if "ci_high" in b else np.nan,
            "views": pd.to_numeric(b["views"], errors="coerce").astype(float),
            "campaign_rel_se": rel,
        })
        f["se"] = (f["ci_high"] - f["ci_low"]) / (2 * z)
        frames.append(f)
    if not frames:
        return pd.DataFrame(columns=_TABLE_COLUMNS)
    t = pd.concat(frames, ignore_index=True)
    unknown = sorted(set(t["campaign_id"]) - set(campaigns["campaign_id"]))
    if unknown:
        raise ValueError(f"campaign(s) {', '.join(unknown)} are not in the campaigns table")
    t = t.merge(campaigns, on="campaign_id", how="left")
    t["per_1000_views"] = np.where(t["views"] > 0, 1000.0 * t["incremental"] / t["views"].where(t["views"] > 0),
                                   np.nan)
    t = t.sort_values(["creator_id", "brand", "campaign_start", "campaign_id"], kind="stable").reset_index(drop=True)
    t["collaboration"] = t.groupby(["creator_id", "brand"]).cumcount().astype(int) + 1
    t["previous_campaigns"] = t["collaboration"] - 1
    t["repeat"] = t["collaboration"] > 1
    return t[_TABLE_COLUMNS]


def _pairs(table: pd.DataFrame) -> pd.DataFrame:
    rows = []
    multi = table.groupby(["creator_id", "brand"])["campaign_id"].transform("size") > 1
    for (cr, br), g in table[multi].groupby(["creator_id", "brand"], sort=True):
        first, later = g[g["collaboration"] == 1].iloc[0], g[g["collaboration"] > 1]
        f0 = float(first["per_1000_views"])
        lv = later["per_1000_views"].to_numpy(float)
        pos = lv[np.isfinite(lv) & (lv > 0)]
        reason = ""
        if not (np.isfinite(f0) and f0 > 0):
            reason = "first-campaign estimate not positive" if np.isfinite(f0) else "no views in first campaign"
        elif len(pos) == 0:
            reason = "no positive later-campaign estimate"
        lr = float(np.mean(np.log(pos / f0))) if not reason else np.nan
        later_gm = float(np.exp(np.mean(np.log(pos)))) if len(pos) else (
            float(np.nanmean(lv)) if np.isfinite(lv).any() else np.nan)
        rows.append({"creator_id": cr, "handle": first["handle"], "brand": br,
                     "first_campaign": first["campaign_id"], "first_per_1000_views": f0,
                     "later_campaigns": int(len(later)), "later_per_1000_views": later_gm,
                     "log_ratio": lr, "ratio": float(np.exp(lr)) if np.isfinite(lr) else np.nan,
                     "included": not reason, "reason": reason})
    return pd.DataFrame(rows, columns=_PAIR_COLUMNS)


def shared_campaign_loadings(table: pd.DataFrame, pairs: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """How much each campaign's shared error moves each included creator's log ratio.

    A campaign's per-creator estimates split the campaign's total, so an error in the total moves every
    creator's log estimate in that campaign by about the total's relative error (``campaign_rel_se``,
    from the attribution's interval of the total). A creator's log ratio (mean of log later minus log first)
    loads ``-1`` on its first campaign and ``1 / L`` on each of its ``L`` later campaigns (positive
    estimates only).

    Returns
    -------
    loadings : pandas.DataFrame
        Included creators by campaign (0 where a creator was not in the campaign).
    keys : list of tuple
        Each creator's (first campaign, later campaigns): creators with the same key share every
        campaign-level error (one independent cluster).
    """
    inc = pairs[pairs["included"]]
    t = table.set_index(["creator_id", "brand", "campaign_id"])
    load: list[dict[str, float]] = []
    keys = []
    for r in inc.itertuples():
        g = t.loc[(r.creator_id, r.brand)]
        later = g[(g["collaboration"] > 1) & np.isfinite(g["per_1000_views"]) & (g["per_1000_views"] > 0)]
        c = {str(r.first_campaign): -1.0}
        for cid in later.index:
            c[str(cid)] = c.get(str(cid), 0.0) + 1.0 / len(later)
        load.append(c)
        keys.append((str(r.first_campaign), tuple(sorted(map(str, later.index)))))
    L = pd.DataFrame(load).fillna(0.0) if load else pd.DataFrame()
    return L, keys


def combine_log_ratios(d: np.ndarray, loadings: pd.DataFrame, rel_se: pd.Series, keys: Sequence, *,
                       alpha: float = 0.05) -> dict:
    """Mean of the creators' log ratios with an interval that counts their shared campaign errors.

    ``d_c = mu + u_c + sum_k L_ck e_k``: ``u_c`` is the creator's own deviation (true heterogeneity plus
    the creator-specific part of the estimation error, independent between creators), ``e_k`` campaign
    ``k``'s shared error on the log scale (standard deviation ``rel_se[k]``, the campaign total's relative
    standard error; independent between campaigns) and ``L`` the loadings
    (:func:`shared_campaign_loadings`). The estimate is the plain mean of ``d`` (the per-creator relative
    errors are too large for a delta-method weighting to be reliable). Its variance is the spread of the
    creators around the mean over ``n`` (which estimates the ``u_c`` part, as a random-effects
    Hartung-Knapp variance with equal weights) plus the shared part ``sum_k (mean_c L_ck)^2 rel_se[k]^2``,
    which the spread cannot see when every creator shares the campaign. The interval is Student t with
    ``n - 1`` degrees of freedom.

    Returns
    -------
    dict
        ``mu, se, lo, hi, p, df, var_spread, var_shared`` (variances of the mean on the log scale).
    """
    n = len(d)
    mu = float(np.mean(d))
    var_spread = float(np.var(d, ddof=1)) / n
    cbar = loadings.mean(axis=0)
    r = rel_se.reindex(cbar.index).to_numpy(float)
    var_shared = float(np.sum((cbar.to_numpy(float) * r) ** 2))
    se = float(np.sqrt(var_spread + var_shared))
    df = n - 1
    q = float(stats.t.ppf(1 - alpha / 2, df))
    p = float(2 * stats.t.sf(abs(mu / se), df)) if se > 0 else (1.0 if mu == 0 else 0.0)
    return {"mu": mu, "se": se, "lo": mu - q * se, "hi": mu + q * se, "p": p, "df": df,
            "var_spread": var_spread, "var_shared": var_shared, "n_clusters": len(set(keys))}


def _campaign_rel_se(table: pd.DataFrame) -> pd.Series:
    """Each campaign's shared log-scale error: the total's relative standard error (conservative fallback)."""
    if not len(table):
        return pd.Series(dtype=float)
    rel = table.groupby("campaign_id")["campaign_rel_se"].first().astype(float)
    # no usable total (not positive, or no interval): assume the campaign's creators share all their error
    s = (table["se"] / table["incremental"].where(table["incremental"] > 0)).groupby(table["campaign_id"]).max()
    return rel.where(np.isfinite(rel), s)


def compare_repeat(table: pd.DataFrame, *, alpha: float = 0.05, min_creators: int = MIN_REPEAT_CREATORS,
                   campaign_ids: Sequence[str] = (), warnings: Sequence[str] = ()) -> RepeatResult:
    """Paired comparison of later vs first per-view response from a creator x campaign table.

    Each repeat creator contributes one value: the mean over their later campaigns (positive estimates
    only) of log(per-1,000-view response later / first). The result is exp(mean over creators), a
    geometric-mean ratio. Creators of one campaign share that campaign's estimation error, which their
    spread cannot reveal; its size comes from the interval of each campaign's total
    (:func:`shared_campaign_loadings`, :func:`combine_log_ratios`). Without those intervals the plain
    one-sample t interval over creators is used and flagged as too narrow.

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`creator_campaign_table`.
    alpha : float
        One minus the interval's coverage.
    min_creators : int
        Fewest qualifying repeat creators to estimate anything (at least 2).

    Returns
    -------
    RepeatResult
    """
    check_alpha(alpha)
    if min_creators < 2:
        raise ValueError(f"min_creators must be 2 or more for a t interval (got {min_creators})")
    for col in ("se", "campaign_rel_se"):
        if col not in table.columns:
            table = table.assign(**{col: np.nan})
    pairs = _pairs(table)
    inc = pairs["included"].to_numpy(bool)
    d = pairs.loc[inc, "log_ratio"].to_numpy(float)
    n = int(len(d))
    ratio = lo = hi = p = var_spread = var_shared = None
    method, n_clusters, n_camps, df = "", 0, 0, None
    warn = list(warnings)
    rel = _campaign_rel_se(table)
    if n:
        L, keys = shared_campaign_loadings(table, pairs)
        n_clusters = len(set(keys))
        n_camps = int(L.shape[1])
    if n >= min_creators:
        if np.isfinite(rel.reindex(L.columns).to_numpy(float)).all():
            method = METHOD_META
            res = combine_log_ratios(d, L, rel, keys, alpha=alpha)
            ratio, p, df = float(np.exp(res["mu"])), _f(res["p"]), res["df"]
            var_spread, var_shared = res["var_spread"], res["var_shared"]
            lo, hi = float(np.exp(res["lo"])), float(np.exp(res["hi"]))
        else:
            method = METHOD_T
            warn.append("a campaign's total has no interval, so the ratio's interval is a t interval over "
                        "creators that ignores the error they share within a campaign: too narrow")
            tt = stats.ttest_1samp(d, 0.0)
            ci = tt.confidence_interval(confidence_level=1 - alpha)
            m = float(np.mean(d))
            ratio, p, df = float(np.exp(m)), _f(tt.pvalue), n - 1
            lo, hi = (float(np.exp(ci.low)), float(np.exp(ci.high))) if np.isfinite(ci.low) else (ratio, ratio)
    return RepeatResult(table=table, pairs=pairs, ratio=ratio, ci_low=lo, ci_high=hi, p_value=p, n=n,
                        n_repeat_creators=int(len(pairs)), alpha=alpha, min_creators=min_creators,
                        campaign_ids=tuple(campaign_ids), warnings=tuple(warn), method=method,
                        n_clusters=n_clusters, n_campaigns=n_camps, df=df, var_spread=var_spread,
                        var_shared=var_shared)


@one_blas_thread
def attribute_campaigns(data: Any, campaign_ids: Sequence[str], *,
                        given: Mapping[str, FollowerAttribution] | None = None, skip_errors: bool = False,
                        show_progress: bool | None = None,
                        **attribution_kwargs: Any) -> dict[str, FollowerAttribution]:
    """Follower attribution of every campaign in ``campaign_ids``, reusing the results in ``given``.

    Parameters
    ----------
    data : path, Dataset or dict of DataFrames
    campaign_ids : sequence of str
        Campaigns to attribute, in the order of the returned mapping.
    given : mapping of campaign id to FollowerAttribution, optional
        Results already computed (not rerun).
    skip_errors : bool
        Leave out campaigns whose attribution raises a ``ValueError`` (for example, no posts) instead
        of raising it.
    show_progress : bool, optional
        Progress bar over the campaigns attributed here (default: on unless ``ANALYSIS_NO_PROGRESS``).
    **attribution_kwargs
        Passed on to :func:`~analysis.attribution.attribute_followers` (``n_boot``, ``seed``, ...).
    """
    have = {str(k): v for k, v in (given or {}).items()}
    todo = [str(c) for c in campaign_ids if str(c) not in have]
    disable = None if show_progress is None else not show_progress
    for cid in progress(todo, desc="attributing followers", total=len(todo), disable=disable):
        try:
            have[cid] = attribute_followers(data, cid, **attribution_kwargs)
        except ValueError:
            if not skip_errors:
                raise
    return {str(c): have[str(c)] for c in campaign_ids if str(c) in have}


@one_blas_thread
def repeat_collaborations(data: Any, *, campaign_ids: Sequence[str] | None = None, n_boot: int = 200,
                          seed: int = 0, alpha: float = 0.05,
                          attributions: Mapping[str, FollowerAttribution] | None = None,
                          min_creators: int = MIN_REPEAT_CREATORS, **attribution_kwargs: Any) -> RepeatResult:
    """Whether creators who worked with the brand before bring more (or fewer) followers per view.

    Runs :func:`~analysis.attribution.attribute_followers` for each campaign (reusing any result passed
    in ``attributions``), builds a creator x campaign table of incremental followers per 1,000 views,
    flags each creator's later campaigns with the same brand as repeats, and compares every repeat
    creator's later per-view response with their first (paired, on the log scale, among positive
    estimates). See ``docs/methods.md`` ("Repeat collaborations").

    Parameters
    ----------
    data : path, Dataset or dict of DataFrames
        Processed directory, ``analysis.data.Dataset`` or tables by name; needs ``campaigns`` (with
        ``start_date``; ``brand`` if several brands share the data) and, for campaigns not in
        ``attributions``, everything :func:`attribute_followers` needs.
    campaign_ids : sequence of str, optional
        Campaigns to include (default: every campaign in the data).
    n_boot : int
        Bootstrap replicates of each follower attribution run here (its daily intervals; the per-creator
        and total intervals the comparison uses are analytic and do not need them).
    seed : int
        Seed of the attributions' bootstrap.
    alpha : float
        One minus the coverage of every interval.
    attributions : mapping of campaign id to FollowerAttribution, optional
        Results already computed; campaigns found here are not re-run.
    min_creators : int
        Fewest qualifying repeat creators before a ratio is estimated (default 3).
    **attribution_kwargs
        Passed on to :func:`attribute_followers` (``kernels``, ``pool``, ``funnel``, ...).

    Returns
    -------
    RepeatResult
    """
    check_alpha(alpha)
    camps = _campaign_frame(data)
    known = set(camps["campaign_id"])
    if campaign_ids is None:
        ids = sorted(known)
    else:
        ids = [str(c) for c in campaign_ids]
        unknown = [c for c in ids if c not in known]
        if unknown:
            raise ValueError(f"unknown campaign(s) {', '.join(unknown)}; known campaigns: "
                             f"{', '.join(sorted(known))}")
        ids = list(dict.fromkeys(ids))
    atts = attribute_campaigns(data, ids, given=attributions, n_boot=n_boot, seed=seed, alpha=alpha,
                               **attribution_kwargs)
    warnings = []
    if len(ids) < 2:
        warnings.append("only one campaign analysed: no creator can have an earlier campaign")
    table = creator_campaign_table(atts, camps)
    return compare_repeat(table, alpha=alpha, min_creators=min_creators, campaign_ids=ids, warnings=warnings)


def _earlier_campaigns(data: Any, campaign_id: str, camps: pd.DataFrame) -> pd.DataFrame:
    """The campaign's creators who worked with the same brand before it: creator, first campaign, count."""
    con = read_table(data, "contracts")
    con = pd.DataFrame({"creator_id": con["creator_id"].astype(str), "campaign_id": con["campaign_id"].astype(str)})
    con = con.drop_duplicates().merge(camps, on="campaign_id", how="inner")
    me = camps.set_index("campaign_id").loc[campaign_id]
    mine = set(con.loc[con["campaign_id"] == campaign_id, "creator_id"])
    same = con[(con["brand"] == me["brand"]) & con["creator_id"].isin(mine)]
    before = same[(same["campaign_start"] < me["campaign_start"])
                  | ((same["campaign_start"] == me["campaign_start"]) & (same["campaign_id"] < campaign_id))]
    before = before.sort_values(["creator_id", "campaign_start", "campaign_id"], kind="stable")
    g = before.groupby("creator_id", sort=True)
    return pd.DataFrame({"first_campaign": g["campaign_id"].first(), "previous_campaigns": g.size()}).reset_index()


@one_blas_thread
def returning_creators(data: Any, campaign_id: str, *, attribution: FollowerAttribution | None = None,
                       cache: MutableMapping[str, FollowerAttribution] | None = None, n_boot: int = 200,
                       seed: int = 0, alpha: float = 0.05, min_creators: int = MIN_REPEAT_CREATORS,
                       **attribution_kwargs: Any) -> RepeatResult:
    """One campaign's returning creators: their per-view response now against their first campaign.

    A returning creator is one of the campaign's creators with an earlier campaign with the same brand
    (ordered by start date, then campaign id). Each is compared with their own first campaign with the
    brand, as in :func:`repeat_collaborations`, but only the campaign itself and those first campaigns
    are attributed, so a report pays for a few extra attributions, not the brand's whole history.

    Parameters
    ----------
    data : path, Dataset or dict of DataFrames
        Needs ``campaigns`` (``start_date``, ``brand``), ``contracts`` and what
        :func:`attribute_followers` needs.
    campaign_id : str
        The campaign whose returning creators are compared.
    attribution : FollowerAttribution, optional
        The campaign's follower attribution, if already computed (e.g. by the report).
    cache : mutable mapping of campaign id to FollowerAttribution, optional
        Attributions by campaign: read when present, filled with those computed (or given) here.
    n_boot, seed, alpha
        Bootstrap replicates and seed of the attributions run here; one minus the interval coverage.
    min_creators : int
        Fewest qualifying creators before a ratio with an interval is estimated.
    **attribution_kwargs
        Passed on to :func:`attribute_followers`.

    Returns
    -------
    RepeatResult
        ``table`` holds each returning creator's first campaign (``collaboration`` 1) and this one (its
        true collaboration number); ``n_repeat_creators`` is 0 when no creator worked with the brand before.
    """
    camps = _campaign_frame(data)
    campaign_id = str(campaign_id)
    if campaign_id not in set(camps["campaign_id"]):
        known = ", ".join(sorted(camps["campaign_id"]))
        raise ValueError(f"unknown campaign {campaign_id!r}; known campaigns: {known}")
    back = _earlier_campaigns(data, campaign_id, camps)
    if back.empty:
        return compare_repeat(pd.DataFrame(columns=_TABLE_COLUMNS), alpha=alpha, min_creators=min_creators,
                              campaign_ids=(campaign_id,))
    cache = {} if cache is None else cache
    if attribution is None:
        attribution = cache.get(campaign_id) or attribute_followers(data, campaign_id, n_boot=n_boot, seed=seed,
                                                                    alpha=alpha, **attribution_kwargs)
    cache[campaign_id] = attribution
    atts: dict[str, FollowerAttribution] = {campaign_id: attribution}
    warnings: list[str] = []
    firsts = sorted(set(back["first_campaign"]))
    for cid in progress(firsts, desc="attributing earlier campaigns", total=len(firsts)):
        if cid not in cache:
            try:
                cache[cid] = attribute_followers(data, cid, n_boot=n_boot, seed=seed, alpha=alpha,
                                                 **attribution_kwargs)
            except ValueError as exc:
                warnings.append(f"campaign {cid} could not be attributed ({exc}); its returning creators are "
                                "left out")
                continue
        atts[cid] = cache[cid]
    table = creator_campaign_table(atts, camps)
    first_of = dict(zip(back["creator_id"], back["first_campaign"]))
    prev_of = dict(zip(back["creator_id"], back["previous_campaigns"]))
    keep = table["creator_id"].map(first_of).eq(table["campaign_id"]) | (
        table["creator_id"].isin(first_of) & table["campaign_id"].eq(campaign_id))
    table = table[keep].copy()
    now = table["campaign_id"].eq(campaign_id)
    table["previous_campaigns"] = np.where(now, table["creator_id"].map(prev_of).fillna(0), 0).astype(int)
    table["collaboration"] = table["previous_campaigns"] + 1
    table["repeat"] = now.to_numpy()
    # a returning creator whose first campaign could not be attributed (or has no row) has no pair
    has_first = set(table.loc[~now, "creator_id"])
    table = table[table["creator_id"].isin(has_first)].reset_index(drop=True)
    return compare_repeat(table[_TABLE_COLUMNS], alpha=alpha, min_creators=min_creators,
                          campaign_ids=(campaign_id, *firsts), warnings=warnings)
