"""Real export formats: conversion to canonical rows, their quirks, and ingest of them."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest

from analysis import exports as ex
from analysis.ingest import IngestError, cli, ingest

os.environ["ANALYSIS_SALT"] = "test-salt"

FIXTURES = Path(__file__).parent / "fixtures" / "exports"
STUDIO = FIXTURES / "studio_acme"
EMAILS = ("Alice.Baker@example.com", "alice.baker@example.com", "bob@example.org",
          "carol@example.net")


def hashes(d: Path) -> dict[str, str]:
    return {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def convert(fn, *args, **kw):
    """Call a converter, returning its tables and the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = fn(*args, **kw)
    return tables, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def canonical_campaign_tables(raw: Path, *, creators=("bakewithbea", "chef.marco")) -> None:
    """What a brand adds beside its exports: campaigns, targets and contracts."""
    raw.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({
        "campaign_id": ["C1"], "brand": ["Acme"], "name": ["Spring launch"],
        "objective": ["launch"], "start_date": ["2024-03-01"], "end_date": ["2024-03-31"],
        "budget": ["15000"], "currency": ["USD"], "brand_account": ["acme"],
        "timezone": ["America/New_York"]}).to_csv(raw / "campaigns.csv", index=False)
    pd.DataFrame({"campaign_id": ["C1"], "kpi": ["views"], "target": ["300000"]}).to_csv(
        raw / "campaign_targets.csv", index=False)
    pd.DataFrame({
        "campaign_id": ["C1"] * len(creators), "creator_id": list(creators),
        "fee": ["1200", "5000"][:len(creators)], "product_cost": ["40", "40"][:len(creators)],
        "deliverables": ["2", "1"][:len(creators)],
        "discount_code": ["BEA15", ""][:len(creators)]}).to_csv(raw / "contracts.csv", index=False)


@pytest.fixture
def full_raw(tmp_path) -> Path:
    """Canonical campaign tables plus one export of each format."""
    raw = tmp_path / "raw"
    canonical_campaign_tables(raw)
    shutil.copytree(STUDIO, raw / "studio_acme")
    for name in ("tiktok_one_report.json", "research_api_2024-03-21.json",
                 "orders_export_1.csv"):
        shutil.copy(FIXTURES / name, raw / name)
    return raw


# --- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("March 3", (3, 3)), ("Mar 3", (3, 3)), ("3 March", (3, 3)), ("3 de marzo", (3, 3)),
    ("3. März", (3, 3)), ("3 mars", (3, 3)), ("3 marzo", (3, 3)), ("3 maart", (3, 3)),
    ("8 de setembro", (9, 8)), ("18 января", (1, 18)), ("9月13日", (9, 13)),
    ("18 tháng Tám", (8, 18)), ("1 août", (8, 1)),
    ("December 31", (12, 31)), ("29 de febrero", (2, 29)),
    ("2024-03-03", dt.date(2024, 3, 3)), ("March 3, 2024", dt.date(2024, 3, 3)),
    ("2024-03-03 00:00:00", dt.date(2024, 3, 3)), ("undefined", None), ("", None),
])
def test_parse_day_localised(text, expected):
    assert ex.parse_day(text) == expected


@pytest.mark.parametrize("text", ["Marchember 3", "3 4", "March", "February 30", "tomorrow"])
def test_parse_day_rejects_garbage(text):
    with pytest.raises(ValueError):
        ex.parse_day(text)


def test_resolve_year_rule():
    last = dt.date(2025, 1, 2)
    # a December day in an export ending in January belongs to the previous year
    assert ex.resolve_year(12, 30, last=last) == dt.date(2024, 12, 30)
    assert ex.resolve_year(1, 2, last=last) == dt.date(2025, 1, 2)
    assert ex.resolve_year(1, 3, last=last) == dt.date(2024, 1, 3)  # never after the last day
    # February 29 goes to the latest leap year not after the last day
    assert ex.resolve_year(2, 29, last=dt.date(2025, 3, 1)) == dt.date(2024, 2, 29)


