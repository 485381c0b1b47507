"""Comment sentiment: lexicon extensions, sarcasm, spam, and recovery of the simulator's labels."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.sentiment import LABELS, audience_voice, classify_text


@pytest.mark.parametrize(("text", "label"), [
    ("this is fire 🔥🔥", "positive"),           # VADER alone scores "fire" negative
    ("lowkey obsessed with this", "positive"),
    ("great, another ad 🙄", "negative"),        # sarcasm rule
    ("follow me for a free iPhone, link in bio", "spam"),
    ("me encanta!!", "positive"),               # Spanish
    ("worst product ever 😡", "negative"),
    ("where can I buy this?", "neutral"),
    ("liamnotes never misses 💯", "positive"),  # the negation must not reach the emoji
    ("not good 😡", "negative"),
])
def test_classify_text_examples(text, label):
    assert classify_text(pd.Series([text]))["label"].iloc[0] == label


def test_emoji_valence_is_added_as_vader_adds_valences():
    """Scoring two parts apart and adding them equals VADER's own score of both when no rule links them."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from analysis.sentiment import _add_compounds

    v = SentimentIntensityAnalyzer()
    both = v.polarity_scores("good great")["compound"]
    parts = _add_compounds(v.polarity_scores("good")["compound"], v.polarity_scores("great")["compound"])
    assert parts == pytest.approx(both, abs=1e-3)
    assert _add_compounds(0.4404, 0.0) == pytest.approx(0.4404, abs=1e-4)
    assert _add_compounds(0.5, -0.5) == pytest.approx(0.0, abs=1e-12)


def test_classify_text_keeps_index_and_never_evaluates_markup():
    s = pd.Series(["<script>alert(1)</script>", "nice"], index=[10, 20])
    out = classify_text(s)
    assert list(out.index) == [10, 20]
    assert set(out["label"]) <= set(LABELS)


def test_audience_voice_recovers_simulated_mix(sim_processed, sim_truth):
    from analysis.data import load

    ds = load(sim_processed)
    checked = 0
    for cid, truth in sim_truth["campaigns"].items():
        sent = truth.get("sentiment")
        if not sent or not sent.get("labels"):
            continue
        voice = audience_voice(ds, cid)
        labels = voice.comments.set_index("comment_id")["label"]
        true = pd.Series(sent["labels"]).reindex(labels.index)
        accuracy = float((labels == true).mean())
        assert accuracy >= 0.7, f"{cid}: accuracy {accuracy:.2f}"
        d = voice.to_dict()
        assert d["n_comments"] == len(labels)
        assert abs(d["share_positive"] - sent["share_positive"]) < 0.12
        lo, hi = d["share_positive_ci"]
        assert lo <= d["share_positive"] <= hi
        checked += 1
    assert checked >= 1
