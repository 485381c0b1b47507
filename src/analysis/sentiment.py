"""How did the audience feel? Comment and mention sentiment.

Comments are classified with VADER (Hutto and Gilbert 2014, the ``vaderSentiment`` package), extended by a
small, documented lexicon of TikTok slang, emoji and common non-English words
(``resources/sentiment_lexicon.csv``, overridable), a sarcasm rule and a spam filter. Shares of positive,
neutral, negative and spam comments carry Wilson 95% intervals (comments are a sample of the audience).

Comment text is untrusted: this module never renders it; reports escape it (``analysis.htmlsafe``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from analysis.config import RESOURCES_DIR

LABELS: tuple[str, ...] = ("positive", "neutral", "negative", "spam")

#: VADER's conventional thresholds on the compound score.
POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05

_SPAM_PATTERNS = re.compile(
    r"(?:https?://|www\.|\.com\b|link in (?:my )?bio|follow (?:me|back)|check (?:out )?my (?:page|profile|channel)|"
    r"free (?:iphone|gift|money|followers)|dm me|promo code|giveaway|click here|sub(?:scribe)? to me|f4f|l4l)",
    re.IGNORECASE,
)
_SARCASM_PATTERNS = re.compile(
    r"(?:🙄|😒|yeah right|sure,? jan|another ad|/s\b|as if|totally not (?:an )?ad"
    r"|wow,? (?:such|so) (?:original|genuine))",
    re.IGNORECASE,
)
_LABEL_COLORS = {"positive": "#2a9d8f", "neutral": "#bfc5cc", "negative": "#e76f51", "spam": "#6c757d"}
_REPEATED_EMOJI = re.compile(r"([\U0001F300-\U0001FAFF])\1{4,}")


@lru_cache(maxsize=4)
def _analyzer(lexicon_path: str) -> tuple[Any, dict[str, str]]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    extra = pd.read_csv(lexicon_path, dtype={"token": str})
    emoji_map: dict[str, str] = {}
    for i, (token, valence) in enumerate(zip(extra["token"], extra["valence"], strict=True)):
        if token.isalpha():
            analyzer.lexicon[token.lower()] = float(valence)
        else:  # emoji: VADER would replace it by its English description, so map it to a private word
            word = f"emojitoken{i}"
            emoji_map[token] = word
            analyzer.lexicon[word] = float(valence)
    return analyzer, emoji_map


#: VADER's normalisation constant: ``compound = s / sqrt(s**2 + alpha)`` for the summed valence ``s``.
VADER_ALPHA = 15.0


def _add_compounds(a: float, b: float) -> float:
    """Compound score of two texts' valences summed: VADER's normalisation inverted, added, reapplied."""
    def valence(c: float) -> float:
        c = min(max(c, -0.9999), 0.9999)
        return c * np.sqrt(VADER_ALPHA / (1.0 - c * c))

    total = valence(a) + valence(b)
    return float(total / np.sqrt(total * total + VADER_ALPHA))


def classify_text(texts: pd.Series, *, lexicon: str | Path | None = None) -> pd.DataFrame:
    """Label each text positive, neutral, negative or spam.

    Parameters
    ----------
    texts : pandas.Series
        Comment or mention texts (untrusted; never evaluated).
    lexicon : str or Path, optional
        CSV with ``token,valence`` rows added to VADER's lexicon; defaults to the shipped slang lexicon.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``texts`` with ``compound`` (VADER score after the slang lexicon and sarcasm rule),
        ``sarcasm`` (bool), ``spam`` (bool) and ``label``.
    """
    analyzer, emoji_map = _analyzer(str(lexicon or RESOURCES_DIR / "sentiment_lexicon.csv"))
    raw = texts.fillna("").astype(str)
    compounds = np.empty(len(raw))
    for i, text in enumerate(raw):
        words: list[str] = []
        for emoji, word in emoji_map.items():
            if emoji in text:
                words += [word] * text.count(emoji)
                text = text.replace(emoji, " ")
        # emoji are scored apart from the words: inside the text VADER's negation reached them, so the
        # 💯 of "never misses 💯" was negated and the praise read as negative
        compounds[i] = _add_compounds(analyzer.polarity_scores(text)["compound"],
                                      analyzer.polarity_scores(" ".join(words))["compound"] if words else 0.0)
    sarcasm = raw.map(lambda t: bool(_SARCASM_PATTERNS.search(t))).to_numpy(dtype=bool)
    # Sarcasm rule: praise paired with an eye-roll or "another ad" reads as negative.
    compounds = np.where(sarcasm & (compounds > 0), -compounds, compounds)
    compounds = np.where(sarcasm & (compounds == 0), -0.3, compounds)
    spam = raw.map(lambda t: bool(_SPAM_PATTERNS.search(t) or _REPEATED_EMOJI.search(t))).to_numpy(dtype=bool)
    label = np.where(compounds >= POSITIVE_THRESHOLD, "positive",
                     np.where(compounds <= NEGATIVE_THRESHOLD, "negative", "neutral"))
    label = np.where(spam, "spam", label)
    return pd.DataFrame({"compound": compounds, "sarcasm": sarcasm, "spam": spam, "label": label},
                        index=texts.index)


@dataclass(frozen=True)
class AudienceVoice:
    """Sentiment of a campaign's comments (and the brand's mentions in its window).

    Attributes
    ----------
    comments : pandas.DataFrame
        One row per comment with ``post_id``, ``creator_id``, ``text``, ``likes`` and the classification.
    shares : pandas.DataFrame
        One row per label: ``label``, ``n``, ``share``, ``ci_low``, ``ci_high`` (Wilson, 95%).
    mentions : pandas.DataFrame or None
        Classified mentions (DMs, mentions, reviews) inside the campaign window.
    """

    campaign_id: str
    comments: pd.DataFrame
    shares: pd.DataFrame
    mentions: pd.DataFrame | None = None
    alpha: float = 0.05
    warnings: tuple[str, ...] = field(default=())

    @property
    def n_comments(self) -> int:
        return int(len(self.comments))

    @property
    def net_sentiment(self) -> float | None:
        """Positive minus negative share among non-spam comments."""
        genuine = self.comments[self.comments["label"] != "spam"]
        if genuine.empty:
            return None
        return float((genuine["label"] == "positive").mean() - (genuine["label"] == "negative").mean())

    def summary(self) -> pd.DataFrame:
        """Tidy table of label shares with intervals."""
        return self.shares.copy()

    def by_creator(self) -> pd.DataFrame:
        """Share of each label per creator (rows: creators; columns: labels; plus ``n``)."""
        if self.comments.empty:
            return pd.DataFrame(columns=["creator_id", *LABELS, "n"])
        counts = pd.crosstab(self.comments["creator_id"], self.comments["label"]).reindex(
            columns=list(LABELS), fill_value=0)
        n = counts.sum(axis=1)
        out = counts.div(n, axis=0)
        out["n"] = n
        return out.reset_index()

    def examples(self, label: str, k: int = 3) -> pd.DataFrame:
        """The ``k`` most-liked comments with ``label`` (text is untrusted: escape before rendering)."""
        sub = self.comments[self.comments["label"] == label]
        return sub.sort_values(["likes", "comment_id"], ascending=[False, True]).head(k)[
            ["creator_id", "text", "likes"]]

    def plot(self, ax=None, *, labels: Mapping[str, str] | None = None):
        """Stacked horizontal bars of label shares per creator (``labels``: creator id -> name shown)."""
        from analysis.plotting import axes

        ax = axes(ax, figsize=(8, 0.4 * max(3, self.comments["creator_id"].nunique()) + 1))
        table = self.by_creator().set_index("creator_id")
        lab = {} if labels is None else dict(labels)
        names = [lab.get(str(c), str(c)) for c in table.index]
        left = np.zeros(len(table))
        for label in LABELS:
            ax.barh(names, table[label], left=left, label=label, color=_LABEL_COLORS[label])
            left += table[label].to_numpy()
        ax.set_xlim(0, 1)
        ax.set_xlabel("Share of comments")
        ax.set_ylabel("Creator")
        ax.set_title("Comment sentiment by creator")
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small", frameon=False)
        return ax

    def reading(self) -> str:
        """One plain-language sentence."""
        if self.comments.empty:
            return "No comments were available for this campaign."
        s = self.shares.set_index("label")
        pos, neg, spam = s.loc["positive"], s.loc["negative"], s.loc["spam"]
        return (f"Of {self.n_comments:,} comments, {pos['share']:.0%} were positive "
                f"(95% CI {pos['ci_low']:.0%} to {pos['ci_high']:.0%}) and {neg['share']:.0%} negative "
                f"({neg['ci_low']:.0%} to {neg['ci_high']:.0%}); {spam['share']:.0%} were spam.")

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` ``sentiment`` block."""
        s = self.shares.set_index("label")
        out: dict[str, Any] = {
            "method": "VADER with TikTok slang lexicon, sarcasm rule and spam filter",
            "n_comments": self.n_comments,
            "net_sentiment": self.net_sentiment,
            "n_mentions": None if self.mentions is None else int(len(self.mentions)),
        }
        for label in LABELS:
            out[f"share_{label}"] = float(s.loc[label, "share"]) if self.n_comments else None
            out[f"share_{label}_ci"] = ([float(s.loc[label, "ci_low"]), float(s.loc[label, "ci_high"])]
                                        if self.n_comments else None)
        return out


