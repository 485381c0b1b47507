"""Direct conversion attribution: orders and sessions credited to creators.

An order is credited to a creator's contract when, within the campaign window plus
:data:`analysis.config.ATTRIBUTION_TAIL_DAYS` (on the order's local ``created_date``),
it carries

1. the contract's ``affiliate_id`` (channel ``affiliate``), or
2. the contract's ``discount_code`` (channel ``discount_code``), or
3. a UTM link with ``utm_campaign`` = the campaign id and ``utm_content`` = the contract's
   ``utm_content`` (channel ``utm``).

De-duplication rule: one order is credited once. When an order matches several contracts or
channels, the first channel in the order above wins (affiliate over discount code over UTM
link, the most specific identifier first); ties within a channel go to the campaign that
started most recently before the order, then to the lowest creator id. Codes and UTM values
are compared after trimming spaces, case-insensitively.

Direct attribution counts orders that carry a creator's identifier: it is neither all the
orders a creator caused (many buyers never use the code) nor only caused ones (code sites
leak codes). Incremental orders are estimated in :mod:`analysis.attribution`.

Sessions come from ``web_sessions_daily`` rows whose ``utm_content`` is the contract's (and whose
``utm_campaign`` is the campaign id, where given) over the same window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.config import ATTRIBUTION_TAIL_DAYS, POST_CAMPAIGN_DAYS

#: Channel priority of the de-duplication rule (first wins).
CHANNELS = ("affiliate", "discount_code", "utm")

ORDER_COLUMNS = ["order_id", "campaign_id", "creator_id", "channel", "created_at", "created_date",
                 "revenue", "new_customer", "customer_id"]


# ---------------------------------------------------------------- reading processed data

def read_table(data: Any, name: str, *, required: bool = True) -> pd.DataFrame | None:
    """Return the processed table ``name`` as pandas.

    Parameters
    ----------
    data : path or Dataset
        A processed directory written by ``ingest`` (``<name>.parquet`` files) or an
        ``analysis.data.Dataset`` (or any object exposing the tables as attributes or items).
    name : str
        Canonical table name.
    required : bool
        Raise ValueError when absent (else return None).
    """
    df = None
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_dir():
            raise ValueError(f"processed data directory {str(path)!r} does not exist")
        f = path / f"{name}.parquet"
        if f.exists():
            df = pd.read_parquet(f)
    elif isinstance(data, dict):
        df = data.get(name)
    else:
        try:
            df = data[name]
        except (KeyError, TypeError):
            df = getattr(data, name, None)
    if df is None and required:
        raise ValueError(f"the processed data has no {name!r} table; re-run ingest on a raw directory "
                         f"that contains {name}.csv")
    return df


def data_dir(data: Any) -> Path | None:
    """The processed directory behind ``data`` (a path, or a Dataset's directory), if any."""
    if isinstance(data, (str, Path)):
        return Path(data)
    for attr in ("path", "data_dir", "directory", "root"):
        p = getattr(data, attr, None)
        if isinstance(p, (str, Path)) and Path(p).is_dir():
            return Path(p)
    return None


def campaign_windows(campaigns: pd.DataFrame, campaign_id: str | None = None) -> pd.DataFrame:
    """The campaigns' rows (optionally one), with ``ValueError`` naming the known ids if unknown."""
    if campaign_id is None:
        return campaigns
    out = campaigns[campaigns["campaign_id"] == str(campaign_id)]
    if out.empty:
        known = ", ".join(sorted(campaigns["campaign_id"].astype(str)))
        raise ValueError(f"unknown campaign {campaign_id!r}; known campaigns: {known}")
    return out


def _norm(s: pd.Series) -> pd.Series:
    return s.astype("string").str.strip().str.casefold().replace("", pd.NA)


def _local_date(df: pd.DataFrame, date_col: str, ts_col: str) -> pd.Series:
    if date_col in df.columns:
        return pd.to_datetime(df[date_col]).dt.normalize()
    ts = pd.to_datetime(df[ts_col], utc=True)
    return ts.dt.tz_localize(None).dt.normalize()


# ---------------------------------------------------------------- attribution

def _window_bounds(con: pd.DataFrame, window: str, tail_days: int) -> tuple[pd.Series, pd.Series]:
    """First and last local date counted for each contract row."""
    if window == "campaign":
        return con["start_date"], con["end_date"] + pd.to_timedelta(tail_days, unit="D")
    if window == "post_campaign":
        return (con["end_date"] + pd.Timedelta(days=1),
                con["end_date"] + pd.to_timedelta(POST_CAMPAIGN_DAYS, unit="D"))
    raise ValueError(f"window must be 'campaign' or 'post_campaign', got {window!r}")


def _empty_orders() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in ORDER_COLUMNS})


