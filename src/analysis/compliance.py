"""Were the campaign's posts disclosed and licensed properly?

Rules (documented in ``docs/methods.md``; every constant here can be overridden by keyword):

* **Disclosure.** A campaign post is disclosed when TikTok's built-in label is on (``paid_partnership`` or
  ``promotional``) or when a recognised disclosure hashtag (``#ad``, ``#sponsored``, ``#paidpartnership`` ...)
  appears *before the caption cut* (the first ``caption_cut`` characters a viewer sees without tapping
  "more"; FTC guidance: disclosures must be hard to miss). Ambiguous tags (``#sp``, ``#spon``, ``#collab``)
  do not count and are named as such.
* **Sound licensing.** A campaign post using a sound that is not cleared for commercial use is flagged.
* **Usage rights.** A contract whose usage rights end before the campaign ends, a Spark-Ads-authorised
  contract whose rights end before the planned paid use ends (``planned_paid_use_days`` after the campaign),
  or a post that kept gaining paid (Spark Ads) views after the rights ended, is flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

VALID_TAGS: tuple[str, ...] = ("#ad", "#advert", "#advertisement", "#sponsored", "#paidpartnership",
                               "#paidpartner", "#partner", "#werbung", "#anuncio", "#publicidad")
AMBIGUOUS_TAGS: tuple[str, ...] = ("#sp", "#spon", "#collab", "#ambassador", "#thanks", "#gifted")
LABELS_OK: tuple[str, ...] = ("paid_partnership", "promotional")
#: Characters of a caption visible before TikTok's "more" cut (a convention; override per market).
CAPTION_CUT = 100
#: Days after a campaign ends that Spark Ads boosting of its posts is planned (rights must cover them).
PLANNED_PAID_USE_DAYS = 30


def _tag_positions(caption: str, tags: tuple[str, ...]) -> list[tuple[str, int]]:
    found = []
    for tag in tags:
        for m in re.finditer(re.escape(tag) + r"(?![\w])", caption, flags=re.IGNORECASE):
            found.append((tag, m.start()))
    return sorted(found, key=lambda x: x[1])


def disclosure_issue(caption: str | None, label: str | None, *, caption_cut: int = CAPTION_CUT) -> str | None:
    """Return why a post's disclosure is insufficient, or ``None`` when it is fine.

    Parameters
    ----------
    caption : str or None
        The post's caption (untrusted text; only searched).
    label : str or None
        TikTok's disclosure label: ``none``, ``paid_partnership`` or ``promotional``.
    caption_cut : int
        Characters visible before the caption is truncated.

    Examples
    --------
    >>> disclosure_issue("Loving this serum #ad", "none") is None
    True
    >>> disclosure_issue("Loving this serum #spon", "none")
    'ambiguous tag (#spon) instead of a clear disclosure'
    """
    if label in LABELS_OK:
        return None
    caption = caption or ""
    valid = _tag_positions(caption, VALID_TAGS)
    if any(pos < caption_cut for _, pos in valid):
        return None
    if valid:
        return f"disclosure ({valid[0][0]}) buried after the caption cut (character {valid[0][1] + 1})"
    ambiguous = _tag_positions(caption, AMBIGUOUS_TAGS)
    if ambiguous:
        return f"ambiguous tag ({ambiguous[0][0]}) instead of a clear disclosure"
    return "no disclosure label or tag"


@dataclass(frozen=True)
class ComplianceResult:
    """Disclosure, sound-licensing and usage-rights checks of one campaign.

    Attributes
    ----------
    posts : pandas.DataFrame
        One row per campaign post: ``post_id``, ``creator_id``, ``disclosure_issue`` (None when fine),
        ``sound_licensed``.
    rights : pandas.DataFrame
        One row per contract with a usage-rights problem: ``creator_id``, ``usage_rights_end``, ``issue``.
    """

    campaign_id: str
    posts: pd.DataFrame
    rights: pd.DataFrame
    warnings: tuple[str, ...] = field(default=())

    @property
    def noncompliant_post_ids(self) -> list[str]:
        return sorted(self.posts.loc[self.posts["disclosure_issue"].notna(), "post_id"].astype(str))

    @property
    def unlicensed_sound_post_ids(self) -> list[str]:
        return sorted(self.posts.loc[~self.posts["sound_licensed"].astype(bool), "post_id"].astype(str))

    def summary(self) -> pd.DataFrame:
        """One row per check: posts checked, problems found, share compliant."""
        n = len(self.posts)
        rows = [
            {"check": "disclosure", "checked": n, "problems": len(self.noncompliant_post_ids)},
            {"check": "sound licensing", "checked": n, "problems": len(self.unlicensed_sound_post_ids)},
            {"check": "usage rights", "checked": int(self.posts["creator_id"].nunique()),
             "problems": int(len(self.rights))},
        ]
        out = pd.DataFrame(rows)
        out["share_ok"] = 1 - out["problems"] / out["checked"].where(out["checked"] > 0)
        return out

    def issues(self) -> pd.DataFrame:
        """Every problem found, one row each: ``post_id`` (or empty), ``creator_id``, ``check``, ``issue``."""
        d = self.posts[self.posts["disclosure_issue"].notna()]
        s = self.posts[~self.posts["sound_licensed"].astype(bool)]
        parts = [
            pd.DataFrame({"post_id": d["post_id"], "creator_id": d["creator_id"], "check": "disclosure",
                          "issue": d["disclosure_issue"]}),
            pd.DataFrame({"post_id": s["post_id"], "creator_id": s["creator_id"], "check": "sound licensing",
                          "issue": "sound not licensed for commercial use"}),
            pd.DataFrame({"post_id": pd.NA, "creator_id": self.rights["creator_id"], "check": "usage rights",
                          "issue": self.rights["issue"]}),
        ]
        parts = [p for p in parts if not p.empty]
        if not parts:
            return pd.DataFrame(columns=["post_id", "creator_id", "check", "issue"])
        return pd.concat(parts, ignore_index=True)

    def plot(self, ax=None):
        """Bar chart of the share of posts (or contracts) passing each check."""
        from analysis.plotting import axes

        ax = axes(ax, figsize=(6, 2.5))
        s = self.summary()
        ax.barh(s["check"], s["share_ok"], color="#2a9d8f")
        ax.barh(s["check"], 1 - s["share_ok"], left=s["share_ok"], color="#e76f51")
        ax.set_xlim(0, 1)
        ax.set_xlabel("Share passing (green) / failing (red)")
        ax.set_title("Disclosure and licensing checks")
        return ax

    def reading(self) -> str:
        """One plain-language sentence."""
        n = len(self.posts)
        nd, ns, nr = len(self.noncompliant_post_ids), len(self.unlicensed_sound_post_ids), len(self.rights)
        if nd == ns == nr == 0:
            return f"All {n} campaign posts were disclosed and used licensed sounds; usage rights cover the campaign."
        disclosed = (f"all {n} campaign posts were clearly disclosed" if nd == 0 else
                     f"{nd} of {n} campaign posts {'was' if nd == 1 else 'were'} not clearly disclosed")
        sounds = ("no post used an unlicensed sound" if ns == 0 else
                  f"{ns} {'post' if ns == 1 else 'posts'} used an unlicensed sound")
        rights = ("no contract had a usage-rights problem" if nr == 0 else
                  f"{nr} {'contract' if nr == 1 else 'contracts'} had a usage-rights problem")
        return f"{disclosed[:1].upper()}{disclosed[1:]}, {sounds}, and {rights}."

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` ``compliance`` block."""
        return {
            "n_posts": int(len(self.posts)),
            "noncompliant_post_ids": self.noncompliant_post_ids,
            "unlicensed_sound_post_ids": self.unlicensed_sound_post_ids,
            "expired_rights": [
                {"creator_id": str(r.creator_id),
                 "usage_rights_end": None if pd.isna(r.usage_rights_end)
                 else pd.Timestamp(r.usage_rights_end).date().isoformat(),
                 "issue": str(r.issue)}
                for r in self.rights.sort_values("creator_id").itertuples()
            ],
            "share_disclosed": (1 - len(self.noncompliant_post_ids) / len(self.posts)) if len(self.posts) else None,
        }


