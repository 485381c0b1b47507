"""The canonical schemas: valid data passes, each rule rejects what it promises, doc in sync."""

from __future__ import annotations

import pandas as pd
import pandera.errors as pe
import pytest

from analysis.config import DOCS_DIR
from analysis.ingest import _coerce_table, _Collector
from analysis.schemas import (
    CONTRACT_METRICS,
    TABLES,
    example_tables,
    metric_names,
    render_data_model_doc,
    table_schema,
)


def typed(name: str, df: pd.DataFrame | None = None) -> pd.DataFrame:
    col = _Collector()
    out, _ = _coerce_table(name, example_tables()[name] if df is None else df, f"{name}.csv", col)
    assert col.finish() == []
    return out


@pytest.mark.parametrize("name", sorted(example_tables()))
def test_example_tables_are_valid(name):
    table_schema(name).validate(typed(name), lazy=True)


def test_every_contract_table_has_a_schema():
    required = {"campaigns", "campaign_targets", "creators", "creator_audience", "contracts", "posts",
                "post_metrics", "brand_account_daily"}
    optional = {"paid_media_daily", "web_sessions_daily", "orders", "comments", "mentions",
                "geo_assignment", "geo_sales_daily", "brand_lift_survey", "content_reviews",
                "creator_feedback"}
    assert set(TABLES) == required | optional
    assert {n for n, t in TABLES.items() if t.optional} == optional


def failures(name: str, df: pd.DataFrame) -> pd.DataFrame:
    with pytest.raises(pe.SchemaErrors) as info:
        table_schema(name).validate(df, lazy=True)
    return info.value.failure_cases


def test_ranges_and_allowed_values():
    pm = typed("post_metrics")
    pm.loc[0, "views"] = -1
    pm.loc[1, "completion_rate"] = 1.5
    fc = failures("post_metrics", pm)
    assert set(fc["column"]) == {"views", "completion_rate"}
    posts = typed("posts")
    posts.loc[2, "disclosure_label"] = "sponsored"
    fc = failures("posts", posts)
    assert fc["failure_case"].tolist() == ["sponsored"]
    camp = typed("campaigns")
    camp.loc[0, "timezone"] = "Mars/Olympus"
    camp.loc[1, "currency"] = "euro"
    assert set(failures("campaigns", camp)["column"]) == {"timezone", "currency"}


def test_score_and_response_ranges():
    reviews = pd.DataFrame({"post_id": ["P1", "P1"], "reviewer": ["a", "b"], "criterion": ["hook"] * 2,
                            "score": ["3", "6"]})
    fc = failures("content_reviews", typed("content_reviews", reviews))
    assert fc["failure_case"].tolist() == [6]
    survey = pd.DataFrame({"campaign_id": ["C1"] * 2, "respondent_id": ["r1", "r2"],
                           "group": ["exposed", "holdout"], "question": ["awareness"] * 2,
                           "response": ["1", "2"]})
    fc = failures("brand_lift_survey", typed("brand_lift_survey", survey))
    assert set(fc["column"]) == {"group", "response"}


def test_unique_keys_and_end_after_start():
    c = typed("creators")
    c.loc[2, "creator_id"] = "K1"
    assert "multiple_fields_uniqueness" in set(failures("creators", c)["check"])
    camp = typed("campaigns")
    camp.loc[0, "end_date"] = pd.Timestamp("2024-02-01")
    assert failures("campaigns", camp)["check"].str.contains("end_date").any()


def test_targets_use_registry_names():
    names = metric_names()
    assert "views" in names and "roas" in names
    assert set(names) >= set(CONTRACT_METRICS) or len(names) > 10
    t = typed("campaign_targets")
    t.loc[0, "kpi"] = "vibes"
    assert failures("campaign_targets", t)["failure_case"].tolist() == ["vibes"]


def test_data_model_doc_is_generated_from_schemas():
    doc = render_data_model_doc()
    for name, spec in TABLES.items():
        assert f"## `{name}`" in doc
        for c in spec.columns:
            assert f"| `{c.name}` |" in doc
    committed = (DOCS_DIR / "data_model.md").read_text(encoding="utf-8")
    assert committed == doc, "docs/data_model.md is stale: run python -m analysis.schemas > docs/data_model.md"


def test_importing_the_schemas_prints_no_warning_and_leaves_pyspark_pandas_alone():
    """pandera's own import of pyspark.pandas (which fails under pandas 3 after a FutureWarning in
    every report notebook) is skipped, and pyspark.pandas stays importable as before."""
    import subprocess
    import sys

    code = ("import sys, warnings; warnings.simplefilter('error'); import analysis.schemas; "
            "assert 'pyspark.pandas' not in sys.modules; print('clean')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "clean", out.stderr[-2000:]
    assert out.stderr == ""