def test_video_id_from_link_and_time():
    link = "https://www.tiktok.com/@acme/video/7455250875743980231?is_from_webapp=1"
    assert ex.video_id_from_link(link) == "7455250875743980231"
    assert ex.video_id_from_link("https://www.tiktok.com/@acme") is None
    assert ex.video_id_time("7455250875743980231") == pd.Timestamp("2025-01-02T09:41:00Z")
    assert ex.video_id_time("12345") is None


def test_export_date_in_names():
    assert ex._date_in_name(Path("x/Overview_20240331.csv")) == dt.date(2024, 3, 31)
    assert ex._date_in_name(Path("studio_2024-03-31/Overview.csv")) == dt.date(2024, 3, 31)
    # a video id is not a date
    assert ex._date_in_name(Path("x/video_7344830874339674434.json")) is None


# --- TikTok Studio ----------------------------------------------------------------------------


def test_studio_export_converts_to_brand_tables():
    t, warns = convert(ex.convert_studio, STUDIO)
    assert sorted(t) == ["brand_account_daily", "creator_audience", "creators", "post_metrics",
                         "posts"]
    bad = t["brand_account_daily"]
    # December -> January wrap: the year comes from the upload times in the video ids
    assert bad["date"].tolist() == ["2024-12-30", "2024-12-31", "2025-01-01", "2025-01-02"]
    assert (bad["brand_account"] == "acme").all()
    assert bad["followers"].tolist() == ["1200", "1210", "1205", "1250"]
    # net change split by sign: gains and losses (TikTok reports only the net)
    assert bad["new_followers"].tolist() == ["15", "10", "0", "45"]
    assert bad["lost_followers"].tolist() == ["0", "0", "5", "0"]
    assert bad["net_followers"].tolist() == ["15", "10", "-5", "45"]
    # "1,520" thousands separator; "undefined" -> missing
    assert bad["video_views"].tolist() == ["1520", "980", None, "2310"]
    assert bad["profile_views"].tolist() == ["48", "31", "27", "75"]
    # negative daily count is a reporting artefact: missing, with a warning
    assert bad["comments"].tolist() == ["12", None, "6", "21"]
    assert any("negative" in w and "Comments" in w for w in warns)
    assert bad["viewers"].tolist() == ["1100", "700", None, "1650"]

    posts = t["posts"].set_index("post_id")
    assert posts.loc["7455250875743980231", "posted_at"] == "2025-01-02T09:41:00+00:00"
    assert posts.loc["7454252089688118919", "posted_at"] == "2024-12-30T17:05:12+00:00"
    assert set(posts["creator_id"]) == {"acme"}
    assert set(posts["disclosure_label"]) == {"none"}
    assert posts["campaign_id"].isna().all()
    pm = t["post_metrics"].set_index("post_id")
    assert set(pm["date"]) == {"2025-01-03"}  # the "Time" column: the day of the export
    assert pm.loc["7455250875743980231", ["views", "likes", "comments", "shares"]].tolist() == \
        ["15870", "1204", "38", "51"]
    assert pd.isna(pm.loc["7454252089688118919", "comments"])  # -1 -> missing

    assert t["creators"].iloc[0][["creator_id", "handle", "followers"]].tolist() == \
        ["acme", "@acme", "1250"]
    aud = t["creator_audience"]
    gender = aud[aud.dimension == "gender"].set_index("bucket")["share"].astype(float)
    assert gender.to_dict() == {"female": 0.62, "male": 0.35, "other": 0.03}
    country = aud[aud.dimension == "country"].set_index("bucket")["share"].astype(float)
    # "45%" -> 0.45; the top-territories list leaves 25% to "other"
    assert country.to_dict() == pytest.approx({"US": 0.45, "GB": 0.2, "DE": 0.1, "other": 0.25})


