"""The metric registry: the single source of truth for every KPI.

Each :class:`Metric` states its formula as sums of *base quantities* (numerator
over denominator, times a scale), its unit, whether higher or lower is better,
and the published convention it follows. The KPI engine (:mod:`analysis.kpis`),
the scorecards, the reports and ``docs/metrics.md`` all read :data:`REGISTRY`;
no other module restates a formula.

Every ratio is a ratio of sums at the level asked (post, creator, campaign,
brand), never a mean of per-post ratios. A ratio whose denominator is zero is
*undefined* (NaN), never infinity.

Regenerate the documentation with ``python -m analysis.metrics docs/metrics.md``.
"""

from __future__ import annotations

import functools

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from analysis.config import RESOURCES_DIR
from analysis.fileio import atomic_write_text

EMV_FILE = RESOURCES_DIR / "emv.yaml"

#: Base quantities: the additive sums every metric is built from, with their meaning and the
#: level at which they exist ("post": from each post's final cumulative snapshot in the window;
#: "creator": per creator within a campaign; "campaign": per campaign or brand account).
BASE_QUANTITIES: dict[str, tuple[str, str]] = {
    "n_posts": ("post", "number of posts"),
    "views": ("post", "video views (cumulative as reported, final snapshot in the window)"),
    "reach": ("post", "accounts reached, as estimated by TikTok per post (overlaps between posts are not removed)"),
    "likes": ("post", "likes"),
    "comments": ("post", "comments"),
    "shares": ("post", "shares"),
    "saves": ("post", "saves (favourites)"),
    "profile_views": ("post", "profile views from the post"),
    "follows": ("post", "follows of the creator's account from the post"),
    "link_clicks": ("post", "clicks on the post's link"),
    "watch_time_s": ("post", "total watch time in seconds: avg_watch_time_s x views, over the posts whose "
                             "average watch time is reported"),
    "views_with_watch_time": ("post", "views of the posts whose average watch time is reported (the "
                                      "denominator of avg_watch_time_s)"),
    "completed_views": ("post", "views watched to the end: completion_rate x views, over the posts whose "
                                "completion rate is reported"),
    "views_with_completion": ("post", "views of the posts whose completion rate is reported (the denominator "
                                      "of completion_rate)"),
    "watch_time_with_duration_s": ("post", "avg_watch_time_s x views over the posts whose average watch time "
                                           "and video length are both reported"),
    "duration_views_s": ("post", "video length times views: duration_s x views, over the posts whose average "
                                 "watch time and video length are both reported"),
    "followers": ("post", "the creator's followers, counted once per post"),
    "cost": ("creator", "fee + product_cost from the contract (allocated equally to the creator's posts at "
                        "post level)"),
    "orders": ("creator", "orders attributed directly (discount code, affiliate id, UTM link)"),
    "revenue": ("creator", "revenue of the directly attributed orders"),
    "new_customers": ("creator", "directly attributed orders from new customers"),
    "sessions": ("creator", "web sessions with the contract's utm_content"),
    "brand_follower_growth": ("campaign", "brand account followers at the window's end minus at its start"),
    "brand_followers_start": ("campaign", "brand account followers at the window's start"),
}

#: Post-level base quantities derived from a snapshot row: ``name -> (factors, observed)``. The
#: quantity is the product of ``factors`` on a row where every column of ``factors`` and ``observed``
#: is reported, and missing (skipped by the sums) elsewhere. This is how the registry restricts a
#: denominator to the rows where a rate is observed: ``completion_rate`` is ``completed_views /
#: views_with_completion``, so a post without a reported completion rate counts in neither sum
#: (rather than as zero completion over its views).
DERIVED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "watch_time_s": (("avg_watch_time_s", "views"), ()),
    "views_with_watch_time": (("views",), ("avg_watch_time_s",)),
    "completed_views": (("completion_rate", "views"), ()),
    "views_with_completion": (("views",), ("completion_rate",)),
    "watch_time_with_duration_s": (("avg_watch_time_s", "views"), ("duration_s",)),
    "duration_views_s": (("duration_s", "views"), ("avg_watch_time_s",)),
}

assert set(DERIVED) <= set(BASE_QUANTITIES), "every derived quantity is a base quantity"

