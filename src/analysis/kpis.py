"""The KPI engine: every registry metric at post, creator, campaign and brand level.

The aggregation is written once against narwhals (:func:`compute_kpis`) and runs on a pandas
or Polars frame, a DuckDB relation or a PySpark DataFrame with the same numbers. On a processed
directory, :func:`kpi_table` reads ``post_metrics.parquet`` lazily through DuckDB (out of core)
and only the small per-post result comes back as pandas.

Rules (see ``docs/metrics.md``):

- post-level base quantities come from each post's final cumulative snapshot within the window
  (last ``date`` <= window end); for the post-campaign window they are the growth between the
  snapshot at the campaign's end and the one at the window's end;
- every ratio is a ratio of sums at the level asked, never a mean of ratios;
- cost (contract fee + product cost) is allocated equally to a creator's campaign posts at post
  level and counted whole at creator level (also for a creator who did not post);
- orders, revenue, new customers and sessions come from direct attribution
  (:mod:`analysis.conversions`) and exist from the creator level up;
- follower growth comes from ``brand_account_daily`` and exists at campaign and brand level;
- a zero denominator makes a ratio undefined (NaN) with the reason in ``.attrs["notes"]``;
  an absent optional table makes its metrics NaN with a note, never an error.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import narwhals as nw
import numpy as np
import pandas as pd
from scipy import stats

from analysis.config import ATTRIBUTION_TAIL_DAYS, DEFAULT_SEED, POST_CAMPAIGN_DAYS, check_alpha
from analysis.conversions import (campaign_windows, data_dir, direct_orders, direct_sessions,
                                  read_table)
from analysis.fileio import atomic_path
from analysis.metrics import BASE_QUANTITIES, DERIVED, REGISTRY, emv_values

#: Levels of :func:`kpi_table` and their entity id columns (first columns of the table).
LEVELS: dict[str, tuple[str, ...]] = {
    "post": ("campaign_id", "creator_id", "post_id"),
    "creator": ("campaign_id", "creator_id"),
    "creator_overall": ("creator_id",),
    "campaign": ("campaign_id",),
    "brand": ("brand",),
}

#: Windows: the campaign (start to end) and the post-campaign window (the
#: :data:`~analysis.config.POST_CAMPAIGN_DAYS` days after the end).
WINDOWS = ("campaign", "post_campaign")

#: Cumulative counts read from ``post_metrics`` snapshots.
SNAPSHOT_COUNTS = ("views", "reach", "likes", "comments", "shares", "saves", "profile_views", "follows",
                   "link_clicks")
#: Snapshot columns that are rates per view (nullable: a missing value is "not reported", never zero).
SNAPSHOT_RATES = ("avg_watch_time_s", "completion_rate")
POST_QUANTITIES = SNAPSHOT_COUNTS + tuple(DERIVED) + ("followers",)
CREATOR_QUANTITIES = ("cost", "orders", "revenue", "new_customers", "sessions")
CAMPAIGN_QUANTITIES = ("brand_follower_growth", "brand_followers_start")
ALL_QUANTITIES = ("n_posts",) + POST_QUANTITIES + CREATOR_QUANTITIES + CAMPAIGN_QUANTITIES


# ---------------------------------------------------------------- backend plumbing

#: The frame types the engine accepts, as named in error messages.
SUPPORTED_FRAMES = ("pandas.DataFrame", "polars.DataFrame", "polars.LazyFrame", "pyarrow.Table",
                    "duckdb.DuckDBPyRelation", "pyspark.sql.DataFrame")
_SPARK_HINT = "PySpark DataFrames need the Spark extra: pip install .[spark] (PySpark and a Java runtime)"


def _check_frame(obj: Any, what: str) -> None:
    """Raise a TypeError naming the supported frame types when ``obj`` is not one of them."""
    if isinstance(obj, (nw.DataFrame, nw.LazyFrame)):
        return
    cls = type(obj)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if cls.__module__.split(".")[0] == "pyspark":
        try:
            import pyspark.sql  # noqa: F401
        except ImportError:
            raise TypeError(f"{what} is a {name} but PySpark cannot be imported; {_SPARK_HINT}") from None
    try:
        nw.from_native(obj)
    except TypeError:
        raise TypeError(f"{what} must be one of {', '.join(SUPPORTED_FRAMES)}; got {name}. "
                        f"{_SPARK_HINT}.") from None


def _like_backend(pdf: pd.DataFrame, like: Any) -> tuple[Any, Any]:
    """Convert the small pandas frame ``pdf`` to the backend of the native frame ``like``.

    Returns the native frame and an object to keep alive until the query has run.
    """
    mod = type(like).__module__.split(".")[0]
    if mod == "pandas":
        return pdf, None
    if mod == "polars":
        import polars as pl

        out = pl.from_pandas(pdf)
        return (out.lazy() if isinstance(like, pl.LazyFrame) else out), None
    if mod in ("duckdb", "_duckdb"):
        import pyarrow as pa

        _kpi_windows = pa.Table.from_pandas(pdf, preserve_index=False)  # noqa: F841 (replacement scan)
        rel = like.query("_kpi_snapshots", "SELECT * FROM _kpi_windows")
        return rel, _kpi_windows
    if mod == "pyspark":
        spark = like.sparkSession
        return spark.createDataFrame(pdf), None
    if mod == "pyarrow":
        import pyarrow as pa

        return pa.Table.from_pandas(pdf, preserve_index=False), None
    _check_frame(like, "snapshots")
    raise TypeError(f"snapshots must be one of {', '.join(SUPPORTED_FRAMES)}; got "
                    f"{type(like).__module__}.{type(like).__qualname__}. {_SPARK_HINT}.")


def _to_pandas(frame: Any, sort_by: Sequence[str] | None = None) -> pd.DataFrame:
    """Collect a narwhals frame (eager or lazy, any backend) to pandas via Arrow.

    With ``sort_by``, rows are sorted by those columns (ascending, stable, nulls last); an Arrow
    result is sorted before the conversion, where it is cheapest.
    """
    if isinstance(frame, nw.LazyFrame) and frame.implementation.is_duckdb():
        # straight to Arrow: one conversion, and no narwhals Arrow wrapper to build (or import)
        rel = frame.to_native()
        table = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.fetch_arrow_table()
    else:
        if isinstance(frame, nw.LazyFrame):
            frame = frame.collect(backend="pyarrow")
        native = frame.to_native()
        if isinstance(native, pd.DataFrame):
            out = native.reset_index(drop=True)
            if sort_by:
                out = out.sort_values(list(sort_by), kind="stable").reset_index(drop=True)
            return out
        table = frame.to_arrow()
    if sort_by:
        table = table.sort_by([(c, "ascending") for c in sort_by])
    return table.to_pandas()


def _f64(name: str, schema: Mapping[str, Any] | None = None) -> nw.Expr:
    """Column ``name`` as Float64 (no cast where ``schema`` says it already is)."""
    if schema is not None and schema.get(name) == nw.Float64:
        return nw.col(name)
    return nw.col(name).cast(nw.Float64)


# ---------------------------------------------------------------- the engine (narwhals)

def _inner_join(left: nw.LazyFrame | nw.DataFrame, right: nw.LazyFrame | nw.DataFrame,
                on: Sequence[str]) -> nw.LazyFrame | nw.DataFrame:
    """Inner join on the ``on`` columns (kept once): the left columns, then the right's others.

    On DuckDB the relation API's ``USING`` join is one relation, where narwhals' general join
    builds five (aliases, join, projection, alias), each of which the engine binds; the result is
    the same frame.
    """
    if isinstance(left, nw.LazyFrame) and left.implementation.is_duckdb():
        lrel, rrel = left.to_native(), right.to_native()
        if rrel.alias == lrel.alias:  # a self-join needs two names
            rrel = rrel.set_alias(f"{lrel.alias}_r")
        return nw.from_native(lrel.join(rrel, list(on), how="inner"))
    return left.join(right, on=list(on), how="inner")


def _post_level(snapshots: Any, windows: Any, *, absent: list[str] | None = None,
                parts: bool = False) -> Any:
    """Per post: base quantities from the final snapshot with ``date`` <= ``window_end``.

    Quantities the inputs cannot define (no column to compute them from) are null columns; with
    ``absent`` (a list) they are left out instead and their names appended to it, so that an
    aggregation does not carry sums of nulls (:func:`compute_kpis` adds them back). With ``parts``
    the final snapshot rows and the quantities' expressions on them are returned instead, for an
    aggregation to evaluate directly (one query step fewer).
    """
    snap = nw.from_native(snapshots)
    win = nw.from_native(windows)
    scols = snap.collect_schema()
    wcols = win.collect_schema()
    date_dtype = scols["date"]
    keep = ["post_id", "date"] + [c for c in SNAPSHOT_COUNTS + ("avg_watch_time_s", "completion_rate")
                                  if c in scols]
    extra = [c for c in scols if c not in keep and c not in wcols and c != "window_end"]
    if keep + extra != list(scols):
        snap = snap.select(keep + extra)
    if wcols["window_end"] != date_dtype:
        win = win.with_columns(nw.col("window_end").cast(date_dtype))
    j = _inner_join(snap, win, ["post_id"])
    j = j.filter(nw.col("date") <= nw.col("window_end"))
    # each post's last snapshot (one row per post even if a date repeats); on DuckDB a window
    # row number, which runs faster than a self-join on the latest date
    s = j.unique(["post_id"], keep="last", order_by=["date"])
    allcols = {**dict(wcols), **dict(scols)}
    exprs: dict[str, nw.Expr | None] = {}  # None: not defined by these inputs
    for c in SNAPSHOT_COUNTS:
        exprs[c] = _f64(c, scols) if c in scols else None
    for name, (factors, observed) in DERIVED.items():
        defined = all(c in allcols for c in tuple(factors) + tuple(observed))
        exprs[name] = _derived(name, factors, observed, allcols) if defined else None
    exprs["followers"] = _f64("followers", allcols) if "followers" in allcols else None
    for name in [k for k, e in exprs.items() if e is None]:
        if absent is None:
            exprs[name] = nw.lit(None, dtype=nw.Float64).alias(name)
        else:
            absent.append(name)
            del exprs[name]
    exprs["n_posts"] = nw.lit(1.0, dtype=nw.Float64).alias("n_posts")
    if parts:
        return s, exprs
    ids = [c for c in list(wcols) + extra
           if c not in ("window_end", "duration_s", "followers") and c not in POST_QUANTITIES]
    return s.select(*[nw.col(c) for c in dict.fromkeys(["post_id"] + ids)], *exprs.values())


def _known(c: str, schema: Mapping[str, Any] | None = None) -> nw.Expr:
    """True where column ``c`` is reported (neither null nor NaN); null-safe on every backend.

    An integer column cannot hold NaN, so only its nulls are checked.
    """
    dtype = schema.get(c) if schema is not None else None
    if dtype is not None and dtype.is_integer():
        return ~nw.col(c).is_null()
    e = _f64(c, schema)
    return ~e.is_null() & ~e.is_nan()


def _derived(name: str, factors: Sequence[str], observed: Sequence[str], cols: Mapping[str, Any]) -> nw.Expr:
    """A :data:`~analysis.metrics.DERIVED` quantity: the product of ``factors`` where every
    factor and every ``observed`` column is reported, null elsewhere (so sums skip the row).

    ``cols`` maps the available columns to their dtypes."""
    need = tuple(dict.fromkeys(tuple(factors) + tuple(observed)))
    if any(c not in cols for c in need):
        return nw.lit(None, dtype=nw.Float64).alias(name)
    prod = _f64(factors[0], cols)
    for c in factors[1:]:
        prod = prod * _f64(c, cols)
    cond = _known(need[0], cols)
    for c in need[1:]:
        cond = cond & _known(c, cols)
    return nw.when(cond).then(prod).alias(name)


def _sum_by(frame: nw.DataFrame | nw.LazyFrame, by: Sequence[str], quantities: Sequence[str]):
    """Sum ``quantities`` by ``by`` (all-null groups stay null)."""
    cols = frame.collect_schema()
    q = [c for c in quantities if c in cols]
    if frame.implementation.is_duckdb() and all(cols[c] == nw.Float64 for c in q):
        # one relation instead of three (each DuckDB relation costs a bind)
        return _sum_in_one(frame, by, {c: nw.col(c) for c in q})
    aggs = []
    for c in q:
        aggs.append(nw.col(c).sum().alias(c))
        aggs.append(nw.col(c).count().alias(f"_n_{c}"))
    g = frame.group_by(list(by)).agg(*aggs)
    # a sum over no known value is unknown, not zero
    return g.with_columns(*[nw.when(nw.col(f"_n_{c}") > 0).then(nw.col(c)).otherwise(None).cast(nw.Float64)
                            .alias(c) for c in q]).drop([f"_n_{c}" for c in q])


def _sum_in_one(frame: nw.DataFrame | nw.LazyFrame, by: Sequence[str], exprs: Mapping[str, nw.Expr],
                *more: nw.Expr):
    """Sum each Float64 expression of ``exprs`` by ``by`` in one aggregation (all-null groups stay null),
    with ``more`` aggregations beside them."""
    return frame.group_by(list(by)).agg(*[nw.when(e.count().cast(nw.Boolean)).then(e.sum()).alias(name)
                                          for name, e in exprs.items()], *more)


def _definable(metric: Any, columns: Any) -> bool:
    """Whether the base quantities in ``columns`` define ``metric`` (both sides of a ratio)."""
    return all(t.lstrip("-") in columns for t in tuple(metric.numerator) + tuple(metric.denominator))


def _side(terms: Sequence[str], cols, weights: Mapping[str, float] | None = None) -> nw.Expr:
    """The sum of ``terms`` (a leading ``-`` subtracts), each times its weight where given."""
    expr = None
    for t in terms:
        q = t.lstrip("-")
        e = _f64(q, cols)
        if weights is not None:
            e = e * float(weights[q])
        if t.startswith("-"):
            e = -e
        expr = e if expr is None else expr + e
    return expr


def compute_metrics(frame: Any, *, emv: Mapping[str, float] | None = None,
                    metrics: Sequence[str] | None = None) -> Any:
    """Add one column per registry metric to a frame of summed base quantities.

    Parameters
    ----------
    frame : native frame or narwhals frame
        One row per entity with base-quantity columns (see
        :data:`analysis.metrics.BASE_QUANTITIES`); an absent quantity makes its metrics null.
    emv : mapping, optional
        Per-action EMV values overriding ``resources/emv.yaml``.
    metrics : sequence of str, optional
        Metrics to add (all by default).

    Returns
    -------
    Same type as ``frame``. Ratios with a zero or unknown denominator are null.
    """
    is_nw = isinstance(frame, (nw.DataFrame, nw.LazyFrame))
    if not is_nw:
        _check_frame(frame, "frame")
    f = frame if is_nw else nw.from_native(frame)
    cols = f.collect_schema()
    weights = emv_values(emv)
    exprs = []
    for name in metrics or REGISTRY:
        m = REGISTRY[name]
        if not _definable(m, cols):
            exprs.append(nw.lit(None, dtype=nw.Float64).alias(name))
            continue
        num = _side(m.numerator, cols, weights if m.weights == "emv" else None)
        if not m.denominator:
            exprs.append((num * m.scale if m.scale != 1 else num).alias(name))
            continue
        den = _side(m.denominator, cols)
        ratio = num / den * m.scale if m.scale != 1 else num / den
        # guarded: Spark's ANSI mode raises on division by zero; the registry says "undefined"
        exprs.append(nw.when(den.cast(nw.Boolean)).then(ratio).alias(name))  # true where den != 0
    out = f.with_columns(*exprs)
    return out if is_nw else out.to_native()


def compute_kpis(snapshots: Any, *, by: Sequence[str], windows: Any = None,
                 emv: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Aggregate cumulative post snapshots to KPIs by ``by``, on any supported engine.

    Parameters
    ----------
    snapshots : pandas.DataFrame, polars frame, pyarrow.Table, DuckDB relation or PySpark DataFrame
        ``post_metrics``-like rows: ``post_id``, ``date`` and cumulative counts (``views``,
        ``reach``, ``likes``, ...), ``avg_watch_time_s``, ``completion_rate`` (null where not
        reported: such a row counts in neither sum of that rate); optionally ``by`` columns,
        ``duration_s`` and ``followers``. A post counts once even if its last date repeats (which
        of the repeated rows is not specified; ``ingest`` folds repeated keys, last row wins).
    by : sequence of str
        Entity columns to group by (from ``snapshots`` or ``windows``).
    windows : frame, optional
        One row per post: ``post_id``, ``window_end`` and any ``by``, ``duration_s`` or
        ``followers`` columns; a pandas frame is converted to the snapshots' engine. Without it
        every snapshot counts (the window ends at the last date).
    emv : mapping, optional
        EMV value overrides.

    Returns
    -------
    pandas.DataFrame
        ``by`` columns, the summed base quantities (``n_posts`` included) and one column per
        registry metric that post-level data define, sorted by ``by``.

    Raises
    ------
    TypeError
        When ``snapshots`` or ``windows`` is not a supported frame (the message names them and
        the ``spark`` extra).
    """
    _check_frame(snapshots, "snapshots")
    if windows is not None and not isinstance(windows, pd.DataFrame):
        _check_frame(windows, "windows")
    keep = None
    if windows is None:
        s = nw.from_native(snapshots)
        windows = s.select("post_id").unique().with_columns(
            window_end=nw.lit(pd.Timestamp("2262-01-01"))).to_native()
    elif isinstance(windows, pd.DataFrame):
        windows, keep = _like_backend(windows, snapshots)
    absent: list[str] = []
    quantities = ("n_posts",) + POST_QUANTITIES
    rows, exprs = _post_level(snapshots, windows, absent=absent, parts=True)
    if rows.implementation.is_duckdb():
        # the sums evaluate the post-level expressions directly: one relation fewer to bind
        agg = _sum_in_one(rows, by, {k: e for k, e in exprs.items() if k != "n_posts"},
                          nw.len().cast(nw.Float64).alias("n_posts"))
    else:
        post = rows.select(*[nw.col(c) for c in dict.fromkeys(by)], *exprs.values())
        agg = _sum_by(post, by, [q for q in quantities if q not in absent])
    present = set(agg.collect_schema())
    defined = [name for name in REGISTRY if _definable(REGISTRY[name], present)]
    out = compute_metrics(agg, emv=emv, metrics=defined)
    res = _to_pandas(out, sort_by=by)
    del keep
    # quantities and metrics the inputs do not define are null, in their usual places (added here,
    # on the small result, rather than carried through the query as null columns)
    ids = [c for c in res.columns if c not in quantities and c not in REGISTRY]
    order = ids + [q for q in quantities if q not in ids] + [m for m in REGISTRY if m not in quantities]
    return res.reindex(columns=order)  # the added columns are float64 NaN


