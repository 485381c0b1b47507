"""Voice of the audience and of the team: comments, mentions, content reviews, creator feedback.

Comments are written from phrase banks in five languages with slang, emojis,
sarcasm, questions and spam, and each carries a true label (``positive``,
``neutral``, ``negative``, ``spam``) kept in the truth, never in the table.
A handful of comments carry HTML/script payloads: comment text is untrusted and every
report must escape it.

Truth added per campaign:

``sentiment``
    ``n_comments``, ``share_positive``, ``share_negative``, ``share_neutral``,
    ``share_spam`` (the realised mix of the campaign's comments in the table),
    ``share_non_english`` and ``labels`` (``comment_id -> label``).
``review_icc``, ``review_noise_sd``, ``content_reviews``
    The agreement built into the content reviews: every score is
    ``round(quality + reviewer bias + noise)`` clipped to 1-5, and ``review_icc`` is the
    single-rater absolute-agreement intra-class correlation on the latent (unrounded)
    scale, ``var(quality) / (var(quality) + var(bias) + noise_sd**2)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.simulate.world import World

LABELS = ("positive", "neutral", "negative", "spam")
LANGUAGES = ("en", "es", "pt", "fr", "de")

#: Average comment mix before campaign-to-campaign variation.
BASE_MIX = {"positive": 0.48, "neutral": 0.28, "negative": 0.15, "spam": 0.09}
#: Share of comments in each language.
LANGUAGE_MIX = {"en": 0.84, "es": 0.06, "pt": 0.04, "fr": 0.03, "de": 0.03}

REVIEWERS = ("reviewer_a", "reviewer_b", "reviewer_c")
CRITERIA = ("brand_fit", "hook", "clarity", "authenticity")
FEEDBACK_QUESTIONS = ("brief_clarity", "communication", "payment_timeliness", "creative_freedom",
                      "would_work_again")

#: Untrusted markup that appears in a few comments (labelled spam).
XSS_PAYLOADS = (
    "<script>alert(1)</script>",
    "nice vid <img src=x onerror=alert(1)>",
    "<img src=x onerror=alert(1)> free gift in bio",
    'claim here <a href="javascript:alert(1)">prize</a> <script>alert(1)</script>',
)

PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "positive": (
            "this is fire", "no cap this actually works", "lowkey obsessed", "ok I need this now",
            "just ordered", "the glow is unreal", "adding to cart rn", "{handle} never misses",
            "been using it for 2 weeks and my skin is thanking me", "obsessed is an understatement",
            "W product", "this slaps", "bestie you convinced me", "10/10 would recommend",
            "the way I ran to buy this", "bought it after your last video and it's sooo good",
            "ngl this is the best one I've tried", "my sister stole mine, that's how good it is",
            "finally a collab that makes sense", "okay this is actually cute",
        ),
        "neutral": (
            "where can I buy this?", "does it ship to Canada?", "how much is it?", "what shade is that?",
            "is it cruelty free?", "link?", "what's the code again?", "first", "is this sponsored?",
            "{handle} what song is this", "how long does shipping take?", "does it work on oily skin?",
            "saw this on my fyp", "commenting for the algorithm", "wait is this the new one or the old one",
            "part 2?", "what camera do you use", "how long does one last?",
        ),
        "negative": (
            "great, another ad", "oh wow another sponsored post, so authentic",
            "love how everyone suddenly uses this product", "broke me out, not worth it", "overpriced tbh",
            "mine arrived broken and support ghosted me", "unfollowing, too many ads",
            "this didn't work for me at all", "sure it's 'your favorite' lol", "ngl this looks cheap",
            "the code doesn't even work", "waited 3 weeks for delivery", "{handle} you used to be real",
            "returned it after a week, smelled weird", "yeah right, nobody actually uses this",
        ),
        "spam": (
            "follow me for free iPhone link in bio", "I made $5000 this week, DM me",
            "check my page for giveaways", "free followers at my bio", "sub4sub?",
            "hot singles in your area link in bio", "click my profile for a free gift card",
            "earn $$$ from home, ask me how", "promote your page here, dm",
        ),
    },
    "es": {
        "positive": ("me encanta", "lo necesito ya", "qué bonito", "ya lo pedí, increíble"),
        "neutral": ("¿dónde lo compro?", "¿envían a México?", "¿cuánto cuesta?"),
        "negative": ("otra vez publicidad", "muy caro la verdad", "a mí no me funcionó"),
        "spam": ("sígueme y gana un iPhone gratis", "gana dinero desde casa, escríbeme"),
    },
    "pt": {
        "positive": ("amei demais", "quero muito", "perfeito, já comprei"),
        "neutral": ("onde compra?", "entrega no Brasil?", "qual o preço?"),
        "negative": ("mais uma propaganda", "caro demais", "não funcionou pra mim"),
        "spam": ("me segue que eu sigo de volta", "ganhe seguidores grátis no meu perfil"),
    },
    "fr": {
        "positive": ("j'adore", "trop beau", "je l'ai commandé, trop bien"),
        "neutral": ("c'est dispo en France ?", "ça coûte combien ?", "c'est quelle teinte ?"),
        "negative": ("encore une pub", "trop cher", "ça ne marche pas du tout"),
        "spam": ("suivez-moi pour gagner un iPhone gratuit", "argent facile, écrivez-moi"),
    },
    "de": {
        "positive": ("richtig geil", "brauche ich sofort", "schon bestellt, mega"),
        "neutral": ("gibt es das in Deutschland?", "wie teuer ist das?", "welche Farbe ist das?"),
        "negative": ("schon wieder Werbung", "viel zu teuer", "hat bei mir nicht funktioniert"),
        "spam": ("folgt mir für ein gratis iPhone", "schnelles Geld, schreib mir"),
    },
}

EMOJIS = {
    "positive": ("🔥", "😍", "✨", "❤️", "😭❤️", "🙌", "💯", "🔥🔥", ""),
    "neutral": ("👀", "🤔", "", "", "🙏"),
    "negative": ("🙄", "🙃", "😒", "👎", "💀", ""),
    "spam": ("🔥🔥", "💰💰", "🎁🎁", "👉👉", "💳"),
}

MENTION_TEXT = {
    "dm": {
        "positive": ("hi! loved the {product}, do you do collabs? I have 12k followers",
                     "just wanted to say the {product} is amazing"),
        "neutral": ("hi, my order hasn't arrived yet, can you check?", "do you ship to Australia?",
                    "what's the status of my refund?", "is the discount code still valid?"),
        "negative": ("my order arrived damaged and nobody answers my emails",
                     "I was charged twice for the same order"),
        "spam": ("promote your brand to 2M followers, cheap rates!", "verify your account here or it gets deleted"),
    },
    "mention": {
        "positive": ("obsessed with my new {product} from {brand}", "{brand} did it again"),
        "neutral": ("anyone tried {brand}'s {product}?", "saw {brand} everywhere on my fyp today"),
        "negative": ("{brand} please stop putting ads on my fyp", "{brand} customer service is a joke"),
        "spam": ("{brand} follow back pls", "giveaway alert tag {brand} to win"),
    },
    "review": {
        "positive": ("★★★★★ love it, arrived fast", "★★★★★ exactly like in the video",
                     "★★★★☆ great {product}, a bit pricey"),
        "neutral": ("★★★☆☆ it's fine, nothing special", "★★★☆☆ does the job"),
        "negative": ("★★☆☆☆ packaging was damaged", "★☆☆☆☆ did not work for me, returning it"),
        "spam": ("★★★★★ visit my store for cheap copies", "★★★★★ best site for followers"),
    },
}

FEEDBACK_COMMENTS: dict[str, dict[str, tuple[str, ...]]] = {
    "brief_clarity": {
        "high": ("Brief was clear and short.", "Loved that the brief had example hooks."),
        "mid": ("Brief was fine, a bit long.", ""),
        "low": ("The brief changed twice after filming.", "Unclear what the key message was."),
    },
    "communication": {
        "high": ("Great team, quick answers.", "Always reachable, super friendly."),
        "mid": ("Answers took a day or two.", ""),
        "low": ("Nobody answered my questions for a week.", "Feedback came too late to reshoot."),
    },
    "payment_timeliness": {
        "high": ("Paid on time.", "Payment arrived within a week."),
        "mid": ("Payment was a little late.", ""),
        "low": ("Payment arrived 60 days late.", "Still chasing the invoice."),
    },
    "creative_freedom": {
        "high": ("Loved the creative freedom.", "They trusted my style."),
        "mid": ("Some freedom, some fixed talking points.", ""),
        "low": ("Felt like reading a script.", "Too many revision rounds for one video."),
    },
    "would_work_again": {
        "high": ("Would happily work together again!", "Smooth collaboration, count me in next time."),
        "mid": ("Maybe, depends on the product.", ""),
        "low": ("Probably not.", "Not at this rate."),
    },
}


# --------------------------------------------------------------------------------------------
# utilities
# --------------------------------------------------------------------------------------------

def _str_col(values) -> pd.Series:
    return pd.Series(pd.array(np.asarray(values, dtype=object), dtype="str"))


def _pick(rng: np.random.Generator, options: tuple[str, ...], n: int) -> np.ndarray:
    return np.asarray(options, dtype=object)[rng.integers(0, len(options), n)]


def _campaign_posts(world: World) -> pd.DataFrame:
    posts = world.tables["posts"].copy()
    posts["posted_at"] = pd.to_datetime(posts["posted_at"], utc=True)
    cid = posts["campaign_id"].astype("str")
    posts["campaign_id"] = cid.where(cid.notna() & (cid.str.strip() != ""), None)
    return posts


def _data_end_utc(world: World) -> pd.Timestamp:
    end = (world.dates[-1] + pd.Timedelta(days=1)).tz_localize(world.timezone)
    return end.tz_convert("UTC") - pd.Timedelta(seconds=1)


def _write_text(rng: np.random.Generator, labels: np.ndarray, langs: np.ndarray,
                handles: np.ndarray) -> list[str]:
    """Comment text for each (label, language) with slang, emojis and casing variation."""
    n = len(labels)
    base = np.empty(n, dtype=object)
    for lang in LANGUAGES:
        for lab in LABELS:
            sel = (langs == lang) & (labels == lab)
            if sel.any():
                base[sel] = _pick(rng, PHRASES[lang][lab], int(sel.sum()))
    emoji = np.empty(n, dtype=object)
    for lab in LABELS:
        sel = labels == lab
        if sel.any():
            emoji[sel] = _pick(rng, EMOJIS[lab], int(sel.sum()))
    style = rng.uniform(size=n)
    out = []
    for text, e, h, s in zip(base, emoji, handles, style):
        text = text.replace("{handle}", h)
        if s < 0.15:
            text = text.upper()
        elif s < 0.45:
            text = text.lower()
        elif s < 0.52 and text[-1:].isalpha():
            text = text + text[-1] * 3                                  # "soooo" style stretching
        out.append(f"{text} {e}".strip())
    return out


# --------------------------------------------------------------------------------------------
# comments
# --------------------------------------------------------------------------------------------

def simulate_comments(world: World) -> pd.DataFrame:
    """Return sampled comments with their hidden ``label``, ``language`` and ``campaign_id``.

    Campaign posts get a sample growing with their views; about a third of organic posts
    get a few comments. Each campaign has its own true mix of labels.
    """
    rng = world.rng("comments")
    posts = _campaign_posts(world)
    views = world.exposure.groupby("post_id")["views"].sum() if not world.exposure.empty else pd.Series()
    camp = posts[posts["campaign_id"].notna()]
    org = posts[posts["campaign_id"].isna()]
    if len(org):
        org = org.iloc[np.sort(rng.choice(len(org), size=min(len(org), max(1, len(org) // 3), 200),
                                          replace=False))]
    v = camp["post_id"].map(views).fillna(0).to_numpy(dtype=float)
    n_camp = np.minimum(rng.poisson(4 + 6 * np.log10(v + 1)), 80)
    n_org = rng.poisson(6, len(org))
    sample = pd.concat([camp.assign(n=n_camp), org.assign(n=n_org)], ignore_index=True)
    sample = sample[sample["n"] > 0]

    # each campaign's true mix; organic posts use the base mix
    cids = sorted(camp["campaign_id"].unique())
    alpha = 30 * np.array([BASE_MIX[k] for k in LABELS])
    mixes = {c: rng.dirichlet(alpha) for c in cids}
    rows = np.repeat(np.arange(len(sample)), sample["n"].to_numpy())
    com = sample.iloc[rows][["post_id", "creator_id", "campaign_id", "posted_at"]].reset_index(drop=True)
    m = len(com)
    u = rng.uniform(size=m)
    mix = np.array([mixes.get(c, np.array([BASE_MIX[k] for k in LABELS])) if c is not None and c == c
                    else np.array([BASE_MIX[k] for k in LABELS]) for c in com["campaign_id"].to_numpy()])
    label_idx = (u[:, None] > np.cumsum(mix, axis=1)).sum(axis=1).clip(0, len(LABELS) - 1)
    labels = np.asarray(LABELS, dtype=object)[label_idx]
    langs = rng.choice(np.asarray(LANGUAGES, dtype=object), size=m, p=list(LANGUAGE_MIX.values()))
    handles = com["creator_id"].astype("str").to_numpy(dtype=object)
    if "creators" in world.tables and "handle" in world.tables["creators"]:
        hmap = world.tables["creators"].set_index("creator_id")["handle"].astype("str")
        handles = com["creator_id"].map(hmap).fillna("@creator").to_numpy(dtype=object)
    text = np.asarray(_write_text(rng, labels, langs, handles), dtype=object)

    # a handful of script payloads on campaign posts (untrusted text), labelled spam
    camp_rows = np.nonzero(com["campaign_id"].notna().to_numpy())[0]
    if len(camp_rows):
        hit = rng.choice(camp_rows, size=min(len(camp_rows), 2 * len(XSS_PAYLOADS)), replace=False)
        for j, i in enumerate(hit):
            text[i] = XSS_PAYLOADS[j % len(XSS_PAYLOADS)]
            labels[i] = "spam"
            langs[i] = "en"

    # timing: most comments within a day of posting, a long tail over two weeks
    hours = np.where(rng.uniform(size=m) < 0.85, rng.exponential(10, m), rng.uniform(24, 336, m))
    created = com["posted_at"] + pd.to_timedelta(np.round(hours * 3600 + 30), unit="s")
    com["created_at"] = created.dt.as_unit("s")
    com["text"] = text
    com["label"] = labels
    com["language"] = langs
    spam = labels == "spam"
    likes = np.where(spam, rng.poisson(0.3, m), np.floor(rng.pareto(1.3, m) * 2)).astype("int64")
    com["likes"] = np.minimum(likes, 50_000)
    fans = max(50, m // 3)
    author = np.where(spam, rng.integers(0, 25, m), 25 + rng.integers(0, fans, m))
    labels_id = 100_000_000 + rng.choice(899_999_999, size=25 + fans, replace=False)
    com["author_id"] = _str_col(np.char.add("U", labels_id[author].astype(str)).astype(object))
    com = com[com["created_at"] <= _data_end_utc(world)]
    com = com.sort_values(["created_at", "post_id"], kind="stable").reset_index(drop=True)
    com["comment_id"] = _str_col(np.char.add("CM", (1_000_001 + np.arange(len(com))).astype(str)).astype(object))
    for col in ("post_id", "text", "label", "language"):
        com[col] = _str_col(com[col].to_numpy(dtype=object))
    return com


def _sentiment_truth(world: World, com: pd.DataFrame) -> None:
    cids = world.tables["campaigns"]["campaign_id"].astype("str")
    for cid in cids:
        sub = com[com["campaign_id"] == cid]
        n = len(sub)
        counts = sub["label"].value_counts()
        t = world.truth.setdefault("campaigns", {}).setdefault(cid, {})
        t["sentiment"] = {
            "n_comments": int(n),
            **{f"share_{k}": (float(counts.get(k, 0) / n) if n else None) for k in LABELS},
            "share_non_english": float((sub["language"] != "en").mean()) if n else None,
            "labels": dict(zip(sub["comment_id"], sub["label"])),
        }


# --------------------------------------------------------------------------------------------
# mentions
# --------------------------------------------------------------------------------------------

def simulate_mentions(world: World) -> pd.DataFrame:
    """Return brand mentions, DMs and reviews with their hidden ``label``.

    Daily volume is a baseline plus a share of the campaigns' exposure, so mentions
    rise while campaigns run.
    """
    rng = world.rng("mentions")
    n_days = len(world.dates)
    views = np.zeros(n_days)
    if not world.exposure.empty:
        v = world.exposure.groupby("date")["views"].sum()
        idx = world.dates.get_indexer(pd.DatetimeIndex(v.index))
        ok = idx >= 0
        np.add.at(views, idx[ok], v.to_numpy()[ok])
    counts = rng.poisson(3.0 + 1.5e-5 * views)
    day = np.repeat(np.arange(n_days), counts)
    m = len(day)
    source = rng.choice(np.array(["mention", "dm", "review"], dtype=object), size=m, p=[0.6, 0.25, 0.15])
    labels = rng.choice(np.asarray(LABELS, dtype=object), size=m, p=[0.45, 0.33, 0.15, 0.07])
    text = np.empty(m, dtype=object)
    for src in ("mention", "dm", "review"):
        for lab in LABELS:
            sel = (source == src) & (labels == lab)
            if sel.any():
                text[sel] = _pick(rng, MENTION_TEXT[src][lab], int(sel.sum()))
    product = _pick(rng, ("serum", "glow kit", "lip oil", "bundle"), m)
    text = np.array([t.replace("{brand}", world.brand).replace("{product}", p) for t, p in zip(text, product)],
                    dtype=object)
    secs = rng.integers(0, 86_400, m).astype("timedelta64[s]")
    local = pd.DatetimeIndex(world.dates.to_numpy()[day] + secs)
    created = local.tz_localize(world.timezone, ambiguous=np.zeros(m, dtype=bool),
                                nonexistent="shift_forward").tz_convert("UTC").as_unit("s")
    out = pd.DataFrame({"created_at": created, "source": _str_col(source), "text": _str_col(text),
                        "label": _str_col(labels)})
    out = out.sort_values("created_at", kind="stable").reset_index(drop=True)
    out.insert(0, "mention_id", _str_col(np.char.add("M", (100_001 + np.arange(m)).astype(str)).astype(object)))
    return out


# --------------------------------------------------------------------------------------------
# content reviews and creator feedback
# --------------------------------------------------------------------------------------------

def _content_reviews(world: World) -> pd.DataFrame:
    rng = world.rng("content_reviews")
    posts = _campaign_posts(world)
    posts = posts[posts["campaign_id"].notna()].sort_values("post_id").reset_index(drop=True)
    bias = np.array([0.3, 0.0, -0.35]) + rng.normal(0, 0.05, len(REVIEWERS))
    crit_offset = rng.normal(0, 0.25, len(CRITERIA))
    q_sd, crit_sd, perf = 0.55, 0.3, 0.35
    views = world.exposure.groupby("post_id")["views"].sum() if not world.exposure.empty else pd.Series()
    frames = []
    for cid, sub in posts.groupby("campaign_id", sort=True):
        noise_sd = float(rng.uniform(0.35, 0.9))
        lv = np.log10(sub["post_id"].map(views).fillna(0).to_numpy(dtype=float) + 1)
        z = (lv - lv.mean()) / lv.std() if len(lv) > 1 and lv.std() > 0 else np.zeros(len(lv))
        level = rng.normal(3.3, 0.3)
        q = (level + perf * z + rng.normal(0, q_sd, len(sub)))[:, None] + crit_offset[None, :] \
            + rng.normal(0, crit_sd, (len(sub), len(CRITERIA)))                  # posts x criteria
        latent = q[:, :, None] + bias[None, None, :] + rng.normal(0, noise_sd, q.shape + (len(REVIEWERS),))
        score = np.clip(np.round(latent), 1, 5).astype("int64")
        p, c, r = np.meshgrid(np.arange(len(sub)), np.arange(len(CRITERIA)), np.arange(len(REVIEWERS)),
                              indexing="ij")
        frames.append(pd.DataFrame({
            "post_id": sub["post_id"].to_numpy()[p.ravel()],
            "reviewer": np.asarray(REVIEWERS, dtype=object)[r.ravel()],
            "criterion": np.asarray(CRITERIA, dtype=object)[c.ravel()],
            "score": score.ravel(),
        }))
        var_q = perf**2 + q_sd**2 + crit_sd**2
        var_b = float(np.var(bias, ddof=1))
        t = world.truth.setdefault("campaigns", {}).setdefault(str(cid), {})
        t["review_noise_sd"] = noise_sd
        t["review_icc"] = var_q / (var_q + var_b + noise_sd**2)
        t["content_reviews"] = {
            "noise_sd": noise_sd, "quality_sd": float(np.sqrt(var_q)),
            "icc": var_q / (var_q + var_b + noise_sd**2),
            "icc_consistency": var_q / (var_q + noise_sd**2),
            "reviewer_bias": {REVIEWERS[i]: float(bias[i]) for i in range(len(REVIEWERS))},
            "scale": "latent (before rounding to 1-5)",
        }
    if not frames:
        return pd.DataFrame({"post_id": pd.Series(dtype="str"), "reviewer": pd.Series(dtype="str"),
                             "criterion": pd.Series(dtype="str"), "score": pd.Series(dtype="int64")})
    out = pd.concat(frames, ignore_index=True)
    for col in ("post_id", "reviewer", "criterion"):
        out[col] = out[col].astype("str")
    return out


def _creator_feedback(world: World) -> pd.DataFrame:
    rng = world.rng("creator_feedback")
    k = world.tables["contracts"][["campaign_id", "creator_id"]].astype("str").drop_duplicates()
    k = k.sort_values(["campaign_id", "creator_id"]).reset_index(drop=True)
    n, q = len(k), len(FEEDBACK_QUESTIONS)
    satisfaction = rng.normal(3.9, 0.6, n)
    offset = np.array([0.0, 0.2, -0.4, 0.3, 0.1])[:q]
    score = np.clip(np.round(satisfaction[:, None] + offset[None, :] + rng.normal(0, 0.6, (n, q))), 1, 5)
    score = score.astype("int64")
    band = np.where(score >= 4, "high", np.where(score == 3, "mid", "low"))
    comment = np.empty((n, q), dtype=object)
    for j, question in enumerate(FEEDBACK_QUESTIONS):
        for b in ("high", "mid", "low"):
            sel = band[:, j] == b
            comment[sel, j] = _pick(rng, FEEDBACK_COMMENTS[question][b], int(sel.sum()))
    # most creators only write a comment on a question they feel strongly about
    keep = (rng.uniform(size=(n, q)) < 0.35) | (band == "low")
    comment = np.where(keep & (comment != ""), comment, None)
    return pd.DataFrame({
        "campaign_id": _str_col(np.repeat(k["campaign_id"].to_numpy(dtype=object), q)),
        "creator_id": _str_col(np.repeat(k["creator_id"].to_numpy(dtype=object), q)),
        "question": _str_col(np.tile(np.asarray(FEEDBACK_QUESTIONS, dtype=object), n)),
        "score": score.ravel(),
        "comment": _str_col(comment.ravel()),
    })


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------

def add_voice(world: World) -> None:
    """Add ``comments``, ``mentions``, ``content_reviews`` and ``creator_feedback`` to ``world``.

    Also records per-campaign ``sentiment`` and review-agreement truth, and the labels of
    the mentions under ``world.truth["mentions"]``.

    Parameters
    ----------
    world : World
        A world with ``campaigns``, ``contracts``, ``posts`` and ``exposure`` already simulated.
    """
    missing = [t for t in ("campaigns", "contracts", "posts") if t not in world.tables]
    if missing:
        raise ValueError(f"add_voice needs the {', '.join(missing)} table(s) in the world first")
    com = simulate_comments(world)
    world.tables["comments"] = com[["comment_id", "post_id", "created_at", "text", "likes", "author_id"]].copy()
    _sentiment_truth(world, com)
    men = simulate_mentions(world)
    world.tables["mentions"] = men[["mention_id", "created_at", "source", "text"]].copy()
    counts = men["label"].value_counts()
    world.truth["mentions"] = {
        "n": int(len(men)),
        **{f"share_{k}": (float(counts.get(k, 0) / len(men)) if len(men) else None) for k in LABELS},
        "labels": dict(zip(men["mention_id"], men["label"])),
    }
    world.tables["content_reviews"] = _content_reviews(world)
    world.tables["creator_feedback"] = _creator_feedback(world)