def check_compliance(data: Any, campaign_id: str, *, caption_cut: int = CAPTION_CUT,
                     planned_paid_use_days: int = PLANNED_PAID_USE_DAYS) -> ComplianceResult:
    """Run the disclosure, sound and usage-rights checks for one campaign.

    Parameters
    ----------
    data : Dataset or path
        Processed data (``analysis.data.load``) or its directory.
    campaign_id : str
        The campaign.
    caption_cut : int
        Characters of a caption visible before the "more" cut.
    planned_paid_use_days : int
        Days after the campaign's end that Spark Ads boosting is planned to run; rights of authorised
        contracts must cover them.
    """
    from analysis.data import as_dataset

    ds = as_dataset(data)
    camp = ds.campaign(campaign_id)
    posts = ds["posts"]
    cp = posts.loc[posts["campaign_id"] == campaign_id].sort_values("post_id").reset_index(drop=True)
    issues = [disclosure_issue(c if isinstance(c, str) else None, lbl, caption_cut=caption_cut)
              for c, lbl in zip(cp["caption"], cp["disclosure_label"], strict=True)]
    table = pd.DataFrame({"post_id": cp["post_id"], "creator_id": cp["creator_id"],
                          "disclosure_label": cp["disclosure_label"], "disclosure_issue": issues,
                          "sound_licensed": cp["sound_licensed"].fillna(True).astype(bool)})
    contracts = ds["contracts"]
    contracts = contracts.loc[contracts["campaign_id"] == campaign_id]
    rights_rows = []
    end = pd.Timestamp(camp["end_date"])
    paid_after: dict[str, pd.Timestamp] = {}
    if ds.has("post_daily") and "paid_views" in ds["post_daily"].columns:
        pdly = ds["post_daily"].drop(columns=["creator_id", "campaign_id"], errors="ignore")
        pdly = pdly.merge(cp[["post_id", "creator_id"]], on="post_id")
        pdly = pdly[pdly["paid_views"] > 0]
        paid_after = pdly.groupby("creator_id")["date"].max().to_dict()
    for r in contracts.sort_values("creator_id").itertuples():
        rights_end = pd.Timestamp(r.usage_rights_end) if pd.notna(r.usage_rights_end) else None
        if rights_end is None:
            continue
        last_paid = paid_after.get(r.creator_id)
        if last_paid is not None and pd.Timestamp(last_paid) > rights_end:
            rights_rows.append({"creator_id": r.creator_id, "usage_rights_end": rights_end,
                                "issue": f"paid views until {pd.Timestamp(last_paid).date()} after rights ended"})
        elif rights_end < end:
            rights_rows.append({"creator_id": r.creator_id, "usage_rights_end": rights_end,
                                "issue": (f"usage rights end {rights_end.date()}, before the campaign ends "
                                          f"{end.date()}")})
        elif bool(r.spark_ads_authorized) and rights_end < end + pd.Timedelta(days=planned_paid_use_days):
            rights_rows.append({"creator_id": r.creator_id, "usage_rights_end": rights_end,
                                "issue": (f"Spark Ads authorised but usage rights end {rights_end.date()}, before "
                                          f"the planned paid use ends ({planned_paid_use_days} days after the "
                                          "campaign)")})
    rights = pd.DataFrame(rights_rows, columns=["creator_id", "usage_rights_end", "issue"])
    return ComplianceResult(campaign_id=campaign_id, posts=table, rights=rights)
