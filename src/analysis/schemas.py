"""The canonical data model: one pandera schema per raw table, plus the cross-table rules.

Each table is declared once, as a list of :class:`ColumnSpec`; the pandera schemas, the type
coercion done by :mod:`analysis.ingest` and ``docs/data_model.md`` are all derived from these
declarations, so they cannot disagree. Regenerate the document with::

    python -m analysis.schemas > docs/data_model.md

Column kinds
------------
``id``, ``text``         strings (ids are never numbers: ``007`` stays ``007``)
``category``             a string from a fixed list of allowed values
``count``                whole number >= 0 (nullable ``Int64``)
``amount``               number >= 0 (money, seconds)
``number``               any number
``share``, ``rate``      number in [0, 1]
``score``                whole number from 1 to 5
``binary``               0 or 1
``flag``                 true/false (also accepts 1/0, yes/no)
``date``                 ISO 8601 calendar date, stored as ``datetime64[ms]`` at midnight
``timestamp``            ISO 8601 date-time with an offset (no offset means UTC), stored in UTC
``timezone``             an IANA time zone name such as ``Europe/Berlin``
``currency``             a three-letter ISO 4217 code such as ``EUR``
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache
from zoneinfo import available_timezones

import pandas as pd


def _import_pandera():
    """Import ``pandera.pandas`` without its attempt to import ``pyspark.pandas``.

    pandera imports ``pyspark.pandas`` whenever PySpark is installed (the ``spark`` extra). Under
    pandas 3 that import fails anyway (pyspark.pandas needs pandas < 3), after printing a
    FutureWarning into every notebook and costing about 0.1 s; marking the module absent while
    pandera loads makes it skip the attempt. Nothing is changed when pandas is older or
    ``pyspark.pandas`` was already imported.
    """
    block = int(pd.__version__.split(".")[0]) >= 3 and "pyspark.pandas" not in sys.modules
    if block:
        sys.modules["pyspark.pandas"] = None  # type: ignore[assignment]
    try:
        import pandera.pandas as pandera_pandas
    finally:
        if block and sys.modules.get("pyspark.pandas", False) is None:
            del sys.modules["pyspark.pandas"]
    return pandera_pandas


pa = _import_pandera()

#: Earliest and latest dates and timestamps accepted anywhere.
DATE_MIN = pd.Timestamp("2015-01-01")
DATE_MAX = pd.Timestamp("2100-12-31")

#: A cumulative count may fall from one snapshot to the next by at most this share of the earlier
#: value or this many units (whichever is larger) before the drop is an error; smaller drops are
#: treated as the platform's corrections and cleaned on ingest.
CUMULATIVE_DROP_REL = 0.05
CUMULATIVE_DROP_ABS = 100

#: Audience shares of one creator and dimension must sum to 1 within this tolerance.
SHARE_SUM_TOLERANCE = 0.02

OBJECTIVES = ("awareness", "launch", "traffic", "engagement", "conversions")
DISCLOSURE_LABELS = ("none", "paid_partnership", "promotional")
AUDIENCE_DIMENSIONS = ("age", "gender", "country")
GEO_GROUPS = ("treatment", "control")
SURVEY_GROUPS = ("exposed", "control")
MENTION_SOURCES = ("dm", "mention", "review")

#: Cumulative-as-reported counts of ``post_metrics`` (``post_daily`` holds their daily increments).
CUMULATIVE_COUNTS = ("views", "reach", "likes", "comments", "shares", "saves", "profile_views",
                     "follows", "link_clicks", "paid_views")

#: Metric names of CONTRACT section 6; used for ``campaign_targets.kpi`` until the registry exists.
CONTRACT_METRICS = (
    "views", "reach", "likes", "comments", "shares", "saves", "engagements", "engagement_rate",
    "engagement_rate_reach", "engagement_rate_followers", "completion_rate", "avg_watch_time_s",
    "profile_views", "follows", "link_clicks", "ctr", "sessions", "orders", "conversion_rate",
    "revenue", "aov", "new_customers", "follower_growth", "follower_growth_pct", "cost", "cpm", "cpv",
    "cpe", "cpc", "cpa", "roas", "roi", "emv",
)

KIND_DTYPE = {
    "id": "str", "text": "str", "category": "str", "timezone": "str", "currency": "str",
    "count": "Int64", "score": "Int64", "binary": "Int64",
    "amount": "float64", "number": "float64", "share": "float64", "rate": "float64",
    "flag": "boolean", "date": "datetime64[ms]", "timestamp": "datetime64[ms, UTC]",
}

KIND_RULE = {
    "id": "string id",
    "text": "free text",
    "category": "one of: {allowed}",
    "timezone": "IANA time zone name",
    "currency": "three-letter currency code",
    "count": "whole number >= 0",
    "score": "whole number from 1 to 5",
    "binary": "0 or 1",
    "amount": "number >= 0",
    "number": "number",
    "share": "number from 0 to 1",
    "rate": "number from 0 to 1",
    "flag": "true or false",
    "date": "ISO date from 2015-01-01 to 2100-12-31",
    "timestamp": "ISO date-time with offset (UTC if none), 2015-01-01 to 2100-12-31",
}


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a canonical table.

    Parameters
    ----------
    name : str
        Canonical column name.
    kind : str
        One of the kinds listed in the module docstring.
    description : str
        What the column holds, in plain words.
    nullable : bool
        Whether a cell may be empty.
    required : bool
        Whether the column must be present in the file (absent optional columns are added empty).
    allowed : tuple of str, optional
        Allowed values of a ``category`` column.
    """

    name: str
    kind: str
    description: str
    nullable: bool = False
    required: bool = True
    allowed: tuple[str, ...] | None = None

    @property
    def dtype(self) -> str:
        """The pandas dtype of the column after ingest."""
        return KIND_DTYPE[self.kind]

    @property
    def rule(self) -> str:
        """The column's validation rule in plain words."""
        return KIND_RULE[self.kind].format(allowed=", ".join(self.allowed or ()))