UNITS = ("count", "rate", "currency", "seconds", "multiple")
DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True, slots=True)
class Metric:
    """One KPI: a ratio of sums of base quantities.

    Attributes
    ----------
    name : str
        Column name in KPI tables, key in ``results.json`` and in ``campaign_targets.kpi``.
    label : str
        Short human-readable name.
    numerator : tuple of str
        Base quantities summed for the numerator; a leading ``-`` subtracts one.
    denominator : tuple of str
        Base quantities summed for the denominator; empty for a plain total.
    scale : float
        Multiplier applied to the ratio (1000 for cost per mille).
    unit : {"count", "rate", "currency", "seconds", "multiple"}
        How values are formatted.
    direction : {"higher", "lower"}
        Which way is better.
    description : str
        Plain-language definition.
    convention : str
        The published source or convention the definition follows.
    weights : str or None
        ``"emv"`` when the numerator's quantities are weighted by the per-action values of
        ``resources/emv.yaml`` (see :func:`emv_values`).
    """

    name: str
    label: str
    numerator: tuple[str, ...]
    denominator: tuple[str, ...] = ()
    scale: float = 1.0
    unit: str = "count"
    direction: str = "higher"
    description: str = ""
    convention: str = ""
    weights: str | None = None

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"metric {self.name!r}: unit must be one of {UNITS}, got {self.unit!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"metric {self.name!r}: direction must be one of {DIRECTIONS}")
        for q in self.numerator + self.denominator:
            if q.lstrip("-") not in BASE_QUANTITIES:
                raise ValueError(f"metric {self.name!r}: unknown base quantity {q!r}")

    @property
    def is_ratio(self) -> bool:
        """True when the metric has a denominator (a rate or a cost ratio)."""
        return bool(self.denominator)

    @property
    def additive(self) -> bool:
        """True for plain totals, which add up over posts, creators and days."""
        return not self.denominator

    @property
    def quantities(self) -> tuple[str, ...]:
        """Every base quantity the metric reads (signs stripped)."""
        return tuple(dict.fromkeys(q.lstrip("-") for q in self.numerator + self.denominator))

    @property
    def level(self) -> str:
        """The finest level at which the metric is defined: post, creator or campaign."""
        order = {"post": 0, "creator": 1, "campaign": 2}
        return max((BASE_QUANTITIES[q][0] for q in self.quantities), key=order.__getitem__)

    def formula(self) -> str:
        """The formula in words, e.g. ``1000 x cost / views``."""
        def side(terms: tuple[str, ...]) -> str:
            if self.weights == "emv" and terms is self.numerator:
                return " + ".join(f"v[{t}] x {t}" for t in terms)
            out = ""
            for i, t in enumerate(terms):
                if t.startswith("-"):
                    out += f" - {t[1:]}"
                else:
                    out += (" + " if i else "") + t
            return out
        num = side(self.numerator)
        if not self.denominator:
            text = num
        else:
            den = side(self.denominator)
            num = f"({num})" if len(self.numerator) > 1 else num
            den = f"({den})" if len(self.denominator) > 1 else den
            text = f"{num} / {den}"
        if self.scale != 1:
            text = f"{self.scale:g} x {text}"
        return text


_ENG = ("likes", "comments", "shares", "saves")
_DEF = "Project definition"