def _shares(labels: pd.Series, alpha: float) -> pd.DataFrame:
    n = len(labels)
    rows = []
    for label in LABELS:
        k = int((labels == label).sum())
        lo, hi = proportion_confint(k, n, alpha=alpha, method="wilson") if n else (np.nan, np.nan)
        rows.append({"label": label, "n": k, "share": k / n if n else np.nan,
                     "ci_low": float(lo), "ci_high": float(hi)})
    return pd.DataFrame(rows)


def audience_voice(data: Any, campaign_id: str, *, alpha: float = 0.05,
                   lexicon: str | Path | None = None) -> AudienceVoice:
    """Classify the comments on a campaign's posts and the mentions in its window.

    Parameters
    ----------
    data : Dataset or path
        Processed data (``analysis.data.load``) or its directory.
    campaign_id : str
        The campaign.
    alpha : float
        One minus the interval's coverage.
    lexicon : str or Path, optional
        Replacement slang lexicon (see :func:`classify_text`).

    Raises
    ------
    LookupError
        When the data set has no ``comments`` table (the report then says the section is not available).
    """
    from analysis.data import as_dataset

    ds = as_dataset(data)
    if not ds.has("comments"):
        raise LookupError("the data set has no comments table")
    posts = ds["posts"]
    campaign_posts = posts.loc[posts["campaign_id"] == campaign_id, ["post_id", "creator_id"]]
    comments = ds["comments"].merge(campaign_posts, on="post_id", how="inner")
    comments = comments.sort_values("comment_id").reset_index(drop=True)
    classified = pd.concat([comments, classify_text(comments["text"], lexicon=lexicon)], axis=1)
    mentions = None
    if ds.has("mentions"):
        camp = ds.campaign(campaign_id)
        m = ds["mentions"]
        date_col = "created_date" if "created_date" in m.columns else "created_at"
        dates = pd.to_datetime(m[date_col]).dt.tz_localize(None) if date_col == "created_at" else m[date_col]
        in_window = (dates >= pd.Timestamp(camp["start_date"])) & (dates <= pd.Timestamp(camp["end_date"]))
        m = m.loc[in_window].sort_values("mention_id").reset_index(drop=True)
        mentions = pd.concat([m, classify_text(m["text"], lexicon=lexicon)], axis=1)
    warnings: list[str] = []
    if len(classified) < 30:
        warnings.append(f"Only {len(classified)} comments: sentiment shares are very uncertain.")
    return AudienceVoice(campaign_id=campaign_id, comments=classified,
                         shares=_shares(classified["label"], alpha), mentions=mentions, alpha=alpha,
                         warnings=tuple(warnings))