@dataclass(frozen=True)
class ForeignKey:
    """Columns of a table that must match a key of another table (empty values are not checked)."""

    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class TableSpec:
    """One canonical raw table: its columns, key, foreign keys and whether it may be absent."""

    name: str
    description: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]
    optional: bool = False
    foreign_keys: tuple[ForeignKey, ...] = ()
    #: A duplicated key is folded on ingest (last row wins) instead of being an error.
    dedupe: bool = False

    def column(self, name: str) -> ColumnSpec:
        """Return the spec of column ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _c(name: str, kind: str, description: str, **kw) -> ColumnSpec:
    # A column whose cells may be empty may also be absent from the file (it is added empty).
    kw.setdefault("required", not kw.get("nullable", False))
    return ColumnSpec(name, kind, description, **kw)


def _fk(cols: str | tuple[str, ...], table: str, ref: str | tuple[str, ...] | None = None) -> ForeignKey:
    cols = (cols,) if isinstance(cols, str) else cols
    ref = cols if ref is None else ((ref,) if isinstance(ref, str) else ref)
    return ForeignKey(cols, table, ref)


_COUNT_DESC = "cumulative {} since posting, as reported on that date"

TABLES: dict[str, TableSpec] = {t.name: t for t in (
    TableSpec("campaigns", "One row per campaign.", (
        _c("campaign_id", "id", "campaign identifier"),
        _c("brand", "text", "brand running the campaign"),
        _c("name", "text", "campaign name"),
        _c("objective", "category", "primary objective, which selects the primary KPIs",
           allowed=OBJECTIVES),
        _c("start_date", "date", "first day of the campaign (campaign time zone)"),
        _c("end_date", "date", "last day of the campaign; not before start_date"),
        _c("budget", "amount", "total budget in the campaign currency", nullable=True),
        _c("currency", "currency", "currency of every amount of the campaign"),
        _c("brand_account", "id", "the brand's TikTok account (key of brand_account_daily)"),
        _c("timezone", "timezone", "time zone in which the campaign's calendar dates are counted"),
    ), key=("campaign_id",)),
    TableSpec("campaign_targets", "Targets per campaign and KPI.", (
        _c("campaign_id", "id", "campaign identifier"),
        _c("kpi", "text", "a metric name of the metric registry"),
        _c("target", "number", "target value in the metric's unit"),
    ), key=("campaign_id", "kpi"), foreign_keys=(_fk("campaign_id", "campaigns"),)),
    TableSpec("creators", "One row per creator (contracted or candidate).", (
        _c("creator_id", "id", "creator identifier"),
        _c("handle", "text", "TikTok handle"),
        _c("followers", "count", "followers at the time of the export"),
        _c("niche", "text", "content niche", nullable=True),
        _c("country", "text", "creator's home country", nullable=True),
    ), key=("creator_id",)),
    TableSpec("creator_audience", "Audience distribution of each creator; shares sum to 1 per "
              "creator and dimension.", (
        _c("creator_id", "id", "creator identifier"),
        _c("dimension", "category", "audience dimension", allowed=AUDIENCE_DIMENSIONS),
        _c("bucket", "text", "bucket of the dimension (e.g. 18-24, female, DE)"),
        _c("share", "share", "share of the audience in the bucket"),
    ), key=("creator_id", "dimension", "bucket"), foreign_keys=(_fk("creator_id", "creators"),)),
    TableSpec("contracts", "One row per creator engaged in a campaign.", (
        _c("campaign_id", "id", "campaign identifier"),
        _c("creator_id", "id", "creator identifier"),
        _c("fee", "amount", "fee paid to the creator"),
        _c("product_cost", "amount", "cost of products sent to the creator"),
        _c("deliverables", "count", "number of posts contracted"),
        _c("discount_code", "text", "creator's discount code", nullable=True),
        _c("utm_content", "text", "utm_content value of the creator's links", nullable=True),
        _c("affiliate_id", "text", "creator's affiliate id", nullable=True),
        _c("usage_rights_start", "date", "first day the brand may reuse the content", nullable=True),
        _c("usage_rights_end", "date", "last day the brand may reuse the content", nullable=True),
        _c("usage_channels", "text", "channels covered by the usage rights", nullable=True),
        _c("spark_ads_authorized", "flag", "whether the brand may boost the posts as Spark Ads",
           nullable=True),
    ), key=("campaign_id", "creator_id"),
        foreign_keys=(_fk("campaign_id", "campaigns"), _fk("creator_id", "creators"))),
    TableSpec("posts", "One row per post, sponsored or organic.", (
        _c("post_id", "id", "post (video) identifier"),
        _c("creator_id", "id", "creator identifier"),
        _c("campaign_id", "id", "campaign identifier; empty for the creator's organic posts",
           nullable=True),
        _c("posted_at", "timestamp", "publication time"),
        _c("caption", "text", "caption text", nullable=True),
        _c("duration_s", "amount", "video length in seconds", nullable=True),
        _c("disclosure_label", "category", "paid-partnership disclosure shown on the post",
           allowed=DISCLOSURE_LABELS),
        _c("sound_id", "text", "sound used", nullable=True),
        _c("sound_licensed", "flag", "whether the sound is cleared for commercial use",
           nullable=True),
    ), key=("post_id",), foreign_keys=(
        _fk("creator_id", "creators"), _fk("campaign_id", "campaigns"),
        _fk(("campaign_id", "creator_id"), "contracts"))),
    TableSpec("post_metrics", "Daily snapshots of each post's cumulative counts, as reported. A "
              "repeated (post_id, date) is folded on ingest (the last row in the file wins).", (
        _c("post_id", "id", "post identifier"),
        _c("date", "date", "snapshot date"),
        _c("views", "count", _COUNT_DESC.format("views")),
        _c("reach", "count", _COUNT_DESC.format("unique viewers (estimated)"), nullable=True),
        _c("likes", "count", _COUNT_DESC.format("likes"), nullable=True),
        _c("comments", "count", _COUNT_DESC.format("comments"), nullable=True),
        _c("shares", "count", _COUNT_DESC.format("shares"), nullable=True),
        _c("saves", "count", _COUNT_DESC.format("saves"), nullable=True),
        _c("avg_watch_time_s", "amount", "average watch time per view in seconds", nullable=True),
        _c("completion_rate", "rate", "share of views watched to the end", nullable=True),
        _c("profile_views", "count", _COUNT_DESC.format("profile visits from the post"),
           nullable=True),
        _c("follows", "count", _COUNT_DESC.format("follows from the post"), nullable=True),
        _c("link_clicks", "count", _COUNT_DESC.format("link clicks"), nullable=True),
        _c("paid_views", "count", _COUNT_DESC.format("views from paid boosting"), nullable=True),
    ), key=("post_id", "date"), foreign_keys=(_fk("post_id", "posts"),), dedupe=True),
    TableSpec("brand_account_daily", "Daily statistics of the brand's own TikTok account. One row per day: days "
              "may be missing (the attribution names them and fits without them), but rows a median week or more "
              "apart are read as weekly or monthly totals, and the follower attribution refuses them with the rule "
              "(a report leaves its section out and says why).", (
        _c("brand_account", "id", "brand account"),
        _c("date", "date", "calendar date"),
        _c("followers", "count", "followers at the end of the day"),
        _c("new_followers", "count", "follows gained that day", nullable=True),
        _c("lost_followers", "count", "follows lost that day", nullable=True),
        _c("profile_views", "count", "profile views that day", nullable=True),
        _c("video_views", "count", "views of the brand's own videos that day", nullable=True),
    ), key=("brand_account", "date")),
    TableSpec("paid_media_daily", "Daily paid media by channel.", (
        _c("date", "date", "calendar date"),
        _c("channel", "text", "paid channel"),
        _c("spend", "amount", "spend that day"),
        _c("impressions", "count", "impressions that day", nullable=True),
    ), key=("date", "channel"), optional=True),
    TableSpec("web_sessions_daily", "Daily web sessions by UTM parameters.", (
        _c("date", "date", "calendar date"),
        _c("utm_source", "text", "utm_source", nullable=True),
        _c("utm_campaign", "text", "utm_campaign", nullable=True),
        _c("utm_content", "text", "utm_content", nullable=True),
        _c("sessions", "count", "sessions that day"),
    ), key=("date", "utm_source", "utm_campaign", "utm_content"), optional=True),
    TableSpec("orders", "One row per order of the shop.", (
        _c("order_id", "id", "order identifier"),
        _c("created_at", "timestamp", "order time"),
        _c("customer_id", "id", "customer identifier (pseudonymised on ingest)", nullable=True),
        _c("revenue", "amount", "order revenue"),
        _c("discount_code", "text", "discount code used", nullable=True),
        _c("utm_source", "text", "utm_source of the session", nullable=True),
        _c("utm_campaign", "text", "utm_campaign of the session", nullable=True),
        _c("utm_content", "text", "utm_content of the session", nullable=True),
        _c("affiliate_id", "text", "affiliate id credited", nullable=True),
        _c("new_customer", "flag", "first order of the customer", nullable=True),
        _c("region", "text", "shipping region (matches geo tables)", nullable=True),
    ), key=("order_id",), optional=True),
    TableSpec("comments", "Comments on posts.", (
        _c("comment_id", "id", "comment identifier"),
        _c("post_id", "id", "post identifier"),
        _c("created_at", "timestamp", "comment time"),
        _c("text", "text", "comment text", nullable=True),
        _c("likes", "count", "likes of the comment", nullable=True),
        _c("author_id", "id", "comment author (pseudonymised on ingest)", nullable=True),
    ), key=("comment_id",), optional=True, foreign_keys=(_fk("post_id", "posts"),)),
    TableSpec("mentions", "Brand mentions, DMs and reviews.", (
        _c("mention_id", "id", "mention identifier"),
        _c("created_at", "timestamp", "time of the mention"),
        _c("source", "category", "where the mention was found", allowed=MENTION_SOURCES),
        _c("text", "text", "text of the mention", nullable=True),
    ), key=("mention_id",), optional=True),
    TableSpec("geo_assignment", "Regions assigned to treatment or control in a geo experiment "
              "(extra columns such as start_date for staggered roll-outs are kept).", (
        _c("campaign_id", "id", "campaign identifier"),
        _c("region", "text", "region"),
        _c("group", "category", "experiment arm", allowed=GEO_GROUPS),
    ), key=("campaign_id", "region"), optional=True, foreign_keys=(_fk("campaign_id", "campaigns"),)),
    TableSpec("geo_sales_daily", "Daily sales by region.", (
        _c("region", "text", "region"),
        _c("date", "date", "calendar date"),
        _c("revenue", "amount", "revenue that day"),
        _c("orders", "count", "orders that day"),
    ), key=("region", "date"), optional=True),
    TableSpec("brand_lift_survey", "Brand lift survey answers (one row per respondent and question).", (
        _c("campaign_id", "id", "campaign identifier"),
        _c("respondent_id", "id", "respondent identifier"),
        _c("group", "category", "survey arm", allowed=SURVEY_GROUPS),
        _c("question", "text", "question (e.g. awareness, consideration)"),
        _c("response", "binary", "1 for a positive answer"),
    ), key=("campaign_id", "respondent_id", "question"), optional=True,
        foreign_keys=(_fk("campaign_id", "campaigns"),)),
    TableSpec("content_reviews", "Scores given to posts by reviewers.", (
        _c("post_id", "id", "post identifier"),
        _c("reviewer", "text", "reviewer"),
        _c("criterion", "text", "criterion scored"),
        _c("score", "score", "score from 1 (poor) to 5 (excellent)"),
    ), key=("post_id", "reviewer", "criterion"), optional=True,
        foreign_keys=(_fk("post_id", "posts"),)),
    TableSpec("creator_feedback", "Creators' feedback on a campaign.", (
        _c("campaign_id", "id", "campaign identifier"),
        _c("creator_id", "id", "creator identifier"),
        _c("question", "text", "question"),
        _c("score", "score", "score from 1 to 5", nullable=True),
        _c("comment", "text", "free comment", nullable=True),
    ), key=("campaign_id", "creator_id", "question"), optional=True,
        foreign_keys=(_fk(("campaign_id", "creator_id"), "contracts"),)),
)}

def metric_names() -> tuple[str, ...]:
    """Names a ``campaign_targets.kpi`` may take: the metric registry's, else CONTRACT section 6."""
    try:
        from analysis.metrics import REGISTRY  # noqa: PLC0415 (written separately, may be absent)
    except Exception:  # noqa: BLE001 - any failure to import falls back to the contract's list
        return CONTRACT_METRICS
    return tuple(REGISTRY)


