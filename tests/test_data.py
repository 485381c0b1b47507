"""Loading processed data."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from analysis.data import Dataset, load
from analysis.ingest import ingest
from analysis.schemas import example_tables

os.environ["ANALYSIS_SALT"] = "test-salt"


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw")
    for name, df in example_tables().items():
        df.to_csv(raw / f"{name}.csv", index=False)
    out = tmp_path_factory.mktemp("base") / "processed"
    ingest(raw, out)
    return out


def test_load_tables_and_dtypes(processed):
    ds = load(processed)
    assert isinstance(ds, Dataset)
    assert "posts" in ds.tables and "post_daily" in ds.tables
    assert ds.posts is ds["posts"]
    assert str(ds.campaigns["start_date"].dtype) == "datetime64[ms]"
    assert str(ds.post_daily["date"].dtype) == "datetime64[ms]"
    assert str(ds.posts["posted_at"].dtype) == "datetime64[ms, UTC]"
    assert ds.manifest.tables["posts"]["rows"] == len(ds.posts) == 3


def test_absent_optional_tables_and_unknown_names(processed):
    ds = load(processed)
    assert not ds.has("comments") and ds.comments is None and ds["geo_sales_daily"] is None
    assert ds.has("orders") and "orders" in ds
    with pytest.raises(KeyError):
        ds["nonsense"]
    with pytest.raises(AttributeError):
        ds.nonsense  # noqa: B018


def test_campaign_row(processed):
    ds = load(processed)
    c = ds.campaign("C2")
    assert c["objective"] == "conversions" and c["timezone"] == "America/New_York"
    assert c["start_date"] == pd.Timestamp("2024-06-01") and c["budget"] == 20000.5
    with pytest.raises(KeyError, match="C1, C2"):
        ds.campaign("C9")


def test_not_a_processed_directory(tmp_path):
    with pytest.raises(ValueError, match="ingest"):
        load(tmp_path)
