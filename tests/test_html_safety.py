"""Untrusted text (captions, handles, comments, campaign names) never becomes executable markup in reports."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser

import pandas as pd
import pytest

from analysis.campaign import Section
from analysis.htmlsafe import escape_markdown, frame_to_html, is_text_column, item_list, markdown, safe_table

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
LINK = "[click](javascript:alert(1))"


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.handlers: list[tuple[str, str, str]] = []
        self.hrefs: list[str] = []
        self.imgs: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        for name, value in attrs:
            if name.lower().startswith("on"):
                self.handlers.append((tag, name, value or ""))
            if name.lower() in ("href", "src"):
                self.hrefs.append(value or "")
        if tag == "img":
            self.imgs.append(dict(attrs).get("src") or "")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def assert_no_executable_payload(page: str) -> _Collector:
    c = _Collector()
    c.feed(page)
    assert not any("alert(1)" in s for s in c.scripts), "a <script> element carries the payload"
    assert not any("alert" in v for _, _, v in c.handlers), f"event handler from data: {c.handlers}"
    assert not any(h.strip().lower().startswith("javascript:") for h in c.hrefs), "javascript: link"
    assert "x" not in c.imgs, "an <img src=x> from the data was rendered"
    return c


# ---------------------------------------------------------------- helpers, without a kernel

def test_helpers_escape_every_payload():
    df = pd.DataFrame({"handle": [SCRIPT, IMG], "comment": [LINK, "fine"]}, index=[SCRIPT, "b"])
    for page in (frame_to_html(df), safe_table(df)._repr_html_(), markdown("**{h}** said {c}", h=SCRIPT, c=IMG).data,
                 escape_markdown(LINK), item_list([SCRIPT, IMG, LINK], ordered=True).data):
        assert_no_executable_payload(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in frame_to_html(df)
    assert item_list(["a", SCRIPT], ordered=True).data.count("<li>") == 2
    sec = Section(key="k", title="t", reading=f"Top creator {SCRIPT}", tables=(("x", df),))
    for obj in sec.display_objects():
        page = obj._repr_html_() if hasattr(obj, "_repr_html_") else obj.data
        assert_no_executable_payload(page)
    failed = Section(key="k", title="t", status="error", reason=IMG)
    assert_no_executable_payload(failed.display_objects()[0].data)


def test_markdown_escape_renders_as_literal_text():
    import markdown_it  # rendered as Jupyter renders Markdown outputs

    html = markdown_it.MarkdownIt("commonmark").render(escape_markdown(f"{SCRIPT} {IMG} {LINK} *bold*"))
    assert_no_executable_payload(html)
    assert "<em>" not in html and "<a " not in html


# ---------------------------------------------------------------- the whole report on poisoned data

@pytest.fixture(scope="module")
def poisoned_report(sim_raw, tmp_path_factory):
    from analysis.ingest import ingest
    from analysis.report import run_reports

    base = tmp_path_factory.mktemp("poisoned")
    raw = base / "raw"
    shutil.copytree(sim_raw, raw)
    posts = pd.read_csv(raw / "posts.csv", dtype=str, keep_default_na=False)
    camp = posts["campaign_id"] == "C01"
    posts.loc[camp, "caption"] = SCRIPT + " " + IMG + " " + posts.loc[camp, "caption"]
    posts.to_csv(raw / "posts.csv", index=False)
    contracts = pd.read_csv(raw / "contracts.csv", dtype=str, keep_default_na=False)
    creators = pd.read_csv(raw / "creators.csv", dtype=str, keep_default_na=False)
    in_c01 = creators["creator_id"].isin(contracts.loc[contracts["campaign_id"] == "C01", "creator_id"])
    first, second = creators.index[in_c01][:2]
    creators.loc[first, "handle"] = SCRIPT
    creators.loc[second, "handle"] = IMG
    creators.to_csv(raw / "creators.csv", index=False)
    comments = pd.read_csv(raw / "comments.csv", dtype=str, keep_default_na=False)
    on_c01 = comments["post_id"].isin(posts.loc[camp, "post_id"])
    idx = comments.index[on_c01][:3]
    comments.loc[idx, "text"] = [f"love it, amazing {SCRIPT}", f"awful, hate it {IMG}", f"great {LINK}"]
    comments.loc[idx, "likes"] = "999999"
    comments.to_csv(raw / "comments.csv", index=False)
    campaigns = pd.read_csv(raw / "campaigns.csv", dtype=str, keep_default_na=False)
    campaigns.loc[campaigns["campaign_id"] == "C01", "name"] = f"Launch {SCRIPT}"
    campaigns.to_csv(raw / "campaigns.csv", index=False)
    processed = base / "processed"
    ingest(raw, processed)
    out = base / "reports"
    outcomes = run_reports(processed, out, campaigns=["C01"], jobs=1)
    return out, outcomes


def test_report_html_contains_no_executable_payload(poisoned_report):
    out, outcomes = poisoned_report
    assert outcomes[0]["status"] == "ok", outcomes[0]["error"]
    page = (out / "C01" / "report.html").read_text()
    c = assert_no_executable_payload(page)
    # the untrusted text is shown, escaped: handles in the tables, the campaign name in the summary
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert c.scripts, "nbconvert's own scripts are still there"
    assert_no_executable_payload((out / "index.html").read_text())


def test_text_columns_are_left_aligned_and_numbers_right():
    """Words (ids, handles, readings) sit left; numbers, amounts, intervals and dates stay right; escaping
    is untouched and tables with a MultiIndex are left as pandas renders them."""
    df = pd.DataFrame({"handle": ["<b>x</b>", "y", None], "views": [1.0, 2.0, 3.0],
                       "cost": ["$3.2k", "n/a", "-$1.0k"], "ci": ["[1, 2]", "[3, 4]", "–"],
                       "date": pd.to_datetime(["2025-01-01"] * 3), "text": ["Views: 13.6M", "CPM: $3", "ok"]})
    assert [is_text_column(df[c]) for c in df] == [True, False, False, False, False, True]
    assert not is_text_column(pd.Series(["0.032", "< 0.001", "0.2"]))
    assert is_text_column(pd.Series(["GlowLab", "awareness", "2025-03-28 to 2025-04-29", "$45.2k", "13"]))
    html = frame_to_html(df, index=False)
    left = '<td style="text-align: left;">'
    assert f"{left}&lt;b&gt;x&lt;/b&gt;</td>" in html and "<b>" not in html
    assert '<th style="text-align: left;">handle</th>' in html and "<th>views</th>" in html
    assert "<td>$3.2k</td>" in html and "<td>[1, 2]</td>" in html and f"{left}CPM: $3</td>" in html
    assert html.count(left) == 6  # two text columns, three rows
    wide = df.set_index(["handle", "views"])
    assert frame_to_html(wide) == wide.to_html(escape=True, classes="dataframe report-table tex2jax_ignore "
                                               "mathjax_ignore", na_rep="–", border=0)


def test_notebook_repr_shows_reading_tables_and_warnings_escaped():
    from dataclasses import dataclass

    from analysis.htmlsafe import NotebookRepr

    @dataclass(frozen=True)
    class Result(NotebookRepr):
        warnings: tuple = ("<b>careful</b>",)

        def reading(self):
            return ["<script>alert(1)</script> brought 1,234"]

        def summary(self):
            return pd.DataFrame({"handle": ["<img src=x onerror=alert(1)>"], "incremental": [16895.25],
                                 "share": [0.0321], "ci_low": [float("nan")]})

    shown = Result()._repr_html_()
    assert "<script>" not in shown and "<img" not in shown and "<b>careful" not in shown
    assert "&lt;script&gt;alert(1)&lt;/script&gt; brought 1,234" in shown
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown and "&lt;b&gt;careful&lt;/b&gt;" in shown
    assert ">16,895<" in shown and ">0.0321<" in shown and ">–<" in shown
    assert shown.index("Result") < shown.index("brought") < shown.index("<table") < shown.index("Warnings")