# --- pandera schemas -------------------------------------------------------------------------


def _checks(spec: ColumnSpec) -> list[pa.Check]:
    k = spec.kind
    if k in ("count", "amount"):
        return [pa.Check.ge(0, error="must be 0 or more")]
    if k in ("share", "rate"):
        return [pa.Check.in_range(0, 1, error="must be between 0 and 1")]
    if k == "score":
        return [pa.Check.in_range(1, 5, error="must be a whole number from 1 to 5")]
    if k == "binary":
        return [pa.Check.isin([0, 1], error="must be 0 or 1")]
    if k == "category":
        return [pa.Check.isin(list(spec.allowed or ()),
                              error=f"must be one of {', '.join(spec.allowed or ())}")]
    if k in ("date", "timestamp"):
        lo, hi = DATE_MIN, DATE_MAX
        if k == "timestamp":
            lo, hi = lo.tz_localize("UTC"), (hi + pd.Timedelta(days=1)).tz_localize("UTC")
        return [pa.Check.in_range(lo, hi, error="must be between 2015-01-01 and 2100-12-31")]
    if k == "timezone":
        return [pa.Check.isin(sorted(_timezones()), error="must be an IANA time zone name")]
    if k == "currency":
        return [pa.Check.str_matches(r"^[A-Z]{3}$", error="must be a three-letter currency code")]
    return []


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _pandera_dtype(spec: ColumnSpec):
    if spec.dtype == "datetime64[ms, UTC]":
        return pd.DatetimeTZDtype("ms", "UTC")
    return spec.dtype