_METRICS: tuple[Metric, ...] = (
    # ---- reach and attention
    Metric("views", "Views", ("views",), description="Video views.",
           convention="TikTok views as reported (replays included in organic reporting)."),
    Metric("reach", "Reach", ("reach",),
           description="Accounts reached, summed over posts (overlaps between posts are not removed).",
           convention="TikTok's estimated unique reach per post (sampled; not comparable to third-party reach)."),
    Metric("likes", "Likes", ("likes",), description="Likes."),
    Metric("comments", "Comments", ("comments",), description="Comments."),
    Metric("shares", "Shares", ("shares",), description="Shares."),
    Metric("saves", "Saves", ("saves",), description="Saves (favourites)."),
    Metric("engagements", "Engagements", _ENG, description="Likes + comments + shares + saves.",
           convention=_DEF + " (saves included, as some studies do)."),
    Metric("engagement_rate", "Engagement rate (views)", _ENG, ("views",), unit="rate",
           description="Engagements (with saves) per view.",
           convention="Engagement rate by views (Rival IQ base), saves included."),
    Metric("engagement_rate_tiktok_one", "Engagement rate (TikTok One)", ("likes", "comments", "shares"),
           ("views",), unit="rate", description="Likes + comments + shares per view, without saves.",
           convention="TikTok One / Creator Marketplace: (likes + comments + shares) / video views."),
    Metric("engagement_rate_reach", "Engagement rate (reach)", _ENG, ("reach",), unit="rate",
           description="Engagements (with saves) per account reached.", convention=_DEF + "."),
    Metric("engagement_rate_followers", "Engagement rate (followers)", _ENG, ("followers",), unit="rate",
           description="Engagements (with saves) per follower per post: total engagements over the "
                       "creator's followers counted once per post.",
           convention="Traackr-style engagements / followers, saves included."),
    Metric("engagement_rate_followers_lcs", "Engagement rate (followers, no saves)",
           ("likes", "comments", "shares"), ("followers",), unit="rate",
           description="Likes + comments + shares per follower per post; the base of the published "
                       "creator-tier benchmarks.",
           convention="SociaVault / Influencer Marketing Factory: (likes + comments + shares) / followers."),
    Metric("completion_rate", "Completion rate", ("completed_views",), ("views_with_completion",), unit="rate",
           description="View-weighted completion: sum(completion_rate x views) / sum(views), both sums over "
                       "the posts whose completion rate is reported.",
           convention="TikTok One video_completion_rate (completed plays / total plays)."),
    Metric("avg_watch_time_s", "Average watch time", ("watch_time_s",), ("views_with_watch_time",),
           unit="seconds",
           description="View-weighted average watch time: sum(avg_watch_time_s x views) / sum(views), both "
                       "sums over the posts whose average watch time is reported.",
           convention="TikTok average watch time per view."),
    Metric("avg_share_watched", "Average share watched", ("watch_time_with_duration_s",), ("duration_views_s",),
           unit="rate",
           description="Share of the video watched on average: total watch time over video length x views, "
                       "both over the posts whose watch time and length are reported.",
           convention="Dash Social 'share of the video watched' (21% for the average branded video)."),
    Metric("profile_views", "Profile views", ("profile_views",), description="Profile views from the posts."),
    Metric("profile_view_rate", "Profile-view rate", ("profile_views",), ("views",), unit="rate",
           description="Profile views per view.", convention=_DEF + "."),
    Metric("follows", "Creator follows", ("follows",),
           description="Follows of the creator's account attributed by TikTok to the posts."),
    # ---- brand account
    Metric("follower_growth", "Brand follower growth", ("brand_follower_growth",),
           description="Brand account followers at the window's end minus at its start "
                       "(campaign and brand level only; not causal, see analysis.attribution).",
           convention=_DEF + "."),
    Metric("follower_growth_pct", "Brand follower growth (%)", ("brand_follower_growth",),
           ("brand_followers_start",), unit="rate",
           description="Follower growth as a share of the followers at the window's start.",
           convention="Rival IQ follower growth rate (brand accounts grow 2-3% a month)."),
    # ---- traffic and sales
    Metric("link_clicks", "Link clicks", ("link_clicks",), description="Clicks on the posts' links."),
    Metric("ctr", "Click-through rate", ("link_clicks",), ("views",), unit="rate",
           description="Link clicks per view.", convention=_DEF + " (views as the impression base)."),
    Metric("sessions", "Sessions", ("sessions",),
           description="Web sessions carrying the contract's utm_content."),
    Metric("orders", "Orders", ("orders",),
           description="Orders attributed directly (affiliate id, then discount code, then UTM link; "
                       "each order credited once)."),
    Metric("conversion_rate", "Conversion rate", ("orders",), ("sessions",), unit="rate",
           description="Directly attributed orders per tagged session.", convention=_DEF + "."),
    Metric("revenue", "Revenue", ("revenue",), unit="currency",
           description="Revenue of the directly attributed orders."),
    Metric("aov", "Average order value", ("revenue",), ("orders",), unit="currency",
           description="Revenue per directly attributed order."),
    Metric("new_customers", "New customers", ("new_customers",),
           description="Directly attributed orders placed by new customers."),
    # ---- cost and return
    Metric("cost", "Cost", ("cost",), unit="currency", direction="lower",
           description="Creator fee + product cost from the contracts (no paid media).",
           convention=_DEF + "."),
    Metric("cpm", "CPM", ("cost",), ("views",), scale=1000.0, unit="currency", direction="lower",
           description="Cost per 1000 views.", convention="HypeAuditor creator CPM: cost / views x 1000."),
    Metric("cpv", "Cost per view", ("cost",), ("views",), unit="currency", direction="lower",
           description="Cost per view."),
    Metric("cpe", "Cost per engagement", ("cost",), _ENG, unit="currency", direction="lower",
           description="Cost per engagement, all four engagement types (not HypeAuditor's likes + comments).",
           convention="Cost / (likes + comments + shares + saves)."),
    Metric("cpc", "Cost per click", ("cost",), ("link_clicks",), unit="currency", direction="lower",
           description="Cost per link click."),
    Metric("cpa", "Cost per order", ("cost",), ("orders",), unit="currency", direction="lower",
           description="Cost per directly attributed order."),
    Metric("roas", "ROAS", ("revenue",), ("cost",), unit="multiple",
           description="Directly attributed revenue per unit of cost."),
    Metric("roi", "ROI", ("revenue", "-cost"), ("cost",), unit="rate",
           description="(Revenue - cost) / cost, on directly attributed revenue (not margin)."),
    Metric("emv", "Earned media value", ("views", "likes", "comments", "shares", "saves"),
           unit="currency", weights="emv",
           description="Notional media value of the views and engagements; shown beside ROI, never as ROI.",
           convention="Fair-Influence: views x TikTok CPM ($10) / 1000 + $0.15 per engagement "
                      "(resources/emv.yaml, overridable)."),
)