# ---------------------------------------------------------------- processed data -> KPI tables

def _snapshots(data: Any):
    """post_metrics as a lazy DuckDB relation when on disk, else the in-memory frame."""
    root = data_dir(data)
    if root is not None and (root / "post_metrics.parquet").exists():
        import duckdb

        con = duckdb.connect()
        return con.read_parquet(str(root / "post_metrics.parquet")), con
    return read_table(data, "post_metrics"), None


def _post_base(data: Any, campaigns: pd.DataFrame, window: str, notes: list[str]) -> pd.DataFrame:
    """Per campaign post: ids, brand and post-level base quantities in the window."""
    posts = read_table(data, "posts")
    creators = read_table(data, "creators")
    posts = posts[posts["campaign_id"].isin(campaigns["campaign_id"])]
    w = posts[["post_id", "campaign_id", "creator_id"] + (["duration_s"] if "duration_s" in posts else [])]
    w = w.merge(campaigns[["campaign_id", "brand", "start_date", "end_date"]], on="campaign_id")
    w = w.merge(creators[["creator_id", "followers"]], on="creator_id", how="left")
    ends = pd.to_datetime(w["end_date"]).astype("datetime64[ms]")
    snap, con = _snapshots(data)
    base_cols = ["post_id", "campaign_id", "creator_id", "brand"] + [c for c in ("duration_s", "followers")
                                                                      if c in w]
    if window == "campaign":
        win = w[base_cols].assign(window_end=ends)
        res = compute_post_level(snap, win)
    else:
        hi = compute_post_level(snap, w[base_cols].assign(
            window_end=ends + pd.Timedelta(days=POST_CAMPAIGN_DAYS)))
        lo = compute_post_level(snap, w[base_cols].assign(window_end=ends)).set_index("post_id")
        growth = [c for c in POST_QUANTITIES if c != "followers"]
        hi = hi.set_index("post_id")
        lo = lo.reindex(hi.index)
        hi[growth] = hi[growth] - lo[growth].fillna(0.0)
        res = hi.reset_index()
    if con is not None:
        con.close()
    missing = set(posts["post_id"]) - set(res["post_id"])
    if missing:
        notes.append(f"{len(missing)} campaign post(s) have no metrics snapshot in the window")
    # engines return rows in no fixed order: sort, so that seeded resampling over posts is reproducible
    return res.sort_values(["campaign_id", "creator_id", "post_id"], kind="stable").reset_index(drop=True)