def direct_orders(data: Any, campaign_id: str | None = None, *,
                  tail_days: int = ATTRIBUTION_TAIL_DAYS, window: str = "campaign") -> pd.DataFrame:
    """Orders attributed directly to creators' contracts, one row per credited order.

    Parameters
    ----------
    data : path or Dataset
        Processed data.
    campaign_id : str, optional
        Restrict to one campaign (all campaigns by default).
    tail_days : int
        Days after the campaign's end that still count.
    window : {"campaign", "post_campaign"}
        ``campaign``: start to end + ``tail_days``; ``post_campaign``: the
        :data:`~analysis.config.POST_CAMPAIGN_DAYS` days after the end.

    Returns
    -------
    pandas.DataFrame
        ``order_id, campaign_id, creator_id, channel, created_at, created_date, revenue,
        new_customer, customer_id``. Empty (with a note in ``.attrs["notes"]``) when the data has no
        ``orders`` table.
    """
    campaigns = campaign_windows(read_table(data, "campaigns"), campaign_id)
    orders = read_table(data, "orders", required=False)
    if orders is None:
        out = _empty_orders()
        out.attrs["notes"] = ["no orders table: direct conversions are undefined"]
        return out
    contracts = read_table(data, "contracts")
    contracts = contracts[contracts["campaign_id"].isin(campaigns["campaign_id"])]
    con = contracts.merge(campaigns[["campaign_id", "start_date", "end_date"]], on="campaign_id")
    o = orders.copy()
    o["created_date"] = _local_date(o, "created_date", "created_at")
    keys = {
        "affiliate": [("affiliate_id", "affiliate_id")],
        "discount_code": [("discount_code", "discount_code")],
        "utm": [("utm_campaign", "campaign_id"), ("utm_content", "utm_content")],
    }
    parts = []
    for rank, channel in enumerate(CHANNELS):
        pairs = keys[channel]
        if any(oc not in o.columns for oc, _ in pairs):
            continue
        left = o.assign(**{f"_k{i}": _norm(o[oc]) for i, (oc, _) in enumerate(pairs)})
        right = con.assign(**{f"_k{i}": _norm(con[cc].astype("string")) for i, (_, cc) in enumerate(pairs)})
        kcols = [f"_k{i}" for i in range(len(pairs))]
        left = left.dropna(subset=kcols)
        right = right.dropna(subset=kcols)[kcols + ["campaign_id", "creator_id", "start_date", "end_date"]]
        m = left.merge(right, on=kcols, how="inner")
        lo, hi = _window_bounds(m, window, tail_days)
        m = m[(m["created_date"] >= lo) & (m["created_date"] <= hi)]
        parts.append(m.assign(channel=channel, _rank=rank))
    if not parts or all(p.empty for p in parts):
        return _empty_orders()
    m = pd.concat(parts, ignore_index=True)
    m = m.sort_values(["order_id", "_rank", "start_date", "creator_id"], ascending=[True, True, False, True],
                      kind="stable")
    m = m.drop_duplicates("order_id", keep="first")
    for c in ORDER_COLUMNS:
        if c not in m.columns:
            m[c] = pd.NA
    out = m[ORDER_COLUMNS].sort_values(["campaign_id", "created_at", "order_id"], kind="stable")
    out["revenue"] = out["revenue"].astype("float64")
    out["new_customer"] = out["new_customer"].fillna(False).astype(bool)
    return out.reset_index(drop=True)