#: Every metric by name, in display order.
REGISTRY: dict[str, Metric] = {m.name: m for m in _METRICS}


def metric(name: str) -> Metric:
    """Return the registry entry ``name`` (ValueError listing the known names otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(REGISTRY)}") from None


def base_quantities(level: str | None = None) -> tuple[str, ...]:
    """Names of the base quantities, optionally only those that exist at ``level``."""
    if level is None:
        return tuple(BASE_QUANTITIES)
    return tuple(q for q, (lv, _) in BASE_QUANTITIES.items() if lv == level)


@functools.lru_cache(maxsize=1)
def _default_emv() -> tuple[tuple[str, float], ...]:
    """The shipped EMV defaults, read once per process."""
    return tuple((k, float(v)) for k, v in yaml.safe_load(EMV_FILE.read_text())["values"].items())


def emv_values(override: Mapping[str, float] | str | Path | None = None) -> dict[str, float]:
    """Per-action EMV values: the shipped defaults, updated by ``override``.

    Parameters
    ----------
    override : mapping or path, optional
        Values per action (``views`` is the value of one view, i.e. CPM / 1000), or a YAML file
        with a ``values`` mapping. Actions not given keep their default.
    """
    values = dict(_default_emv())
    if override is None:
        return values
    if isinstance(override, (str, Path)):
        override = yaml.safe_load(Path(override).read_text()).get("values", {})
    unknown = set(override) - set(values)
    if unknown:
        raise ValueError(f"unknown EMV action(s) {sorted(unknown)}; expected some of {sorted(values)}")
    values.update({k: float(v) for k, v in override.items()})
    return values


def _human(value: float) -> str:
    a = abs(value)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{value / div:.1f}{suffix}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def format_value(name: str, value: float | None, *, currency: str = "$") -> str:
    """Format ``value`` as the metric ``name`` is shown in reports.

    Counts are abbreviated (1.2M), rates shown as % to three significant figures (whole per cent from
    100%), currency with a symbol (two significant figures below 0.10, cents below 1,000, whole units to
    10,000, then 12.3k), seconds with ``s``
    and multiples with ``x``; undefined values as ``n/a``.

    Examples
    --------
    >>> format_value("views", 1_234_567)
    '1.2M'
    >>> format_value("engagement_rate", 0.0345)
    '3.45%'
    >>> format_value("cpm", 12.5)
    '$12.50'
    >>> format_value("cpv", 0.0032)
    '$0.0032'
    """
    m = metric(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    value = float(value)
    if m.unit == "count":
        return _human(value)
    if m.unit == "rate":  # three significant figures up to 100%: 3.45%, 45.1%, 172%
        pct = value * 100
        return f"{pct:.{2 if abs(pct) < 10 else 1 if abs(pct) < 100 else 0}f}%"
    if m.unit == "currency":
        sign = "-" if value < 0 else ""
        a = abs(value)
        if a >= 10_000:
            return f"{sign}{currency}{_human(a)}"
        if 0 < a < 0.1:  # cost per view and the like: two significant figures, not $0.00
            return f"{sign}{currency}{a:.{min(-math.floor(math.log10(a)) + 1, 8)}f}"
        return f"{sign}{currency}{a:,.0f}" if a >= 1_000 else f"{sign}{currency}{a:,.2f}"
    if m.unit == "seconds":
        return f"{value:.1f} s"
    return f"{value:.2f}x"


def render_markdown() -> str:
    """Render ``docs/metrics.md`` from the registry."""
    emv = emv_values()
    lines = [
        "# Metrics",
        "",
        "Generated from `analysis.metrics.REGISTRY` by `python -m analysis.metrics docs/metrics.md`;"
        " do not edit by hand.",
        "",
        "Every metric is a ratio of sums of base quantities at the level asked (post, creator within a",
        "campaign, creator across campaigns, campaign, brand), never a mean of per-post ratios. Post-level",
        "quantities come from each post's final cumulative snapshot within the window. A ratio whose",
        "denominator is zero is undefined (empty), never infinite.",
        "",
        "## Metrics",
        "",
        "| metric | formula | unit | better | definition | convention |",
        "|---|---|---|---|---|---|",
    ]
    for m in REGISTRY.values():
        lines.append(f"| `{m.name}` | `{m.formula()}` | {m.unit} | {m.direction} | {m.description} | "
                     f"{m.convention or '-'} |")
    lines += ["", "## Base quantities", "",
              "A post-level quantity built from a snapshot's rate (`DERIVED` in `analysis.metrics`) exists",
              "only on the rows where every column it needs is reported; elsewhere it is missing and the sums",
              "skip it. A view-weighted rate therefore divides by the views of the posts whose rate is known",
              "(`completion_rate = completed_views / views_with_completion`), so a post without a reported",
              "rate counts in neither sum instead of as zero watch over its views.", "",
              "| quantity | level | meaning | product of | only where reported |", "|---|---|---|---|---|"]
    for q, (lv, text) in BASE_QUANTITIES.items():
        factors, observed = DERIVED.get(q, ((), ()))
        need = tuple(dict.fromkeys(factors + observed))
        lines.append(f"| `{q}` | {lv} | {text} | {' x '.join(factors) or '-'} | "
                     f"{', '.join(need) or '-'} |")
    lines += ["", "## Intervals", "",
              "`analysis.kpis.kpi_intervals(data, level=..., method=...)` gives an interval for every rate and",
              "cost ratio (totals are counts, not estimates, and get none; brand follower growth is one",
              "account series and gets none). A ratio of sums varies between posts, so the entity's posts are",
              "the clusters: an interval treats them as a sample of the posts the entity could have published.",
              "Metrics on orders, revenue or sessions, which are attributed per creator, use the creators as",
              "clusters. Numerator and denominator always come from the same clusters.", "",
              "| `method=` | interval | assumes | use |",
              "|---|---|---|---|",
              "| `\"bootstrap\"` (default) | percentile of the ratio of sums over resamples of the clusters "
              "with replacement | enough clusters for the resamples to mimic sampling | the default: the closest "
              "to nominal coverage when a few posts hold most of the views |",
              "| `\"bca\"` | bias-corrected and accelerated bootstrap (`scipy.stats.bootstrap`, paired) | as "
              "above; corrects a median bias and skew of the bootstrap distribution | a second opinion on "
              "skewed metrics |",
              "| `\"delta\"` | `R +/- z se`, `se = sqrt(n / (n - 1) x sum(d_i^2)) / sum(den)`, "
              "`d_i = num_i - R den_i` (linearised ratio of sums) | the ratio is close to normal: many "
              "clusters, none dominant | fast, deterministic; agrees with the bootstrap on well-behaved "
              "data |",
              "| `\"delta_log\"` | `R exp(+/- z se / R)` | as `delta`, normal on the log scale; positive "
              "ratios (falls back to `delta` otherwise) | positive rates and cost ratios whose linear "
              "interval would cross zero |", "",
              "The percentile interval is not centred on the estimate. When one post holds most of the",
              "views (a viral post), about 37% of the resamples omit it, and the ratio then moves to the",
              "rate of the other posts; resamples that hold it twice move the ratio a little the other way.",
              "The estimate then sits near one end of the interval, and the interval is wide on the side",
              "of the other posts' rate: this shape says that the campaign's figure is mostly one post's.",
              "With very few clusters a percentile interval can even exclude the estimate (its resamples'",
              "median differs from the estimate); on the demo data set none of the 190 campaign intervals",
              "did when last checked. The delta intervals are symmetric (on their scale) and in the simulation study",
              "(`docs/performance.md`, KPI intervals) they under-cover badly when one post dominates; on",
              "data without a dominant post all four methods agree. With fewer than 2 clusters, a zero",
              "denominator, or a zero denominator in more than 10% of the resamples, the interval is",
              "empty and `note` says why."]
    lines += ["", "## EMV values (defaults, `resources/emv.yaml`)", "",
              "EMV is a notional media-equivalent value, not a return: it is shown beside ROI, never as ROI.",
              "Override with `kpi_table(..., emv={...})`.", "", "| action | value per action |", "|---|---|"]
    for k, v in emv.items():
        lines.append(f"| {k} | {v:g} |")
    lines.append("")
    return "\n".join(lines)


def write_docs(path: str | Path) -> Path:
    """Write :func:`render_markdown` to ``path``."""
    return atomic_write_text(path, render_markdown())


if __name__ == "__main__":  # pragma: no cover
    write_docs(sys.argv[1] if len(sys.argv) > 1 else "docs/metrics.md")