def compute_post_level(snapshots: Any, windows: pd.DataFrame) -> pd.DataFrame:
    """Per-post base quantities (final snapshot with ``date`` <= ``window_end``), as pandas."""
    _check_frame(snapshots, "snapshots")
    win, keep = _like_backend(windows, snapshots)
    res = _to_pandas(_post_level(snapshots, win))
    del keep
    return res


def _brand_growth(data: Any, campaigns: pd.DataFrame, window: str, notes: list[str]) -> pd.DataFrame | None:
    """Brand followers at the window's start and growth over it, per campaign."""
    bad = read_table(data, "brand_account_daily", required=False)
    if bad is None:
        notes.append("no brand_account_daily table: follower_growth is undefined")
        return None
    bad = bad.assign(date=pd.to_datetime(bad["date"])).sort_values(["brand_account", "date"])
    rows = []
    for c in campaigns.itertuples(index=False):
        start, end = pd.Timestamp(c.start_date), pd.Timestamp(c.end_date)
        if window == "post_campaign":
            start, end = end + pd.Timedelta(days=1), end + pd.Timedelta(days=POST_CAMPAIGN_DAYS)
        s = bad[bad["brand_account"] == c.brand_account]
        before = s[s["date"] < start]
        inside = s[(s["date"] >= start) & (s["date"] <= end)]
        if inside.empty:
            rows.append((c.campaign_id, np.nan, np.nan))
            continue
        f0 = float(before["followers"].iloc[-1]) if not before.empty else float(inside["followers"].iloc[0])
        rows.append((c.campaign_id, float(inside["followers"].iloc[-1]) - f0, f0))
    return pd.DataFrame(rows, columns=["campaign_id", "brand_follower_growth", "brand_followers_start"])