def _write_xlsx(path: Path, sheets: dict[str, list[list]]) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
    wb.save(path)


def test_studio_files_at_the_top_of_the_raw_directory(tmp_path):
    raw = tmp_path / "raw"
    canonical_campaign_tables(raw, creators=())
    for f in STUDIO.iterdir():
        shutil.copy(f, raw / f.name)
    conv = ex.detect_and_convert(raw)
    assert not conv.problems
    assert "Overview.csv" in conv.claimed and "campaigns.csv" not in conv.claimed
    assert conv.tables["brand_account_daily"]["date"].iloc[-1] == "2025-01-02"
    m = ingest(raw, tmp_path / "out")
    assert m.tables["posts"]["rows"] == 2 and m.tables["brand_account_daily"]["rows"] == 4


def test_studio_xlsx_spanish_dates_year_from_folder_name(tmp_path):
    folder = tmp_path / "tiktok_2024-03-05"
    folder.mkdir()
    _write_xlsx(folder / "Overview.xlsx", {"Overview": [
        ["Date", "Video Views", "Profile Views", "Likes", "Comments", "Shares"],
        ["3 de marzo", 1500, 40, 100, 5, 2], ["4 de marzo", 1700, 44, 120, 6, 3],
        ["5 de marzo", -20, 50, 130, 7, 4]]})
    # one workbook holding several tables as sheets also works
    _write_xlsx(folder / "Followers.xlsx", {
        "FollowerHistory": [["Date", "Followers", "Difference in followers from previous day"],
                            ["3 de marzo", 900, 4], ["4 de marzo", 905, 5], ["5 de marzo", 911, 6]],
        "FollowerGender": [["Gender", "Distribution"], ["Female", "55%"], ["Male", "45%"]]})
    t, warns = convert(ex.convert_studio, folder, brand_account="@acme")
    bad = t["brand_account_daily"]
    assert bad["date"].tolist() == ["2024-03-03", "2024-03-04", "2024-03-05"]
    assert bad["video_views"].tolist() == ["1500", "1700", None]
    assert bad["followers"].tolist() == ["900", "905", "911"]
    assert any("from the folder or file name" in w for w in warns)
    aud = t["creator_audience"]
    assert aud["share"].astype(float).tolist() == [0.55, 0.45]
    assert aud["bucket"].tolist() == ["female", "male"]
    assert t["creators"]["followers"].tolist() == ["911"]


def test_studio_year_from_file_time_when_nothing_else_tells(tmp_path):
    folder = tmp_path / "@acme"
    folder.mkdir()
    (folder / "FollowerHistory.csv").write_text(
        '"Date","Followers","Difference in followers from previous day"\n'
        '"December 31","100","1"\n"January 1","undefined","undefined"\n"January 2","104","4"\n')
    stamp = pd.Timestamp("2024-01-03T12:00:00Z").timestamp()
    os.utime(folder / "FollowerHistory.csv", (stamp, stamp))
    t, warns = convert(ex.convert_studio, folder)
    bad = t["brand_account_daily"]
    # a day without a follower count is left out (followers is required), with a note
    assert bad["date"].tolist() == ["2023-12-31", "2024-01-02"]
    assert set(bad["brand_account"]) == {"acme"}  # the folder is named @acme
    assert any("modification date 2024-01-03" in w for w in warns)
    assert any("without a follower count" in w for w in warns)