def direct_sessions(data: Any, campaign_id: str | None = None, *,
                    tail_days: int = ATTRIBUTION_TAIL_DAYS, window: str = "campaign") -> pd.DataFrame | None:
    """Sessions per contract from ``web_sessions_daily`` (None when that table is absent).

    Returns ``campaign_id, creator_id, sessions`` with a row for every contract (0 when no
    session carried its ``utm_content``).
    """
    campaigns = campaign_windows(read_table(data, "campaigns"), campaign_id)
    web = read_table(data, "web_sessions_daily", required=False)
    if web is None:
        return None
    contracts = read_table(data, "contracts")
    con = contracts[contracts["campaign_id"].isin(campaigns["campaign_id"])].merge(
        campaigns[["campaign_id", "start_date", "end_date"]], on="campaign_id")
    w = web.assign(_content=_norm(web["utm_content"]),
                   _camp=_norm(web["utm_campaign"]) if "utm_campaign" in web else pd.NA,
                   _date=pd.to_datetime(web["date"]).dt.normalize())
    c = con.assign(_content=_norm(con["utm_content"].astype("string")),
                   _cid=_norm(con["campaign_id"].astype("string")))
    m = w.dropna(subset=["_content"]).merge(c[["campaign_id", "creator_id", "start_date", "end_date",
                                                "_content", "_cid"]], on="_content")
    lo, hi = _window_bounds(m, window, tail_days)
    keep = (m["_date"] >= lo) & (m["_date"] <= hi) & (m["_camp"].isna() | (m["_camp"] == m["_cid"]))
    s = m[keep].groupby(["campaign_id", "creator_id"], as_index=False)["sessions"].sum()
    base = con[["campaign_id", "creator_id"]].drop_duplicates()
    out = base.merge(s, on=["campaign_id", "creator_id"], how="left")
    out["sessions"] = out["sessions"].fillna(0).astype("float64")
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class DirectSummary:
    """Direct conversions of one campaign (or all), in total, by channel and by creator."""

    campaign_id: str | None
    orders: int
    revenue: float
    new_customers: int
    by_channel: pd.DataFrame
    by_creator: pd.DataFrame
    notes: tuple[str, ...] = ()

    def summary(self) -> pd.DataFrame:
        """One row per channel plus a total row."""
        total = pd.DataFrame([{"channel": "total", "orders": self.orders, "revenue": self.revenue,
                               "new_customers": self.new_customers}])
        return pd.concat([self.by_channel, total], ignore_index=True)

    def plot(self, ax=None, *, labels: Mapping[str, str] | None = None):
        """Bar chart of directly attributed revenue by creator (largest first), stacked by channel.

        ``labels`` maps creator ids to the names shown (e.g. handles); ids without one are shown as they are.
        """
        from analysis.plotting import axes, format_count_axis

        ax = axes(ax, figsize=(7, 4))
        cols = [c for c in CHANNELS if f"revenue_{c}" in self.by_creator]
        if not self.by_creator.empty:
            by = self.by_creator.sort_values(["revenue", "creator_id"], ascending=[False, True])
            lab = {} if labels is None else dict(labels)
            names = by["creator_id"].astype(str).map(lambda c: lab.get(c, c))
            by.set_index(names)[[f"revenue_{c}" for c in cols]].rename(
                columns=lambda c: c.removeprefix("revenue_").replace("_", " ")).plot.bar(stacked=True, ax=ax)
        ax.set_xlabel("creator")
        ax.set_ylabel("directly attributed revenue")
        ax.set_title("Direct conversions by creator and channel")
        return format_count_axis(ax)

    def to_dict(self) -> dict:
        """JSON-safe dict (plain floats, None for undefined)."""
        def rows(df: pd.DataFrame) -> list[dict]:
            return [{k: (None if (isinstance(v, float) and np.isnan(v)) else
                         (v.item() if hasattr(v, "item") else v)) for k, v in r.items()}
                    for r in df.to_dict("records")]
        return {"campaign_id": self.campaign_id, "orders": int(self.orders), "revenue": float(self.revenue),
                "new_customers": int(self.new_customers), "by_channel": rows(self.by_channel),
                "by_creator": rows(self.by_creator), "notes": list(self.notes)}


def direct_summary(data: Any, campaign_id: str | None = None, *,
                   tail_days: int = ATTRIBUTION_TAIL_DAYS) -> DirectSummary:
    """Totals of :func:`direct_orders`: orders, revenue and new customers, by channel and by creator.

    Every contracted creator of the campaign(s) appears in ``by_creator`` (zeros when none).
    """
    orders = direct_orders(data, campaign_id, tail_days=tail_days)
    notes = tuple(orders.attrs.get("notes", ()))
    g = orders.assign(n=1, nc=orders["new_customer"].astype(bool).astype(int))
    by_channel = (g.groupby("channel")[["n", "revenue", "nc"]].sum()
                  .reindex(list(CHANNELS), fill_value=0).reset_index()
                  .rename(columns={"n": "orders", "nc": "new_customers"}))
    by_channel["revenue"] = by_channel["revenue"].astype(float)
    campaigns = campaign_windows(read_table(data, "campaigns"), campaign_id)
    contracts = read_table(data, "contracts")
    base = contracts.loc[contracts["campaign_id"].isin(campaigns["campaign_id"]), ["creator_id"]].drop_duplicates()
    wide = g.pivot_table(index="creator_id", columns="channel", values=["n", "revenue"], aggfunc="sum",
                         fill_value=0)
    by_creator = base.copy()
    for c in CHANNELS:
        for v, name in (("n", "orders"), ("revenue", "revenue")):
            col = wide[(v, c)] if (v, c) in wide.columns else pd.Series(dtype=float)
            by_creator[f"{name}_{c}"] = by_creator["creator_id"].map(col).fillna(0).astype(float)
    by_creator["orders"] = by_creator[[f"orders_{c}" for c in CHANNELS]].sum(axis=1)
    by_creator["revenue"] = by_creator[[f"revenue_{c}" for c in CHANNELS]].sum(axis=1)
    by_creator = by_creator.sort_values("creator_id").reset_index(drop=True)
    return DirectSummary(campaign_id=campaign_id, orders=int(len(orders)),
                         revenue=float(orders["revenue"].sum()), new_customers=int(g["nc"].sum()),
                         by_channel=by_channel, by_creator=by_creator, notes=notes)