def _load_campaigns(data: Any, campaign_id: str | None) -> pd.DataFrame:
    c = read_table(data, "campaigns")
    c = c.assign(campaign_id=c["campaign_id"].astype(str))
    if "brand" not in c:
        c = c.assign(brand=c.get("brand_account", "brand"))
    return campaign_windows(c, campaign_id)


def level_tables(data: Any, *, campaign_id: str | None = None, window: str = "campaign"
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """Base quantities per post, per creator within a campaign and per campaign.

    Returns ``(posts, creators, campaigns, notes)``; every frame holds the entity ids and the
    summed base quantities (no metrics yet). Used by :func:`kpi_table` and :func:`kpi_intervals`.
    """
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {WINDOWS}, got {window!r}")
    notes: list[str] = []
    camps = _load_campaigns(data, campaign_id)
    post = _post_base(data, camps, window, notes)
    contracts = read_table(data, "contracts")
    contracts = contracts[contracts["campaign_id"].isin(camps["campaign_id"])].copy()
    contracts["cost"] = contracts["fee"].astype(float).fillna(0) + contracts["product_cost"].astype(float).fillna(0)
    cost = contracts.groupby(["campaign_id", "creator_id"], as_index=False)["cost"].sum()
    # equal allocation of a contract's cost to the creator's campaign posts
    all_posts = read_table(data, "posts")
    n_posts = all_posts[all_posts["campaign_id"].isin(camps["campaign_id"])].groupby(
        ["campaign_id", "creator_id"]).size().rename("_np").reset_index()
    alloc = cost.merge(n_posts, on=["campaign_id", "creator_id"], how="left")
    alloc["_alloc"] = alloc["cost"] / alloc["_np"]
    post = post.merge(alloc[["campaign_id", "creator_id", "_alloc"]], on=["campaign_id", "creator_id"], how="left")
    post["cost"] = post.pop("_alloc") if window == "campaign" else 0.0
    if window == "post_campaign":
        notes.append("post_campaign window: contract cost is counted in the campaign window only (cost = 0)")
    for q in CREATOR_QUANTITIES[1:] + CAMPAIGN_QUANTITIES:
        post[q] = np.nan
    no_contract = post["cost"].isna().sum() if window == "campaign" else 0
    if no_contract:
        notes.append(f"{no_contract} post(s) by creators without a contract: cost undefined for them")

    # creator within campaign
    pnw = nw.from_native(post)
    creator = _to_pandas(_sum_by(pnw, ["campaign_id", "creator_id", "brand"], ("n_posts",) + POST_QUANTITIES))
    keys = contracts[["campaign_id", "creator_id"]].drop_duplicates().merge(
        camps[["campaign_id", "brand"]], on="campaign_id")
    creator = keys.merge(creator, on=["campaign_id", "creator_id", "brand"], how="outer")
    creator["n_posts"] = creator["n_posts"].fillna(0.0)
    creator = creator.merge(cost, on=["campaign_id", "creator_id"], how="left")
    if window == "post_campaign":
        creator["cost"] = 0.0
    orders = direct_orders(data, campaign_id, window=window)
    orders = orders[orders["campaign_id"].isin(camps["campaign_id"])]
    if orders.attrs.get("notes"):
        notes.extend(orders.attrs["notes"])
        for q in ("orders", "revenue", "new_customers"):
            creator[q] = np.nan
    else:
        o = orders.assign(orders=1.0, new_customers=orders["new_customer"].astype(float))
        o = o.groupby(["campaign_id", "creator_id"], as_index=False)[["orders", "revenue", "new_customers"]].sum()
        creator = creator.merge(o, on=["campaign_id", "creator_id"], how="left")
        creator[["orders", "revenue", "new_customers"]] = creator[["orders", "revenue", "new_customers"]].fillna(0.0)
    sess = direct_sessions(data, campaign_id, window=window)
    if sess is None:
        notes.append("no web_sessions_daily table: sessions and conversion_rate are undefined")
        creator["sessions"] = np.nan
    else:
        creator = creator.merge(sess, on=["campaign_id", "creator_id"], how="left")
        creator["sessions"] = creator["sessions"].fillna(0.0)
    creator["brand_follower_growth"] = np.nan
    creator["brand_followers_start"] = np.nan

    campaign = _to_pandas(_sum_by(nw.from_native(creator[["campaign_id", "brand"] + list(ALL_QUANTITIES[:-2])]),
                                  ["campaign_id", "brand"], ALL_QUANTITIES[:-2]))
    growth = _brand_growth(data, camps, window, notes)
    if growth is not None:
        campaign = campaign.merge(growth, on="campaign_id", how="left")
    else:
        campaign["brand_follower_growth"] = np.nan
        campaign["brand_followers_start"] = np.nan
    campaign = camps[["campaign_id"]].merge(campaign, on="campaign_id", how="left")
    return post, creator, campaign, notes


def _undefined_notes(table: pd.DataFrame) -> list[str]:
    out = []
    for m in REGISTRY.values():
        if not m.denominator or m.name not in table:
            continue
        den = table[[q for q in m.denominator if q in table]].sum(axis=1, min_count=1)
        zero = int((den == 0).sum())
        if zero:
            out.append(f"{m.name} undefined for {zero} row(s): {' + '.join(m.denominator)} is zero")
    return out


def kpi_table(data: Any, *, level: str, campaign_id: str | None = None, window: str = "campaign",
              emv: Mapping[str, float] | None = None, include_base: bool = False) -> pd.DataFrame:
    """One row per entity, one column per registry metric.

    Parameters
    ----------
    data : path or Dataset
        Processed data (a directory written by ``ingest`` or an ``analysis.data.Dataset``).
    level : {"post", "creator", "creator_overall", "campaign", "brand"}
        ``creator`` is a creator within a campaign; ``creator_overall`` a creator across campaigns;
        ``brand`` the brand's portfolio of campaigns.
    campaign_id : str, optional
        Restrict to one campaign.
    window : {"campaign", "post_campaign"}
        The campaign window, or the :data:`~analysis.config.POST_CAMPAIGN_DAYS` days after it.
    emv : mapping, optional
        EMV per-action value overrides.
    include_base : bool
        Also return the summed base quantities (prefixed ``base_``).

    Returns
    -------
    pandas.DataFrame
        Entity id columns first, then one float column per metric of
        :data:`analysis.metrics.REGISTRY`. ``.attrs["notes"]`` explains undefined values.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {list(LEVELS)}, got {level!r}")
    post, creator, campaign, notes = level_tables(data, campaign_id=campaign_id, window=window)
    if level == "post":
        base = post
        notes.append("orders, revenue, sessions and new customers are attributed to creators, not posts: "
                     "undefined at post level")
    elif level == "creator":
        base = creator
    elif level == "creator_overall":
        base = _to_pandas(_sum_by(nw.from_native(creator), ["creator_id"], ALL_QUANTITIES))
    elif level == "campaign":
        base = campaign
    else:
        base = _to_pandas(_sum_by(nw.from_native(campaign.drop(columns=list(CAMPAIGN_QUANTITIES))),
                                  ["brand"], ALL_QUANTITIES[:-2]))
        camps = _load_campaigns(data, campaign_id)
        span = camps.groupby("brand").agg(start_date=("start_date", "min"), end_date=("end_date", "max"),
                                          brand_account=("brand_account", "first")).reset_index()
        growth = _brand_growth(data, span.assign(campaign_id=span["brand"]), window, [])
        if growth is None:
            base["brand_follower_growth"] = np.nan
            base["brand_followers_start"] = np.nan
        else:
            base = base.merge(growth.rename(columns={"campaign_id": "brand"}), on="brand", how="left")
    if level in ("post", "creator", "creator_overall"):
        notes.append(f"follower_growth is a brand-account measure: undefined at {level} level")
    ids = list(LEVELS[level])
    for q in ALL_QUANTITIES:
        if q not in base:
            base[q] = np.nan
    base = base[ids + list(ALL_QUANTITIES)].sort_values(ids, kind="stable").reset_index(drop=True)
    base[list(ALL_QUANTITIES)] = base[list(ALL_QUANTITIES)].astype("float64")
    full = compute_metrics(base, emv=emv)
    out = full[ids + list(REGISTRY)].copy()
    out[list(REGISTRY)] = out[list(REGISTRY)].astype("float64")
    if include_base:
        out = pd.concat([out, base[list(ALL_QUANTITIES)].add_prefix("base_")], axis=1)
    out.attrs["notes"] = list(dict.fromkeys(notes + _undefined_notes(full)))
    out.attrs["level"] = level
    out.attrs["window"] = window
    return out


# ---------------------------------------------------------------- intervals

#: Interval methods of :func:`kpi_intervals` and :func:`ratio_interval` (the first is the default);
#: ``docs/metrics.md`` ("Intervals") explains each and why the default was chosen.
INTERVAL_METHODS = ("bootstrap", "bca", "delta", "delta_log")
DEFAULT_INTERVAL_METHOD = "bootstrap"

_METHOD_LABELS = {
    "delta_log": "delta method on the log scale, posts as clusters",
    "delta": "delta method (ratio of sums), posts as clusters",
    "bca": "BCa cluster bootstrap over posts",
    "bootstrap": "percentile cluster bootstrap over posts",
}


def _boot_counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """(n_boot, n) counts of each unit in each resample, from one index matrix."""
    idx = rng.integers(0, n, size=(n_boot, n))
    flat = (idx + (np.arange(n_boot)[:, None] * n)).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def _ratio_stat(num: np.ndarray, den: np.ndarray, axis: int = -1) -> np.ndarray:
    """Ratio of sums along ``axis`` (vectorised statistic for :func:`scipy.stats.bootstrap`)."""
    n, d = np.sum(num, axis=axis), np.sum(den, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(d != 0, n / np.where(d != 0, d, 1.0), np.nan)


def ratio_interval(num: Any, den: Any, *, method: str = DEFAULT_INTERVAL_METHOD, alpha: float = 0.05,
                   scale: float = 1.0, n_boot: int = 2000, rng: np.random.Generator | int | None = None,
                   counts: np.ndarray | None = None) -> tuple[float | None, float | None, str]:
    """Confidence interval for a ratio of sums ``scale * sum(num) / sum(den)`` over clusters.

    Each element of ``num`` and ``den`` is one cluster's (post's or creator's) contribution; the
    clusters are treated as a sample from the population of such clusters.

    Parameters
    ----------
    num, den : array-like
        Per-cluster numerator and denominator (missing values count as zero, as in the sums).
    method : {"bootstrap", "bca", "delta", "delta_log"}
        ``"bootstrap"`` (default): percentile cluster bootstrap. ``"delta"``: linearisation of the ratio, standard error
        ``sqrt(n / (n - 1) * sum(d_i^2)) / |sum(den)|`` with residuals
        ``d_i = num_i - R den_i``, interval ``R +/- z se``. ``"delta_log"``: the same standard error
        on the log scale, ``R exp(+/- z se / R)``; positive and asymmetric like the ratio itself
        (falls back to ``"delta"`` with a note when the ratio or a contribution is negative).
        ``"bca"``: bias-corrected and accelerated cluster bootstrap (:func:`scipy.stats.bootstrap`,
        paired).
    alpha : float
        1 - confidence level.
    scale : float
        Multiplier of the ratio (the metric's scale, e.g. 1000 for CPM).
    n_boot : int
        Bootstrap resamples (bootstrap methods only).
    rng : numpy Generator or int, optional
        Random stream (bootstrap methods only).
    counts : ndarray, optional
        Precomputed ``(n_boot, n)`` resample counts (percentile bootstrap), to share resamples
        across metrics.

    Returns
    -------
    tuple
        ``(ci_low, ci_high, note)``; the bounds are None with the reason in ``note`` when no
        interval can be given (fewer than 2 clusters, zero denominator, degenerate resamples).
    """
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be one of {INTERVAL_METHODS}, got {method!r}")
    check_alpha(alpha)
    y = np.nan_to_num(np.asarray(num, dtype=np.float64), nan=0.0)
    x = np.nan_to_num(np.asarray(den, dtype=np.float64), nan=0.0)
    n = len(y)
    if n < 2:
        return None, None, "fewer than 2 clusters: no interval"
    Y, X = float(y.sum()), float(x.sum())
    if X == 0:
        return None, None, "undefined"
    r = Y / X
    z = float(stats.norm.ppf(1 - alpha / 2))
    if method in ("delta", "delta_log"):
        d = y - r * x
        se = float(np.sqrt(n / (n - 1) * np.sum(d * d)) / abs(X))
        if method == "delta_log":
            if r > 0 and (y >= 0).all() and (x >= 0).all():
                f = float(np.exp(z * se / r))
                return r / f * scale, r * f * scale, ""
            note = "log scale needs a positive ratio: delta method on the linear scale"
        else:
            note = ""
        return (r - z * se) * scale, (r + z * se) * scale, note
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if method == "bca":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap((y, x), _ratio_stat, paired=True, vectorized=True, method="BCa",
                                  n_resamples=n_boot, confidence_level=1 - alpha, rng=gen)
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return None, None, "degenerate bootstrap distribution (e.g. a zero denominator in resamples)"
        return lo * scale, hi * scale, ""
    w = counts if counts is not None else _boot_counts(gen, n, n_boot)
    with np.errstate(divide="ignore", invalid="ignore"):
        den_b = w @ x
        rb = np.where(den_b != 0, (w @ y) / np.where(den_b != 0, den_b, 1.0), np.nan)
    rb = rb[np.isfinite(rb)]
    if len(rb) < 0.9 * len(w):
        return None, None, "denominator zero in too many resamples: no interval"
    lo, hi = np.quantile(rb, [alpha / 2, 1 - alpha / 2])
    return float(lo) * scale, float(hi) * scale, ""


def _side_values(terms: Sequence[str], u: pd.DataFrame, weights: Mapping[str, float] | None) -> np.ndarray:
    """Per-cluster sum of a metric side (signs and EMV weights applied; missing counts as zero)."""
    tot = np.zeros(len(u))
    for t in terms:
        q = t.lstrip("-")
        v = np.nan_to_num(u[q].to_numpy(dtype=np.float64), nan=0.0) * (weights[q] if weights else 1.0)
        tot = tot - v if t.startswith("-") else tot + v
    return tot


def kpi_intervals(data: Any, *, level: str = "campaign", campaign_id: str | None = None,
                  window: str = "campaign", method: str = DEFAULT_INTERVAL_METHOD, n_boot: int = 2000,
                  alpha: float = 0.05, seed: int = DEFAULT_SEED,
                  emv: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Point values and confidence intervals for every ratio metric in the registry.

    Rates and cost ratios are ratios of sums over the entity's posts; their sampling variation is
    between posts, so posts are the clusters: every interval treats the entity's posts as a sample
    of the posts it could have published. Metrics built on orders, revenue or sessions (attributed
    per creator, not per post) use the entity's creators as clusters. Numerator and denominator
    always come from the same clusters. Totals are counts, not estimates: their interval is null
    with a note. Follower growth rates come from one account series and get no interval.

    Parameters
    ----------
    data : path or Dataset
        Processed data.
    level : {"creator", "creator_overall", "campaign", "brand"}
        Entities to report (post level has no between-post variation).
    campaign_id, window, emv
        As in :func:`kpi_table`.
    method : {"bootstrap", "bca", "delta", "delta_log"}
        Interval method, see :func:`ratio_interval` and ``docs/metrics.md`` ("Intervals"). The
        default percentile cluster bootstrap kept the closest to nominal coverage in the
        simulation study of ``docs/performance.md`` when a few posts dominate the views; its
        interval is then lopsided around the estimate (the resamples that omit the dominant post
        move the ratio towards the other posts' rate), which is the honest shape. The delta
        methods are symmetric (on their scale) and under-cover in that case.
    n_boot : int
        Bootstrap resamples (bootstrap methods).
    alpha : float
        1 - confidence level.
    seed : int
        Seed of the bootstrap methods; each entity uses its own stream derived from it, so
        results do not depend on which other entities are present.

    Returns
    -------
    pandas.DataFrame
        Entity ids, ``metric``, ``value``, ``ci_low``, ``ci_high``, ``method``, ``note``.
    """
    if level == "post" or level not in LEVELS:
        raise ValueError("kpi_intervals level must be one of 'creator', 'creator_overall', 'campaign', 'brand'")
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be one of {INTERVAL_METHODS}, got {method!r}")
    table = kpi_table(data, level=level, campaign_id=campaign_id, window=window, emv=emv)
    post, creator, _, _ = level_tables(data, campaign_id=campaign_id, window=window)
    ids = list(LEVELS[level])
    weights = emv_values(emv)
    post_q = set(POST_QUANTITIES) | {"cost", "n_posts"}
    rows = []
    for i, ent in enumerate(table[ids].itertuples(index=False)):
        key = dict(zip(ids, ent))
        sel_p = np.logical_and.reduce([post[k] == v for k, v in key.items()]) if len(post) else np.array([], bool)
        sel_c = np.logical_and.reduce([creator[k] == v for k, v in key.items()])
        units = {"post": post[sel_p], "creator": creator[sel_c]}  # posts arrive sorted (_post_base)
        rng = np.random.default_rng([seed, i])
        counts_cache: dict[str, np.ndarray] = {}
        for m in REGISTRY.values():
            value = table.iloc[i][m.name]
            value = None if pd.isna(value) else float(value)
            lo = hi = None
            if not m.is_ratio:
                label, note = "none", "total: a count, not an estimate"
            elif set(m.quantities) & set(CAMPAIGN_QUANTITIES):
                label, note = "none", "one brand-account series: no between-post interval"
            else:
                cluster = "post" if set(m.quantities) <= post_q else "creator"
                u = units[cluster]
                label = _METHOD_LABELS[method].replace("posts", f"{cluster}s")
                if value is None:
                    note = "undefined"
                elif len(u) < 2:
                    note = f"fewer than 2 {cluster}s: no interval"
                else:
                    num = _side_values(m.numerator, u, weights if m.weights == "emv" else None)
                    den = _side_values(m.denominator, u, None)
                    counts = None
                    if method == "bootstrap":
                        if cluster not in counts_cache:
                            counts_cache[cluster] = _boot_counts(rng, len(u), n_boot)
                        counts = counts_cache[cluster]
                    lo, hi, note = ratio_interval(num, den, method=method, alpha=alpha, scale=m.scale,
                                                  n_boot=n_boot, rng=rng, counts=counts)
            rows.append({**key, "metric": m.name, "value": value, "ci_low": lo, "ci_high": hi,
                         "method": label, "note": note})
    out = pd.DataFrame(rows)
    out[["value", "ci_low", "ci_high"]] = out[["value", "ci_low", "ci_high"]].astype("float64")
    out.attrs["method"] = method
    return out


# ---------------------------------------------------------------- daily series

def daily_series(data: Any, campaign_id: str, *, before_days: int = ATTRIBUTION_TAIL_DAYS,
                 after_days: int = ATTRIBUTION_TAIL_DAYS) -> pd.DataFrame:
    """Daily views and engagements of a campaign's posts beside the brand account's followers.

    Parameters
    ----------
    data : path or Dataset
        Processed data.
    campaign_id : str
        The campaign.
    before_days, after_days : int
        Days shown before the start and after the end.

    Returns
    -------
    pandas.DataFrame
        ``date``, ``views``, ``engagements`` (daily increments of the campaign posts),
        ``cum_views``, ``cum_engagements``, ``followers``, ``new_followers`` (brand account; NaN
        where absent) and ``in_campaign`` (date within start..end).
    """
    camp = _load_campaigns(data, campaign_id).iloc[0]
    start = pd.Timestamp(camp["start_date"]) - pd.Timedelta(days=before_days)
    end = pd.Timestamp(camp["end_date"]) + pd.Timedelta(days=after_days)
    dates = pd.DataFrame({"date": pd.date_range(start, end, freq="D").astype("datetime64[ms]")})
    posts = read_table(data, "posts")
    ids = set(posts.loc[posts["campaign_id"] == campaign_id, "post_id"])
    daily = read_table(data, "post_daily", required=False)
    eng = ["likes", "comments", "shares", "saves"]
    if daily is None:
        pm = read_table(data, "post_metrics")
        pm = pm[pm["post_id"].isin(ids)].sort_values(["post_id", "date"])
        daily = pm[["post_id", "date"]].copy()
        for c in ["views"] + eng:
            daily[c] = pm.groupby("post_id")[c].diff().fillna(pm[c]).clip(lower=0)
    d = daily[daily["post_id"].isin(ids)].assign(date=lambda x: pd.to_datetime(x["date"]).astype("datetime64[ms]"))
    d = d.assign(engagements=d[eng].sum(axis=1)).groupby("date", as_index=False)[["views", "engagements"]].sum()
    out = dates.merge(d, on="date", how="left")
    out[["views", "engagements"]] = out[["views", "engagements"]].fillna(0.0).astype(float)
    out["cum_views"] = out["views"].cumsum()
    out["cum_engagements"] = out["engagements"].cumsum()
    bad = read_table(data, "brand_account_daily", required=False)
    if bad is not None:
        b = bad[bad["brand_account"] == camp["brand_account"]][["date", "followers", "new_followers"]]
        b = b.assign(date=pd.to_datetime(b["date"]).astype("datetime64[ms]"))
        out = out.merge(b, on="date", how="left")
    else:
        out["followers"] = np.nan
        out["new_followers"] = np.nan
    out["in_campaign"] = (out["date"] >= camp["start_date"]) & (out["date"] <= camp["end_date"])
    return out


# ---------------------------------------------------------------- CLI

def cli(args: argparse.Namespace) -> int:
    """``python -m analysis kpis --data DIR --level LEVEL [--campaign ID] --out FILE``."""
    from analysis.cli import CommandError

    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise CommandError(f"--out must end in .csv or .parquet, got {out.name!r}")
    if not Path(args.data).is_dir():
        raise CommandError(f"--data {str(args.data)!r} is not a directory; run `python -m analysis ingest` first")
    try:
        table = kpi_table(args.data, level=args.level, campaign_id=args.campaign)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    with atomic_path(out) as tmp:
        if suffix == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
    print(f"wrote {len(table)} {args.level} row(s) x {len(REGISTRY)} metrics to {out}")
    for note in table.attrs.get("notes", []):
        print(f"note: {note}")
    return 0


__all__ = ["LEVELS", "WINDOWS", "INTERVAL_METHODS", "compute_kpis", "compute_metrics", "kpi_table",
           "kpi_intervals", "ratio_interval",
           "daily_series", "level_tables", "BASE_QUANTITIES", "cli"]
