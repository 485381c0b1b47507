"""Incremental shop orders from a geo holdout or roll-out: the campaign's lift design read on the orders table.

Where a campaign ran as a geo test (``geo_assignment``), its incremental orders and revenue are read
from the design rather than from the baseline-and-exposure model: the shop's own orders (the same
``orders`` table the direct attribution counts) are summed by the customer's ``region`` and local day,
the treatment regions are summed into one unit and compared with the control regions over the
conversion window (campaign start to end plus :data:`analysis.config.ATTRIBUTION_TAIL_DAYS`) by
:func:`analysis.lift.synth.geo_lift`. The per-day effect times the window's days is the campaign's
incremental orders, in the same scope as the direct count: a campaign shown only in the treatment
regions cannot cause orders elsewhere. National campaigns running at the same time add orders in
proportion to each region's size in both groups, which the rescaled synthetic control differences out.
A staggered regional roll-out is read the same way with Callaway-Sant'Anna
(:func:`analysis.lift.did.staggered_did`): its effect per treated region-day times those region-days.

``docs/methods.md`` explains the choice of reading; ``docs/validation_attribution.md`` has its coverage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.attribution._data import _local_dates
from analysis.config import ATTRIBUTION_TAIL_DAYS
from analysis.conversions import read_table
from analysis.htmlsafe import NotebookRepr

#: The geo readings that can give incremental orders (see :func:`geo_incremental_orders`).
GEO_DESIGNS = ("synthetic_control", "causal_impact")

#: Fewest days of orders before the campaign for the regions to be compared (four weeks: the roll-out's
#: weekday-matched base needs them, and a synthetic control fitted on fewer days has little to go by).
MIN_PRE_DAYS = 28

#: Names of the designs in sentences and in ``results.json``'s ``source``.
DESIGN_NAMES = {"synthetic_control": "synthetic control", "causal_impact": "structural time series",
                "staggered_did": "Callaway-Sant'Anna"}


class NoGeoHoldout(ValueError):
    """The campaign has no usable geo holdout on the shop's orders (the reason is the message)."""