def test_studio_content_as_of_overrides(tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(STUDIO, folder)
    t, _ = convert(ex.convert_studio, folder, as_of="2026-01-05")
    assert t["brand_account_daily"]["date"].iloc[0] == "2025-12-30"
    assert set(t["post_metrics"]["date"]) == {"2026-01-03"}


def test_malformed_studio_export_lists_every_problem(tmp_path):
    folder = tmp_path / "studio"
    shutil.copytree(STUDIO, folder)
    (folder / "Overview.csv").write_text(
        '"Date","Video Views","Profile Views","Likes","Comments","Shares"\n'
        '"December 30","lots","48","210","12","9"\n"Smarch 31","980","31","122","4","5"\n')
    (folder / "FollowerHistory.csv").write_text(
        '"Date","Followers","Difference in followers from previous day"\n'
        '"December 30","-1200","15"\n"December 31","1210","10"\n')
    content = (folder / "Content.csv").read_text().replace(
        "https://www.tiktok.com/@acme/video/7454252089688118919", "https://www.tiktok.com/@acme")
    (folder / "Content.csv").write_text(content)
    with pytest.raises(ValueError) as info:
        ex.convert_studio(folder)
    msg = str(info.value)
    assert "Overview.csv, row 1, column 'Video Views': is not a whole number (found 'lots')" in msg
    assert "Overview.csv, row 2, column 'Date': is not a recognisable day" in msg
    assert "FollowerHistory.csv, row 1, column 'Followers': must be 0 or more (found -1200)" in msg
    assert "Content.csv, row 2, column 'Video link': has no video id" in msg


# --- TikTok One, Research API, Shopify --------------------------------------------------------


def test_tiktok_one_json_report():
    t, _ = convert(ex.convert_tiktok_one, FIXTURES / "tiktok_one_report.json")
    posts = t["posts"].set_index("post_id")
    assert posts["campaign_id"].tolist() == ["C1", "C1", "C1"]
    assert posts["creator_id"].tolist() == ["bakewithbea", "bakewithbea", "chef.marco"]
    assert set(posts["disclosure_label"]) == {"paid_partnership"}
    # no post_time: the upload time is read from the video id
    assert posts.loc["7344830874339674434", "posted_at"] == "2024-03-10T20:15:00+00:00"
    pm = t["post_metrics"].set_index("post_id")
    assert set(pm["date"]) == {"2024-03-20"}  # the report date
    row = pm.loc["7344053914753613512"]
    assert row[["views", "reach", "likes", "comments", "shares"]].tolist() == \
        ["120500", "98000", "9640", "310", "455"]
    assert float(row["completion_rate"]) == 0.315 and float(row["avg_watch_time_s"]) == 7.8
    assert float(pm.loc["7344830874339674434", "completion_rate"]) == 0.22
    creators = t["creators"].set_index("creator_id")["followers"].to_dict()
    assert creators == {"bakewithbea": "48200", "chef.marco": "310000"}
    aud = t["creator_audience"]
    bea = aud[aud.creator_id == "bakewithbea"].set_index(["dimension", "bucket"])["share"]
    bea = bea.astype(float)
    # view-weighted across the creator's two videos: (120500*0.7 + 40500*0.5) / 161000
    assert bea[("gender", "female")] == pytest.approx(104600 / 161000, abs=1e-6)
    assert bea[("country", "US")] == pytest.approx((72300 + 28350) / 161000, abs=1e-6)
    assert bea[("country", "other")] == pytest.approx(0.2, abs=1e-6)
    assert bea.groupby(level=0).sum().to_numpy() == pytest.approx([1, 1, 1])


def test_tiktok_one_csv_needs_a_campaign():
    with pytest.raises(ValueError, match="campaign_id"):
        ex.convert_tiktok_one(FIXTURES / "tiktok_one_report.csv")
    t, _ = convert(ex.convert_tiktok_one, FIXTURES / "tiktok_one_report.csv", campaign_id="C1")
    assert t["post_metrics"][["views", "completion_rate", "date"]].iloc[0].tolist() == \
        ["120500", "0.315", "2024-03-20"]
    assert t["posts"]["posted_at"].tolist() == ["2024-03-08T18:00:00+00:00"]
    aud = t["creator_audience"].set_index("bucket")["share"].astype(float).to_dict()
    assert aud == {"female": 0.7, "male": 0.3}


def test_research_api_videos():
    t, warns = convert(ex.convert_research_api, FIXTURES / "research_api_2024-03-21.json")
    assert not warns  # the date is in the file name
    posts = t["posts"].set_index("post_id")
    assert posts.index.tolist() == ["7344830874339674434", "7337590847969848345"]
    assert posts.loc["7337590847969848345", "posted_at"] == "2024-02-20T08:00:00+00:00"
    assert posts.loc["7344830874339674434", "duration_s"] == "34"
    assert posts.loc["7344830874339674434", "hashtags"] == "ad pasta"
    assert posts["campaign_id"].isna().all()
    pm = t["post_metrics"].set_index("post_id")
    assert set(pm["date"]) == {"2024-03-21"}
    assert pm.loc["7337590847969848345", ["views", "likes", "comments", "shares", "saves"]] \
        .tolist() == ["90400", "4100", "120", "88", "310"]


def test_shopify_orders_one_row_per_order():
    t, warns = convert(ex.convert_shopify, FIXTURES / "orders_export_1.csv")
    o = t["orders"].set_index("order_id")
    assert o.index.tolist() == ["#1001", "#1002", "#1003"]  # #1004 was cancelled
    assert any("1 cancelled order" in w for w in warns)
    assert o.loc["#1001", "revenue"] == "44.2"  # order total, not the line items
    assert o.loc["#1001", "items"] == "3"  # 2 + 1 over its two rows
    assert o.loc["#1001", "created_at"] == "2024-03-09T09:01:55+00:00"
    assert o.loc["#1002", "created_at"] == "2024-03-10T23:29:40+00:00"
    assert o.loc["#1001", "discount_code"] == "BEA15" and pd.isna(o.loc["#1002", "discount_code"])
    assert o.loc["#1001", ["utm_source", "utm_campaign", "utm_content"]].tolist() == \
        ["tiktok", "C1", "bea"]
    assert o["utm_source"].isna().sum() == 2
    assert o["region"].tolist() == ["NY", "NJ", "CT"]  # shipping province
    # the same customer, whatever the case of the address; only the first order is new
    assert o.loc["#1001", "customer_id"] == o.loc["#1003", "customer_id"]
    assert o["new_customer"].tolist() == ["true", "true", "false"]
    # no names, addresses or phone numbers are carried over
    assert not {"Billing Name", "Phone", "Shipping Name"} & set(o.columns)


def test_shopify_malformed_rows(tmp_path):
    text = (FIXTURES / "orders_export_1.csv").read_text()
    text = text.replace("2024-03-10 18:29:40 -0500", "yesterday").replace(",44.20,", ",4x.20,")
    (tmp_path / "orders_export.csv").write_text(text)
    with pytest.raises(ValueError) as info:
        ex.convert_shopify(tmp_path / "orders_export.csv")
    msg = str(info.value)
    assert "orders_export.csv, row 1, column 'Total': is not a number (found '4x.20')" in msg
    assert "orders_export.csv, row 3, column 'Created at': is not a date-time" in msg


# --- ingest -----------------------------------------------------------------------------------


def test_ingest_exports_with_canonical_campaign_tables(tmp_path, full_raw):
    before = hashes(full_raw)
    manifest = ingest(full_raw, tmp_path / "out")
    out = tmp_path / "out"
    posts = pd.read_parquet(out / "posts.parquet").set_index("post_id")
    # 2 brand posts (Studio) + 3 campaign posts (TikTok One) + 1 organic post (Research API);
    # the video in both the campaign report and the Research API keeps its campaign
    assert len(posts) == 6
    assert posts.loc["7344830874339674434", "campaign_id"] == "C1"
    assert pd.isna(posts.loc["7337590847969848345", "campaign_id"])
    assert str(posts["posted_at"].dtype) == "datetime64[ms, UTC]"
    pm = pd.read_parquet(out / "post_metrics.parquet")
    marco = pm[pm.post_id == "7344830874339674434"]
    assert marco["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-03-20", "2024-03-21"]
    assert marco["views"].tolist() == [250000, 261000]
    bad = pd.read_parquet(out / "brand_account_daily.parquet")
    assert bad["followers"].tolist() == [1200, 1210, 1205, 1250]
    assert bad["video_views"].isna().tolist() == [False, False, True, False]
    creators = pd.read_parquet(out / "creators.parquet").set_index("creator_id")
    assert creators["tier"].to_dict() == {"acme": "nano", "bakewithbea": "micro",
                                          "chef.marco": "mid"}
    orders = pd.read_parquet(out / "orders.parquet")
    assert orders["revenue"].tolist() == [44.2, 27.0, 18.0]
    assert orders["customer_id"].str.fullmatch(r"cust_[0-9a-f]{16}").all()
    # the manifest records every export file with its hash and notes
    inputs = manifest.inputs
    assert inputs["orders_export_1.csv"]["sha256"] == before["orders_export_1.csv"]
    assert inputs["studio_acme/Overview.csv"]["format"] == "studio:Overview"
    assert any("negative" in w for w in inputs["studio_acme/Overview.csv"]["warnings"])
    assert "posts" in inputs["tiktok_one_report.json"]["table"]
    # raw files untouched, a re-run is byte-identical
    ingest(full_raw, tmp_path / "again")
    assert hashes(full_raw) == before
    assert hashes(out) == hashes(tmp_path / "again")


def test_shopify_emails_never_reach_processed_data(tmp_path):
    raw = tmp_path / "raw"
    canonical_campaign_tables(raw)
    shutil.copytree(STUDIO, raw / "studio_acme")
    shutil.copy(FIXTURES / "tiktok_one_report.json", raw / "tiktok_one_report.json")
    # a Shopify export saved under the canonical name is recognised by its columns
    shutil.copy(FIXTURES / "orders_export_1.csv", raw / "orders.csv")
    ingest(raw, tmp_path / "out")
    blob = b"".join(p.read_bytes() for p in (tmp_path / "out").iterdir())
    for email in EMAILS:
        assert email.encode() not in blob and email.lower().encode() not in blob
    for pii in (b"Alice Baker", b"555 0101", b"example.com"):
        assert pii not in blob
    assert pd.read_parquet(tmp_path / "out" / "orders.parquet").shape[0] == 3


def test_studio_export_alone_says_what_to_add(tmp_path, capsys):
    raw = tmp_path / "raw"
    shutil.copytree(STUDIO, raw / "studio_acme")
    out = tmp_path / "out"
    assert cli(argparse.Namespace(raw=raw, out=out)) == 2
    err = capsys.readouterr().err
    assert "campaigns.csv: required table 'campaigns' is missing" in err
    assert "TikTok Studio export recognised here does not contain campaigns: add campaigns.csv" \
        in err
    assert "contracts.csv" in err and "Traceback" not in err
    # the tables the export provides are not reported missing
    assert "required table 'posts'" not in err and "required table 'brand_account_daily'" not in err
    assert not out.exists()


def test_problems_of_converted_rows_point_at_the_export(tmp_path, capsys):
    raw = tmp_path / "raw"
    canonical_campaign_tables(raw, creators=("bakewithbea",))  # no contract for chef.marco
    shutil.copy(FIXTURES / "tiktok_one_report.json", raw / "report.json")
    (raw / "brand_account_daily.csv").write_text(
        "brand_account,date,followers\nacme,2024-03-01,100\n")
    with pytest.raises(IngestError) as info:
        ingest(raw, tmp_path / "out")
    ps = [p for p in info.value.problems if p.file == "report.json"]
    assert len(ps) == 1 and ps[0].row == 3 and "not found in contracts" in ps[0].rule
    assert ps[0].column == "campaign_id, handle_name -> posts.campaign_id, creator_id"
    # through the CLI: exit 2, readable lines, nothing written
    assert cli(argparse.Namespace(raw=raw, out=tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "report.json, row 3, column 'campaign_id, handle_name -> posts.campaign_id, " \
           "creator_id'" in err
    assert not (tmp_path / "out").exists()


def test_malformed_exports_exit_2_with_every_problem(tmp_path, full_raw, capsys):
    (full_raw / "studio_acme" / "Overview.csv").write_text(
        '"Date","Video Views","Profile Views","Likes","Comments","Shares"\n'
        '"Decembre 45","10","1","1","1","1"\n')
    data = json.loads((full_raw / "research_api_2024-03-21.json").read_text())
    data["data"]["videos"][1]["create_time"] = "soon"
    (full_raw / "research_api_2024-03-21.json").write_text(json.dumps(data))
    (full_raw / "tiktok_one_report.json").write_text('{"videos": [{"video_id": "abc", '
                                                     '"handle_name": "x"}]}')
    out = tmp_path / "out"
    assert cli(argparse.Namespace(raw=full_raw, out=out)) == 2
    err = capsys.readouterr().err
    assert "studio_acme/Overview.csv, row 1, column 'Date': is not a recognisable day" in err
    assert "research_api_2024-03-21.json, row 2, column 'create_time': must be Unix seconds" \
        in err
    assert "tiktok_one_report.json, row 1, column 'video_id': must be a numeric TikTok video id" \
        in err
    assert "Traceback" not in err and "please report" not in err
    assert not out.exists()


def test_canonical_rows_win_over_exported_ones(tmp_path, full_raw):
    posts = pd.DataFrame({
        "post_id": ["7337590847969848345"], "creator_id": ["chef.marco"], "campaign_id": [""],
        "posted_at": ["2024-02-20T08:00:00Z"], "caption": ["Sunday risotto (edited)"],
        "duration_s": ["58"], "disclosure_label": ["none"], "sound_id": [""],
        "sound_licensed": [""]})
    posts.to_csv(full_raw / "posts.csv", index=False)
    manifest = ingest(full_raw, tmp_path / "out")
    p = pd.read_parquet(tmp_path / "out" / "posts.parquet").set_index("post_id")
    assert len(p) == 6
    assert p.loc["7337590847969848345", "caption"] == "Sunday risotto (edited)"
    notes = manifest.inputs["research_api_2024-03-21.json"]["warnings"]
    assert any("posts.csv" in w for w in notes)


def test_conversion_result_summary_and_plot(full_raw):
    import matplotlib

    matplotlib.use("agg")
    conv = ex.detect_and_convert(full_raw)
    assert not conv.problems
    s = conv.summary()
    assert set(s["file"]) == {"orders_export_1.csv", "research_api_2024-03-21.json",
                              "tiktok_one_report.json"} | {f"studio_acme/{n}.csv" for n in (
                                  "Content", "FollowerGender", "FollowerHistory",
                                  "FollowerTopTerritories", "Overview", "Viewers")}
    assert s.set_index("file").loc["orders_export_1.csv", "rows"] == 5
    d = conv.to_dict()
    json.dumps(d)
    assert d["tables"]["orders"] == 3
    ax = conv.plot()
    assert [t.get_text() for t in ax.get_yticklabels()][0] == "brand_account_daily"
    # canonical files and unrelated JSON are not claimed
    assert "campaigns.csv" not in conv.claimed


# --- fuzz ---------------------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_FUZZ_FILES = ["studio_acme/Overview.csv", "studio_acme/FollowerHistory.csv",
               "studio_acme/Content.csv", "studio_acme/FollowerGender.csv",
               "orders_export_1.csv", "tiktok_one_report.csv"]


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file=st.sampled_from(_FUZZ_FILES), row=st.integers(0, 10), col=st.integers(0, 30),
       text=st.one_of(st.text(max_size=10), st.sampled_from(
           ["undefined", "-5", "1,2,3", "February 30", "", "99%", "1e400", "@", "#1001"])))
def test_fuzz_exports_never_crash(tmp_path_factory, capsys, file, row, col, text):
    base = tmp_path_factory.mktemp("fuzz")
    raw = base / "raw"
    canonical_campaign_tables(raw)
    shutil.copytree(STUDIO, raw / "studio_acme")
    for name in ("orders_export_1.csv", "tiktok_one_report.csv"):
        shutil.copy(FIXTURES / name, raw / name)
    path = raw / file
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.iloc[row % len(df), col % len(df.columns)] = text
    df.to_csv(path, index=False)
    out = base / "out"
    status = cli(argparse.Namespace(raw=raw, out=out))
    err = capsys.readouterr().err
    if status == 2:
        assert "problem" in err and "Traceback" not in err and "please report" not in err, err
        assert not out.exists()
    else:
        assert status == 0 and (out / "manifest.json").exists()
    shutil.rmtree(base)


# --- ZIP archives -------------------------------------------------------------------------------


def _zip_folder(folder: Path, archive: Path, *, prefix: str = "", extra: dict | None = None) -> None:
    import zipfile

    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(folder.iterdir()):
            z.write(f, prefix + f.name)
        for name, text in (extra or {}).items():
            z.writestr(name, text)


@pytest.mark.parametrize("prefix", ["", "TikTok_data/"])
def test_studio_zip_reads_like_the_folder(tmp_path, prefix):
    raw = tmp_path / "raw"
    canonical_campaign_tables(raw, creators=())
    _zip_folder(STUDIO, raw / "acme_studio.zip", prefix=prefix)
    before = hashes(raw)
    conv = ex.detect_and_convert(raw)
    assert not conv.problems
    assert f"acme_studio.zip/{prefix}Overview.csv" in conv.claimed
    ref, _ = convert(ex.convert_studio, STUDIO)
    got = conv.tables["brand_account_daily"]
    assert got["date"].tolist() == ref["brand_account_daily"]["date"].tolist()
    assert got["followers"].tolist() == ref["brand_account_daily"]["followers"].tolist()
    assert sorted(conv.tables["posts"]["post_id"]) == sorted(ref["posts"]["post_id"])
    m = ingest(raw, tmp_path / "out")
    assert m.tables["posts"]["rows"] == 2 and m.tables["brand_account_daily"]["rows"] == 4
    assert hashes(raw) == before  # nothing extracted beside the raw data
    member = m.inputs[f"acme_studio.zip/{prefix}Overview.csv"]
    assert member["sha256"] == hashlib.sha256((STUDIO / "Overview.csv").read_bytes()).hexdigest()


def test_zip_members_outside_the_archive_are_never_written(tmp_path):
    raw = tmp_path / "raw"
    canonical_campaign_tables(raw, creators=())
    evil = {"../escaped.csv": "a,b\n1,2\n", "/abs.csv": "a,b\n1,2\n", "__MACOSX/._Overview.csv": "x",
            "notes.exe": "MZ"}
    _zip_folder(STUDIO, raw / "studio.zip", extra=evil)
    conv = ex.detect_and_convert(raw)
    assert not conv.problems
    assert not (tmp_path / "escaped.csv").exists() and not (raw / "escaped.csv").exists()
    assert all(not c.endswith(("escaped.csv", "abs.csv", ".exe")) for c in conv.claimed)
    assert "studio.zip/Overview.csv" in conv.claimed


def test_unreadable_zip_is_a_problem_naming_it(tmp_path, capsys):
    raw = tmp_path / "raw"
    canonical_campaign_tables(raw, creators=())
    (raw / "studio.zip").write_bytes(b"this is not a zip archive")
    conv = ex.detect_and_convert(raw)
    assert [(p.file, p.rule.split(":")[0]) for p in conv.problems] == \
        [("studio.zip", "cannot be read as a ZIP archive")]
