"""Validated ingest: every problem reported at once, atomic and deterministic output."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.ingest import INTERNAL, IngestError, Problem, cli, ingest, pseudonymise, read_salt
from analysis.schemas import CUMULATIVE_COUNTS, example_tables

os.environ["ANALYSIS_SALT"] = "test-salt"


def write_raw(path: Path, tables: dict[str, pd.DataFrame] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, df in (tables or example_tables()).items():
        df.to_csv(path / f"{name}.csv", index=False)
    return path


def problems_of(raw: Path, tmp_path: Path) -> list[Problem]:
    with pytest.raises(IngestError) as info:
        ingest(raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    return info.value.problems


def find(problems: list[Problem], **kw) -> list[Problem]:
    return [p for p in problems if all(
        (kw[k] in getattr(p, k)) if k == "rule" else getattr(p, k) == kw[k] for k in kw)]


def hashes(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


@pytest.fixture
def raw(tmp_path) -> Path:
    return write_raw(tmp_path / "raw")


def mangle(tmp_path: Path, table: str, fn) -> Path:
    tables = example_tables()
    tables[table] = fn(tables[table].copy())
    return write_raw(tmp_path / "raw", tables)


# --- each kind of bad input ---------------------------------------------------------------------


def test_missing_column_is_named(tmp_path):
    raw = mangle(tmp_path, "campaigns", lambda d: d.drop(columns="objective"))
    ps = problems_of(raw, tmp_path)
    assert find(ps, file="campaigns.csv", column="objective", rule="required column is missing")


def test_wrong_type_and_unparsable_date(tmp_path):
    def bad(d):
        d.loc[1, "views"] = "many"
        d.loc[2, "date"] = "03/05/2024"
        return d
    ps = problems_of(mangle(tmp_path, "post_metrics", bad), tmp_path)
    p = find(ps, file="post_metrics.csv", row=2, column="views", rule="not a whole number")
    assert p and p[0].value == "many"
    d = find(ps, file="post_metrics.csv", row=3, column="date", rule="not a valid date")
    assert d and "03/05/2024" in str(d[0])
    # a cell already reported as unreadable is not reported again as empty
    assert not find(ps, file="post_metrics.csv", row=2, column="views", rule="must not be empty")


def test_unknown_objective_and_negative_views(tmp_path):
    tables = example_tables()
    tables["campaigns"].loc[0, "objective"] = "virality"
    tables["post_metrics"].loc[0, "views"] = "-5"
    raw = write_raw(tmp_path / "raw", tables)
    ps = problems_of(raw, tmp_path)
    o = find(ps, file="campaigns.csv", row=1, column="objective", rule="must be one of")
    assert o and "virality" in str(o[0]) and "awareness" in o[0].rule
    v = find(ps, file="post_metrics.csv", row=1, column="views", rule="must be 0 or more")
    assert v and v[0].value == -5
    # two bad tables: both named in one error
    assert {"campaigns.csv", "post_metrics.csv"} <= {p.file for p in ps}


def test_share_sums(tmp_path):
    def bad(d):
        d.loc[0, "share"] = "0.3"
        return d
    ps = problems_of(mangle(tmp_path, "creator_audience", bad), tmp_path)
    p = find(ps, file="creator_audience.csv", column="share", rule="sum to 0.700")
    assert p and "K1" in p[0].rule and p[0].row == 1


def test_orphan_foreign_keys(tmp_path):
    tables = example_tables()
    tables["posts"].loc[0, "creator_id"] = "K9"
    tables["post_metrics"].loc[5, "post_id"] = "P404"
    raw = write_raw(tmp_path / "raw", tables)
    ps = problems_of(raw, tmp_path)
    assert find(ps, file="posts.csv", row=1, column="creator_id", rule="not found in creators")
    assert find(ps, file="post_metrics.csv", row=6, column="post_id", rule="not found in posts")


def test_duplicate_keys(tmp_path):
    def bad(d):
        return pd.concat([d, d.iloc[[1]]], ignore_index=True)
    ps = problems_of(mangle(tmp_path, "creators", bad), tmp_path)
    dup = find(ps, file="creators.csv", column="creator_id", rule="duplicate key")
    assert {p.row for p in dup} == {2, 4}
    assert dup[0].value == "K2"


def test_cumulative_drop_and_dates(tmp_path):
    tables = example_tables()
    tables["post_metrics"].loc[5, "views"] = "100"   # P2 falls from 1000 -> ... 5000 -> 100
    tables["campaigns"].loc[1, "end_date"] = "2024-05-01"  # before start
    tables["brand_account_daily"].loc[0, "date"] = "2014-12-31"
    raw = write_raw(tmp_path / "raw", tables)
    ps = problems_of(raw, tmp_path)
    assert find(ps, file="post_metrics.csv", row=6, column="views", rule="falls by more than")
    assert find(ps, file="campaigns.csv", row=2, column="end_date", rule="not be before start")
    assert find(ps, file="brand_account_daily.csv", row=1, column="date", rule="between 2015")


def test_required_table_missing_and_optional_absent(tmp_path, raw):
    (raw / "orders.csv").unlink()           # optional: fine
    ingest(raw, tmp_path / "ok")
    (raw / "creators.csv").unlink()
    ps = problems_of(raw, tmp_path)
    assert find(ps, file="creators.csv", rule="required table 'creators' is missing")


def test_unreadable_files_are_problems_not_tracebacks(tmp_path, raw):
    (raw / "campaigns.csv").write_bytes(b"")
    (raw / "creators.csv").write_bytes("creator_id,handle\n\xff\xfe".encode("latin-1"))
    (raw / "contracts.csv").write_text("a,b\n1,2\n1,2,3,4\n")
    ps = problems_of(raw, tmp_path)
    assert find(ps, file="campaigns.csv", rule="empty")
    assert find(ps, file="creators.csv", rule="not UTF-8")
    assert find(ps, file="contracts.csv", row=2, rule="4 fields")


def test_many_bad_rows_are_summarised(tmp_path):
    def bad(d):
        d["views"] = "x"
        return pd.concat([d] * 3, ignore_index=True)
    ps = problems_of(mangle(tmp_path, "post_metrics", bad), tmp_path)
    rows = find(ps, file="post_metrics.csv", column="views", rule="not a whole number")
    assert len([p for p in rows if p.row is not None]) == 20
    assert any("16 more rows" in p.rule for p in rows)


# --- CLI, atomicity, determinism ----------------------------------------------------------------


def test_cli_exit_2_and_out_untouched(tmp_path, capsys):
    raw = mangle(tmp_path, "campaigns", lambda d: d.assign(objective="virality"))
    (tmp_path / "creators_bad").mkdir()
    out = tmp_path / "absent" / "out"
    assert cli(argparse.Namespace(raw=raw, out=out)) == 2
    err = capsys.readouterr().err
    assert "campaigns.csv, row 1, column 'objective'" in err and "Traceback" not in err
    assert not out.exists() and not out.parent.exists()
    # an existing processed directory is left exactly as it was
    good = write_raw(tmp_path / "good")
    out2 = tmp_path / "out2"
    assert cli(argparse.Namespace(raw=good, out=out2)) == 0
    before = hashes(out2)
    assert cli(argparse.Namespace(raw=raw, out=out2)) == 2
    assert hashes(out2) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_refuses_to_replace_foreign_directory(tmp_path, raw):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.txt").write_text("keep me")
    with pytest.raises(ValueError, match="refusing"):
        ingest(raw, other)
    with pytest.raises(ValueError, match="raw"):
        ingest(raw, raw)
    assert (other / "thesis.txt").read_text() == "keep me"


def test_raw_unchanged_and_rerun_byte_identical(tmp_path, raw):
    before = hashes(raw)
    ingest(raw, tmp_path / "a")
    ingest(raw, tmp_path / "b")
    ingest(raw, tmp_path / "a")  # replacing an existing output
    assert hashes(raw) == before
    ha, hb = hashes(tmp_path / "a"), hashes(tmp_path / "b")
    assert ha == hb and "manifest.json" in ha and "post_daily.parquet" in ha
    m = pd.read_json(tmp_path / "a" / "manifest.json", typ="series")
    assert m["inputs"]["posts.csv"]["sha256"] == before["posts.csv"]
    assert m["tables"]["post_metrics"]["rows"] == 12


def test_pseudonymisation(tmp_path, raw):
    ingest(raw, tmp_path / "out")
    blob = b"".join(p.read_bytes() for p in (tmp_path / "out").iterdir())
    assert b"alice@example.com" not in blob and b"cust-991" not in blob
    orders = pd.read_parquet(tmp_path / "out" / "orders.parquet")
    assert orders["customer_id"].str.fullmatch(r"cust_[0-9a-f]{16}").all()
    s = pd.Series(["a", "b", "a", None])
    p1 = pseudonymise(s, prefix="user_", salt="one")
    assert p1[0] == p1[2] != p1[1] and pd.isna(p1[3])
    assert pseudonymise(s, prefix="user_", salt="two")[0] != p1[0]


def test_salt_file_created_when_absent(tmp_path, monkeypatch):
    from analysis import config

    monkeypatch.delenv("ANALYSIS_SALT")
    monkeypatch.setattr(config, "SALT_FILE", tmp_path / ".salt")
    salt = read_salt()
    assert len(salt) == 64 and (tmp_path / ".salt").read_text().strip() == salt
    assert read_salt() == salt
    assert stat.S_IMODE((tmp_path / ".salt").stat().st_mode) == 0o600  # a secret: owner only


def test_processed_directory_and_files_are_not_left_private(tmp_path, raw):
    """The temporary directory ingest builds is private (mkdtemp); the result gets the umask mode."""
    old = os.umask(0o022)
    try:
        out = ingest(raw, tmp_path / "out").path
        ingest(raw, out)  # replacing an existing output
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o644}


# --- normalisation ------------------------------------------------------------------------------


def test_post_daily_increments(tmp_path, raw):
    ingest(raw, tmp_path / "out")
    pm = pd.read_parquet(tmp_path / "out" / "post_metrics.parquet")
    pd_ = pd.read_parquet(tmp_path / "out" / "post_daily.parquet")
    final = pm.groupby("post_id")[list(CUMULATIVE_COUNTS)].last()
    sums = pd_.groupby("post_id")[list(CUMULATIVE_COUNTS)].sum()
    pd.testing.assert_frame_equal(sums, final, check_dtype=False)
    assert (pd_[list(CUMULATIVE_COUNTS)] >= 0).all().all()
    # one row per calendar day, including P2's missing day
    assert len(pd_[pd_.post_id == "P2"]) == 5
    assert pd_.loc[pd_.post_id == "P2", "observed"].tolist() == [True, True, False, True, True]
    # P1's 250 -> 240 correction lowers the earlier value and flags the row
    p1 = pm[pm.post_id == "P1"]
    assert p1["views"].tolist() == [100, 240, 240, 400]
    assert p1["corrected"].tolist() == [False, True, False, False]
    assert pm.loc[pm.post_id == "P2", "gap_before"].tolist() == [False, False, True, False]


def test_time_zones_and_tiers(tmp_path, raw):
    ingest(raw, tmp_path / "out")
    posts = pd.read_parquet(tmp_path / "out" / "posts.parquet").set_index("post_id")
    assert str(posts["posted_at"].dtype) == "datetime64[ms, UTC]"
    assert str(posts["posted_date"].dtype) == "datetime64[ms]"
    # 23:30 UTC is already the next day in Berlin; 02:00 UTC is still the day before in New York
    assert posts.loc["P1", "posted_date"] == pd.Timestamp("2024-03-03")
    assert posts.loc["P2", "posted_date"] == pd.Timestamp("2024-06-01")
    creators = pd.read_parquet(tmp_path / "out" / "creators.parquet").set_index("creator_id")
    assert creators["tier"].to_dict() == {"007": "mega", "K1": "nano", "K2": "mid"}
    orders = pd.read_parquet(tmp_path / "out" / "orders.parquet")
    assert orders["created_at"].iloc[0] == pd.Timestamp("2024-03-05T09:00:00Z")


def test_parquet_and_extra_columns(tmp_path):
    tables = example_tables()
    raw = write_raw(tmp_path / "raw", tables)
    (raw / "creators.csv").unlink()
    tables["creators"].assign(followers=lambda d: d.followers.astype(int)).to_parquet(
        raw / "creators.parquet")
    geo = pd.DataFrame({"campaign_id": ["C2", "C2"], "region": ["NY", "NJ"],
                        "group": ["treatment", "control"], "start_date": ["2024-06-01", ""]})
    geo.to_csv(raw / "geo_assignment.csv", index=False)
    ingest(raw, tmp_path / "out")
    g = pd.read_parquet(tmp_path / "out" / "geo_assignment.parquet")
    assert "start_date" in g.columns
    c = pd.read_parquet(tmp_path / "out" / "creators.parquet")
    assert c["creator_id"].tolist() == ["007", "K1", "K2"]


# --- simulator output ---------------------------------------------------------------------------


def test_simulated_data_ingests_cleanly(sim_raw, tmp_path):
    manifest = ingest(sim_raw, tmp_path / "out")
    assert manifest.tables["post_daily"]["rows"] > 0
    pm = pd.read_parquet(tmp_path / "out" / "post_metrics.parquet")
    daily = pd.read_parquet(tmp_path / "out" / "post_daily.parquet")
    final = pm.groupby("post_id")["views"].last()
    assert np.array_equal(daily.groupby("post_id")["views"].sum().loc[final.index].to_numpy(),
                          final.to_numpy())


# --- fuzz ---------------------------------------------------------------------------------------

_mutations = st.one_of(
    st.tuples(st.just("drop_col"), st.integers(0, 20)),
    st.tuples(st.just("dup_col"), st.integers(0, 20)),
    st.tuples(st.just("cell"), st.integers(0, 40), st.integers(0, 20), st.text(max_size=12)),
    st.tuples(st.just("truncate"), st.integers(0, 2000)),
    st.tuples(st.just("bytes"), st.integers(0, 2000), st.binary(min_size=1, max_size=8)),
)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=st.sampled_from(["campaigns", "posts", "post_metrics", "creator_audience", "orders"]),
       mutations=st.lists(_mutations, min_size=1, max_size=3))
def test_fuzz_never_crashes_nor_writes_partial_output(tmp_path_factory, capsys, table,
                                                      mutations):
    base = tmp_path_factory.mktemp("fuzz")
    raw = write_raw(base / "raw")
    path = raw / f"{table}.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for m in mutations:
        if m[0] == "drop_col" and len(df.columns) > 1:
            df = df.drop(columns=df.columns[m[1] % len(df.columns)])
        elif m[0] == "dup_col":
            c = df.columns[m[1] % len(df.columns)]
            df = pd.concat([df, df[[c]]], axis=1)
        elif m[0] == "cell":
            df.iloc[m[1] % len(df), m[2] % len(df.columns)] = m[3]
    path.write_text(df.to_csv(index=False))
    data = path.read_bytes()
    for m in mutations:
        if m[0] == "truncate":
            data = data[: m[1] % (len(data) + 1)]
        elif m[0] == "bytes":
            i = m[1] % (len(data) + 1)
            data = data[:i] + m[2] + data[i:]
    path.write_bytes(data)
    out = base / "out"
    status = cli(argparse.Namespace(raw=raw, out=out))  # any other exception fails the test
    err = capsys.readouterr().err
    if status == 2:
        assert "problem" in err and "Traceback" not in err and INTERNAL not in err, err
        assert not out.exists()
    else:
        assert status == 0 and (out / "manifest.json").exists()
    assert [p.name for p in base.iterdir() if p.name.startswith(".")] == []
    shutil.rmtree(base)