@dataclass(frozen=True)
class GeoConversions(NotebookRepr):
    """Incremental orders and revenue of one campaign read from its geo holdout.

    Attributes
    ----------
    campaign_id : str
    design : str
        ``"synthetic_control"``, ``"causal_impact"`` (structural time series) or ``"staggered_did"``.
    window : tuple of pandas.Timestamp
        First and last day of the conversion window the effect is summed over.
    n_days : int
        Days in the window.
    scale : float
        What turns a reading's ``effect`` into the window's total: the window's days for a geo test
        (``effect`` is per day, summed over the treatment regions), the treated region-days from each
        region's adoption to the window's end for a staggered roll-out (``effect`` is per region-day).
    n_treated, n_control : int
        Treatment and control regions.
    orders, revenue, new_customer_orders : LiftResult
        The design's readings of daily orders, revenue and new-customer orders (``new_customer_orders``
        None when the orders carry no ``new_customer`` flag).
    """

    campaign_id: str
    design: str
    window: tuple[pd.Timestamp, pd.Timestamp]
    n_days: int
    scale: float
    n_treated: int
    n_control: int
    orders: Any = field(repr=False)
    revenue: Any = field(repr=False)
    alpha: float = 0.05
    new_customer_orders: Any = field(default=None, repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """What the estimate was read from, for sentences: ``"geo holdout"`` or ``"staggered roll-out"``."""
        return "staggered roll-out" if self.design == "staggered_did" else "geo holdout"

    def _reading(self, outcome: str) -> Any:
        return {"orders": self.orders, "revenue": self.revenue, "new": self.new_customer_orders}[outcome]

    def total(self, outcome: str = "orders") -> tuple[float, float, float]:
        """(estimate, ci_low, ci_high) over the window for ``"orders"``, ``"revenue"`` or ``"new"``
        (new-customer orders; NaN without the flag)."""
        r = self._reading(outcome)
        if r is None:
            return (np.nan, np.nan, np.nan)
        return r.effect * self.scale, r.ci_low * self.scale, r.ci_high * self.scale

    def summary(self) -> pd.DataFrame:
        """One row per outcome: the window total with its interval, the per-day effect and the relative lift."""
        rows = []
        for name, key in (("orders", "orders"), ("revenue", "revenue"), ("new-customer orders", "new")):
            r = self._reading(key)
            if r is None:
                continue
            est, lo, hi = self.total(key)
            rows.append({"outcome": name, "incremental": est, "ci_low": lo, "ci_high": hi,
                         "effect": r.effect, "relative_effect": r.relative_effect,
                         "design": self.design, "days": self.n_days,
                         "regions": f"{self.n_treated} treatment, {self.n_control} control"})
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """The ``incremental`` entry of the ``conversions`` block (CONTRACT section 3), with its source."""
        o, r = self.total("orders"), self.total("revenue")
        return {"orders": float(o[0]), "revenue": float(r[0]), "ci_low": float(o[1]), "ci_high": float(o[2]),
                "revenue_ci_low": float(r[1]), "revenue_ci_high": float(r[2]),
                "source": f"{self.label} ({DESIGN_NAMES[self.design]}) on the shop's orders by region",
                "read_from": self.label, "design": self.design, "design_name": DESIGN_NAMES[self.design],
                "window": {"start": self.window[0].date().isoformat(), "end": self.window[1].date().isoformat()},
                "n_treated_regions": self.n_treated, "n_control_regions": self.n_control,
                "orders_relative_effect": self.orders.relative_effect,
                **({"new_customer_orders": float(n[0]), "new_customer_orders_ci_low": float(n[1]),
                    "new_customer_orders_ci_high": float(n[2])}
                   if np.isfinite((n := self.total("new"))[0]) else {})}

    def plot(self, ax=None):
        """Daily orders of the treatment regions against their synthetic control (dotted lines: the window), or
        for a staggered roll-out the effect by days since adoption."""
        ax = self.orders.plot(ax=ax)
        ax = np.ravel(np.asarray(ax, dtype=object))[0]
        est, lo, hi = self.total("orders")
        ax.set_title(f"{self.campaign_id}: shop orders in the {self.n_treated} treatment regions ({self.label})\n"
                     f"incremental {est:,.0f} ({int(round(100 * (1 - self.alpha)))}% CI {lo:,.0f} to {hi:,.0f}) "
                     f"over {self.n_days} days", fontsize=10)
        if self.design != "staggered_did":  # the staggered plot's axis is days since adoption
            from analysis.plotting import date_axis

            ax.set_ylabel("orders per day")
            ax.axvline(self.window[1], color="grey", ls=":", lw=1)
            date_axis(ax)
        else:
            ax.set_xlim(left=-28)  # the four weeks before adoption are the comparison's base
            ax.set_xlabel("days since the region adopted")
            ax.set_ylabel("extra orders per treatment region-day")
        return ax


def region_orders_daily(data: Any, *, timezone: str | None = None, regions: Any = ()) -> pd.DataFrame:
    """The shop's orders as a ``geo_sales_daily``-shaped table: ``region, date, orders, revenue`` (and ``new``,
    new-customer orders, when the orders carry the flag).

    Days are local to ``timezone`` (the campaign's); every region of the orders and of ``regions`` (e.g.
    a holdout's assigned regions) gets every day from the first to the last order, zero where it had none.
    """
    orders = read_table(data, "orders", required=False)
    if orders is None or orders.empty:
        raise NoGeoHoldout("the data set has no orders table")
    if "region" not in orders.columns or orders["region"].isna().all():
        raise NoGeoHoldout("the orders table has no region column, so the holdout cannot be read on orders")
    o = orders[orders["region"].notna()].copy()
    o["date"] = _local_dates(o, "created_date", "created_at", timezone)
    o["revenue"] = pd.to_numeric(o["revenue"], errors="coerce").fillna(0.0)
    agg = {"orders": ("order_id", "size"), "revenue": ("revenue", "sum")}
    if "new_customer" in o.columns:
        o["new"] = o["new_customer"].astype(str).str.lower().isin(["true", "1"]).astype(int)
        agg["new"] = ("new", "sum")
    g = o.groupby([o["region"].astype(str), "date"]).agg(**agg)
    days = pd.date_range(o["date"].min(), o["date"].max(), freq="D")
    every = sorted(set(o["region"].astype(str)) | {str(r) for r in regions})
    full = pd.MultiIndex.from_product([every, days], names=["region", "date"])
    return g.reindex(full, fill_value=0).reset_index()


def geo_incremental_orders(data: Any, campaign_id: str, *, design: str = "synthetic_control", alpha: float = 0.05,
                           tail_days: int = ATTRIBUTION_TAIL_DAYS, seed: int = 0,
                           n_sims: int = 1000) -> GeoConversions:
    """Incremental orders and revenue of a geo-test or roll-out campaign from its design, on the shop's orders.

    Parameters
    ----------
    data : path, Dataset or dict of DataFrames
        Needs ``orders`` (with ``region``), ``geo_assignment`` and ``campaigns``.
    campaign_id : str
    design : {"synthetic_control", "causal_impact"}
        Which of :func:`analysis.lift.synth.geo_lift`'s readings to use. The synthetic control
        (default) stays unbiased when a national shock or campaign moves every region's orders; the
        structural time series, with each small, noisy control region as a regressor, passes such a
        shock through only in part (``docs/methods.md``, Conversions). Ignored for a staggered roll-out.
    alpha : float
        1 - level of the intervals.
    tail_days : int
        Days after the campaign's end still counted, as the direct attribution counts them.
    seed, n_sims : int
        The structural model's simulated counterfactual paths.

    Returns
    -------
    GeoConversions

    Raises
    ------
    NoGeoHoldout
        When the campaign has no geo assignment, the orders carry no region, the orders start fewer than
        :data:`MIN_PRE_DAYS` days before the campaign, or fewer than two control regions have orders
        before it.

    Notes
    -----
    A staggered roll-out (treatment regions with different ``start_date``) is read with
    :func:`analysis.lift.did.staggered_did` (Callaway-Sant'Anna, never-treated regions as controls) on
    the same region-by-day orders; its overall ATT, the average effect per treated region-day from each
    region's adoption to the window's end, times the number of those region-days is the incremental total.
    """
    if design not in GEO_DESIGNS:
        raise ValueError(f"design must be one of {GEO_DESIGNS}, got {design!r}")
    ga = read_table(data, "geo_assignment", required=False)
    if ga is None:
        raise NoGeoHoldout("the data set has no geo_assignment table")
    ga = ga[ga["campaign_id"].astype(str) == str(campaign_id)]
    if ga.empty:
        raise NoGeoHoldout("this campaign had no geo holdout")
    treated = ga["group"].astype(str) == "treatment"
    staggered = "start_date" in ga.columns and \
        pd.to_datetime(ga.loc[treated, "start_date"], errors="coerce").nunique() > 1
    camps = read_table(data, "campaigns")
    row = camps[camps["campaign_id"].astype(str) == str(campaign_id)]
    if row.empty:
        raise ValueError(f"Campaign {campaign_id!r} is not in the campaigns table.")
    tz = str(row["timezone"].iloc[0]) if "timezone" in row and pd.notna(row["timezone"].iloc[0]) else None
    start = pd.Timestamp(row["start_date"].iloc[0]).normalize()
    end = pd.Timestamp(row["end_date"].iloc[0]).normalize() + pd.Timedelta(days=tail_days)
    # an assigned region without a single order sold nothing: it counts as zero every day
    sales = region_orders_daily(data, timezone=tz, regions=ga["region"])
    sold = sales.groupby("region")["orders"].sum()
    never = sorted(sold.index[sold <= 0])
    warnings: list[str] = [f"{len(never)} assigned region(s) have no orders at all ({', '.join(never[:5])}); "
                           "they count as zero every day"] if never else []
    last = sales["date"].max()
    if last < end:
        warnings.append(f"orders end on {last.date()}, before the conversion window's last day {end.date()}: "
                        "the geo reading covers the window only to then")
        end = last
    n_pre = int((start - sales["date"].min()).days)
    if n_pre < MIN_PRE_DAYS:
        raise NoGeoHoldout(f"the orders start {max(n_pre, 0)} day(s) before the campaign; comparing the regions "
                           f"needs at least {MIN_PRE_DAYS}")
    pre = sales[sales["date"] < start].groupby("region")["orders"].sum()
    ctrl = ga["region"].astype(str).where(~treated)
    silent = sorted(r for r in ctrl.dropna().unique() if pre.get(r, 0) <= 0)
    if silent:
        # a control with no orders before the campaign has no level to be compared by
        warnings.append(f"{len(silent)} control region(s) had no orders before the campaign and are left out "
                        f"of the comparison: {', '.join(silent[:5])}")
        ga = ga[~ga["region"].astype(str).isin(silent) | treated]
        treated = ga["group"].astype(str) == "treatment"
    if int((~treated).sum()) < 2:
        raise NoGeoHoldout("fewer than two control regions have orders before the campaign")
    if staggered:
        return _staggered_orders(sales, ga, str(campaign_id), start, end, alpha=alpha, seed=seed,
                                 warnings=warnings)
    from analysis.lift.synth import OUTSIDE_INTERVAL, geo_lift

    tables = {"geo_sales_daily": sales, "geo_assignment": ga, "campaigns": camps}
    res = {}
    for metric in _metrics(sales):
        # no in-space placebos: the totals' intervals are conformal, and the placebo p-value is not reported
        try:
            (reading,) = geo_lift(tables, campaign_id, metric=metric, alpha=alpha, treatment_start=start,
                                  treatment_end=end, placebos=False, n_sims=n_sims, seed=seed, designs=(design,))
        except ValueError as exc:
            if metric != "new":
                raise
            warnings.append(f"new-customer orders could not be read from the holdout ({exc})")
            continue
        res[metric] = reading
    # the revenue reading repeats the orders reading's diagnostics in money: keep those of orders, and every
    # reading's note that its interval was widened to include its estimate
    names = {"orders": "orders", "revenue": "revenue", "new": "new-customer orders"}
    warnings += [w for w in res["orders"].warnings if w not in warnings and OUTSIDE_INTERVAL not in w]
    warnings += [f"{names[m]}: {w[0].lower()}{w[1:]}" for m, r in res.items() for w in r.warnings
                 if OUTSIDE_INTERVAL in w]
    n_days = int((end - start).days) + 1
    return GeoConversions(campaign_id=str(campaign_id), design=design, window=(start, end), n_days=n_days,
                          scale=float(n_days),
                          n_treated=int(ga.loc[treated, "region"].nunique()),
                          n_control=int(ga.loc[~treated, "region"].nunique()), orders=res["orders"],
                          revenue=res["revenue"], new_customer_orders=res.get("new"), alpha=alpha,
                          warnings=tuple(warnings))


def _metrics(sales: pd.DataFrame) -> tuple[str, ...]:
    return ("orders", "revenue", "new") if "new" in sales.columns else ("orders", "revenue")


def _staggered_orders(sales: pd.DataFrame, ga: pd.DataFrame, campaign_id: str, start: pd.Timestamp,
                      end: pd.Timestamp, *, alpha: float, seed: int, warnings: list[str]) -> GeoConversions:
    """A staggered roll-out read on the shop's orders by region (see :func:`geo_incremental_orders`)."""
    from analysis.lift.did import staggered_did, staggered_panel

    res = {}
    cells = 0
    for metric in _metrics(sales):
        panel = staggered_panel(sales, ga, campaign_id, metric=metric, end=end)
        try:
            r = staggered_did(panel, outcome=metric, unit="region", time="date", cohort="cohort", alpha=alpha,
                              seed=seed, post_end=end, compare_twfe=False)
        except ValueError as exc:
            if metric != "new":
                raise
            warnings.append(f"new-customer orders could not be read from the roll-out ({exc})")
            continue
        # the overall ATT is the mean over these treated region-days: their count turns it into a total
        cells = int((panel["treated"].astype(bool) & (panel["date"] <= end)).sum())
        res[metric] = r
    warnings += [w for w in res["orders"].warnings if w not in warnings]
    treated = ga["group"].astype(str) == "treatment"
    return GeoConversions(campaign_id=campaign_id, design="staggered_did", window=(start, end),
                          n_days=int((end - start).days) + 1, scale=float(cells),
                          n_treated=int(ga.loc[treated, "region"].nunique()),
                          n_control=int(ga.loc[~treated, "region"].nunique()), orders=res["orders"],
                          revenue=res["revenue"], new_customer_orders=res.get("new"), alpha=alpha,
                          warnings=tuple(warnings))