def table_schema(name: str) -> pa.DataFrameSchema:
    """Return the pandera schema of canonical table ``name`` (typed data, after coercion).

    Extra columns are allowed; the table's key must be unique unless the table folds duplicates.
    """
    spec = TABLES[name]
    columns = {
        c.name: pa.Column(_pandera_dtype(c), checks=_checks(c), nullable=c.nullable,
                          required=c.required, description=c.description, title=c.rule)
        for c in spec.columns
    }
    checks = []
    if spec.name == "campaigns":
        checks.append(pa.Check(lambda df: df["end_date"] >= df["start_date"],
                               error="end_date must not be before start_date", ignore_na=True))
    if spec.name == "campaign_targets":
        names = metric_names()
        columns["kpi"] = pa.Column("str", checks=[pa.Check.isin(
            list(names), error="must be a metric name of the registry")],
            description=columns["kpi"].description, title=columns["kpi"].title)
    return pa.DataFrameSchema(
        columns, checks=checks, strict=False, ordered=False,
        unique=None if spec.dedupe else list(spec.key),
        name=name, description=spec.description,
    )


def schemas() -> dict[str, pa.DataFrameSchema]:
    """Return every canonical table's pandera schema, keyed by table name."""
    return {name: table_schema(name) for name in TABLES}


# --- documentation -----------------------------------------------------------------------------


def render_data_model_doc() -> str:
    """Render ``docs/data_model.md`` from the schemas (the committed file must equal this)."""
    lines = [
        "# Data model",
        "",
        "Generated from `analysis.schemas` by `python -m analysis.schemas > docs/data_model.md`; "
        "do not edit by hand.",
        "",
        "Every raw table is one file in the raw directory, `<table>.csv`, `<table>.parquet` or "
        "`<table>.xlsx`. Tables marked optional may be absent. Extra columns are kept. Empty cells "
        "are missing values; only columns marked nullable may have them. Ids are strings.",
        "",
        "## Rules across tables",
        "",
        "- Keys are unique (column `key` below); `post_metrics` folds a repeated key instead "
        "(the last row in the file wins).",
        "- Foreign keys: every non-empty value must exist in the referenced table.",
        f"- `creator_audience`: shares of one creator and dimension sum to 1 (within "
        f"{SHARE_SUM_TOLERANCE}).",
        f"- `post_metrics`: a cumulative count may not fall from one snapshot to the next by more "
        f"than {CUMULATIVE_DROP_REL:.0%} and more than {CUMULATIVE_DROP_ABS}; smaller drops are "
        "corrections (earlier values are lowered on ingest and flagged `corrected`).",
        "- `campaigns`: `end_date` is not before `start_date`.",
        "- `campaign_targets.kpi` is a metric name of `analysis.metrics.REGISTRY`.",
        "- Dates and timestamps lie between 2015-01-01 and 2100-12-31; timestamps without an "
        "offset are UTC.",
        "",
    ]
    for name, spec in TABLES.items():
        schema = table_schema(name)
        lines += [f"## `{name}`{' (optional)' if spec.optional else ''}", "", spec.description, "",
                  f"key: `{', '.join(spec.key)}`"]
        if spec.foreign_keys:
            fks = "; ".join(f"`{', '.join(fk.columns)}` -> `{fk.ref_table}.{', '.join(fk.ref_columns)}`"
                            for fk in spec.foreign_keys)
            lines.append(f"  \nforeign keys: {fks}")
        lines += ["", "| column | type | required | nullable | rule | description |",
                  "|---|---|---|---|---|---|"]
        for col in spec.columns:
            pcol = schema.columns[col.name]
            lines.append(f"| `{col.name}` | {col.dtype} | {'yes' if pcol.required else 'no'} | "
                         f"{'yes' if pcol.nullable else 'no'} | {pcol.title} | {pcol.description} |")
        lines.append("")
    lines += [
        "## Derived tables (processed directory only)",
        "",
        "- `creators.tier`: nano, micro, mid, macro or mega by followers (`analysis.config.TIERS`).",
        "- `posts.posted_date`, `comments.created_date`, `orders.created_date`, "
        "`mentions.created_date`: local calendar date in the campaign's time zone (the data set's "
        "main time zone where a row has no campaign).",
        "- `post_metrics.corrected`, `post_metrics.gap_before`: the row was lowered by cleaning; the "
        "row follows a missing day.",
        "- `post_daily`: one row per post and calendar day from its first to its last snapshot: "
        f"`post_id`, `creator_id`, `campaign_id`, `date`, `observed` and the daily increments of "
        f"{', '.join(f'`{c}`' for c in CUMULATIVE_COUNTS)} (non-negative, summing to the final "
        "cleaned cumulative value; a missing day has increment 0 and the next snapshot carries it; the "
        "attribution spreads such increments back over the days they cover, `docs/methods.md`, Sparse "
        "snapshots).",
        "- `orders.customer_id` (`cust_...`) and `comments.author_id` (`user_...`): salted SHA-256, "
        "16 hex characters.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render_data_model_doc())


def example_tables() -> dict[str, pd.DataFrame]:
    """A tiny valid raw data set (every required table, as CSV text), for examples and tests.

    Two campaigns in different time zones, three creators (one organic post), four days of
    snapshots including a small downward correction and a missing day, and two orders.
    """
    t = {}
    t["campaigns"] = pd.DataFrame({
        "campaign_id": ["C1", "C2"], "brand": ["Acme", "Acme"], "name": ["Spring", "Summer"],
        "objective": ["awareness", "conversions"], "start_date": ["2024-03-01", "2024-06-01"],
        "end_date": ["2024-03-31", "2024-06-30"], "budget": ["10000", "20000.5"],
        "currency": ["EUR", "EUR"], "brand_account": ["acme", "acme"],
        "timezone": ["Europe/Berlin", "America/New_York"]})
    t["campaign_targets"] = pd.DataFrame({
        "campaign_id": ["C1", "C2"], "kpi": ["views", "orders"], "target": ["100000", "50"]})
    t["creators"] = pd.DataFrame({
        "creator_id": ["K1", "K2", "007"], "handle": ["@a", "@b", "@c"],
        "followers": ["5000", "250000", "1500000"], "niche": ["food", "beauty", ""],
        "country": ["DE", "US", "US"]})
    t["creator_audience"] = pd.DataFrame({
        "creator_id": ["K1", "K1", "K2", "K2", "007"], "dimension": ["gender"] * 4 + ["country"],
        "bucket": ["female", "male", "female", "male", "US"],
        "share": ["0.6", "0.4", "0.51", "0.5", "1"]})
    t["contracts"] = pd.DataFrame({
        "campaign_id": ["C1", "C2"], "creator_id": ["K1", "K2"], "fee": ["500", "3000"],
        "product_cost": ["20", "40"], "deliverables": ["1", "2"], "discount_code": ["K1SPRING", ""],
        "utm_content": ["k1", "k2"], "affiliate_id": ["", "aff2"],
        "usage_rights_start": ["2024-03-01", ""], "usage_rights_end": ["2024-06-01", ""],
        "usage_channels": ["tiktok", ""], "spark_ads_authorized": ["true", "false"]})
    t["posts"] = pd.DataFrame({
        "post_id": ["P1", "P2", "P3"], "creator_id": ["K1", "K2", "007"],
        "campaign_id": ["C1", "C2", ""],
        "posted_at": ["2024-03-02T23:30:00+00:00", "2024-06-02T02:00:00+00:00",
                      "2024-06-05T12:00:00Z"],
        "caption": ["Try it #ad", "Love, this", ""], "duration_s": ["15", "32.5", "7"],
        "disclosure_label": ["paid_partnership", "promotional", "none"],
        "sound_id": ["s1", "s2", ""], "sound_licensed": ["true", "false", ""]})
    pm = []
    for pid, start, views in (("P1", "2024-03-03", [100, 250, 240, 400]),
                              ("P2", "2024-06-02", [1000, 5000, 9000, 9500]),
                              ("P3", "2024-06-05", [10, 20, 30, 35])):
        dates = pd.date_range(start, periods=5).strftime("%Y-%m-%d").tolist()
        if pid == "P2":
            dates = [dates[0], dates[1], dates[3], dates[4]]  # a missing day
        else:
            dates = dates[:4]
        for d, v in zip(dates, views, strict=True):
            pm.append({"post_id": pid, "date": d, "views": str(v), "reach": str(int(v * 0.8)),
                       "likes": str(v // 10), "comments": str(v // 100), "shares": str(v // 200),
                       "saves": str(v // 150), "avg_watch_time_s": "6.5", "completion_rate": "0.4",
                       "profile_views": str(v // 50), "follows": str(v // 500),
                       "link_clicks": str(v // 300), "paid_views": "0"})
    t["post_metrics"] = pd.DataFrame(pm)
    t["brand_account_daily"] = pd.DataFrame({
        "brand_account": ["acme"] * 3, "date": ["2024-03-01", "2024-03-02", "2024-03-03"],
        "followers": ["1000", "1010", "1030"], "new_followers": ["12", "11", "22"],
        "lost_followers": ["2", "1", "2"], "profile_views": ["50", "40", "70"],
        "video_views": ["300", "200", "500"]})
    t["orders"] = pd.DataFrame({
        "order_id": ["O1", "O2"], "created_at": ["2024-03-05T10:00:00+01:00", "2024-06-04T09:00:00Z"],
        "customer_id": ["alice@example.com", "cust-991"], "revenue": ["35.5", "80"],
        "discount_code": ["K1SPRING", ""], "utm_source": ["tiktok", ""], "utm_campaign": ["C1", ""],
        "utm_content": ["k1", ""], "affiliate_id": ["", ""], "new_customer": ["true", "false"],
        "region": ["BE", "NY"]})
    return t
