"""A small synthetic data set in the processed-table layout, for examples and null checks.

Its follow mechanism is deliberately not the attribution model's form: views of each post
bring brand profile visits at a creator-specific rate, a share of the visitors follow after
a gamma-distributed delay, and the baseline is negative-binomial with a multiplicative trend,
weekly pattern and autocorrelated log-level noise. ``effect=0`` gives a null campaign (posts
with views but no effect on the brand account).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.config import ATTRIBUTION_TAIL_DAYS


def make_toy_data(*, seed: int = 0, days: int = 365, creators: int = 25, posts: int = 100,
                  effect: float = 1.0, campaign_days: int = 42, start_day: int = 180,
                  order_effect: float = 1.0) -> tuple[dict[str, pd.DataFrame], dict]:
    """Simulate one brand account with one campaign.

    Parameters
    ----------
    seed : int
        Random seed.
    days : int
        Days of brand account history.
    creators, posts : int
        Creators in the campaign and campaign posts (each creator posts at least once).
    effect, order_effect : float
        Multipliers of the campaign's true effect on follows and on orders (0 for a null campaign).
    campaign_days : int
        Length of the campaign.
    start_day : int
        Day index of the campaign start.

    Returns
    -------
    tables : dict of str to pandas.DataFrame
        ``campaigns, creators, contracts, posts, post_daily, brand_account_daily, paid_media_daily, orders``.
    truth : dict
        ``{"followers": {"incremental", "by_creator"}, "conversions": {"incremental": {"orders", "revenue"}}}``
        counting what arrives from the campaign start to its end plus the attribution tail.
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2025-01-06", periods=days, freq="D")
    t = np.arange(days)
    start, end = dates[start_day], dates[start_day + campaign_days - 1]
    win_end_idx = min(days - 1, start_day + campaign_days - 1 + ATTRIBUTION_TAIL_DAYS)
    cid = "C01"
    creator_ids = [f"cr{i:02d}" for i in range(creators)]
    size = np.exp(rng.normal(11.0, 1.2, creators))          # creator followers
    visit_rate = np.exp(rng.normal(np.log(0.006), 0.6, creators))
    n_posts = np.maximum(1, rng.multinomial(posts - creators, np.ones(creators) / creators) + 1)
    post_rows = []
    pdaily = []
    follow_lag = np.diff(np.r_[0.0, np.cumsum(_gamma_pmf(2.5, 2.4, 60))])
    caused = np.zeros((days, creators))
    pid = 0
    for c in range(creators):
        for _ in range(n_posts[c]):
            d0 = start_day + int(rng.integers(0, campaign_days))
            tot = size[c] * np.exp(rng.normal(0.3, 0.8))
            decay = np.exp(-np.arange(days - d0) / rng.uniform(1.5, 5.0)) + 0.02 * np.exp(
                -np.arange(days - d0) / 40.0)
            v = rng.poisson(tot * decay / decay.sum())
            vv = np.zeros(days)
            vv[d0:] = v
            prof = rng.binomial(v, 0.01)
            fol = rng.binomial(prof, 0.2)
            visits = rng.binomial(vv.astype(np.int64), min(1.0, visit_rate[c] * effect))
            newf = rng.binomial(visits, 0.25)
            for d in np.nonzero(newf)[0]:
                lagged = rng.multinomial(newf[d], follow_lag)
                stop = min(days, d + len(lagged))
                caused[d:stop, c] += lagged[: stop - d]
            post_id = f"p{pid:04d}"
            pid += 1
            post_rows.append({"post_id": post_id, "creator_id": creator_ids[c], "campaign_id": cid,
                              "posted_at": (dates[d0] + pd.Timedelta(hours=int(rng.integers(8, 22)))
                                            ).tz_localize("UTC"),
                              "posted_date": dates[d0]})
            pdaily.append(pd.DataFrame({"post_id": post_id, "date": dates[d0:], "views": v.astype(float),
                                        "profile_views": prof.astype(float), "follows": fol.astype(float),
                                        "link_clicks": rng.binomial(v, 0.003).astype(float)}))
    # brand's own posting and paid media
    own = np.zeros(days)
    for d in np.nonzero(rng.random(days) < 2 / 7)[0]:
        tot = np.exp(rng.normal(9.5, 0.7))
        k = np.arange(days - d)
        own[d:] += tot * np.exp(-k / 2.0) / np.exp(-np.arange(60) / 2.0).sum()
    flights = np.zeros(days)
    for f0 in rng.choice(days - 20, 4, replace=False):
        flights[f0:f0 + 14] = 1.0
    impressions = flights * rng.uniform(50_000, 150_000, days)
    # baseline new followers
    dow = np.array([1.0, 0.95, 0.95, 1.0, 1.05, 1.2, 1.15])[dates.day_of_week]
    ar = np.zeros(days)
    for i in range(1, days):
        ar[i] = 0.6 * ar[i - 1] + rng.normal(0, 0.05)
    own_eff = np.convolve(own, _gamma_pmf(1.5, 1.0, 14))[:days] * 0.004
    paid_eff = np.convolve(impressions, _gamma_pmf(1.2, 1.5, 14))[:days] * 0.0004
    mu = 120 * (1 + 0.6 * t / 365) * dow * np.exp(ar) + own_eff + paid_eff
    base = rng.negative_binomial(40, 40 / (40 + mu))
    new_followers = base + caused.sum(axis=1)
    followers = 50_000 + np.cumsum(new_followers)
    lost = rng.binomial(followers.astype(np.int64), 0.0012)
    followers = followers - np.cumsum(lost)
    brand = pd.DataFrame({"brand_account": "toybrand", "date": dates, "followers": followers.astype(float),
                          "new_followers": new_followers.astype(float), "lost_followers": lost.astype(float),
                          "profile_views": (new_followers * 9 + rng.poisson(200, days)).astype(float),
                          "video_views": np.round(own)})
    paid = pd.DataFrame({"date": dates, "channel": "tiktok_ads", "spend": impressions / 1000 * 8.0,
                         "impressions": np.round(impressions)})
    # orders: baseline plus orders caused by views (lagged), some with the creator's code, plus leaks
    views_c = np.zeros((days, creators))
    idx = {p["post_id"]: creator_ids.index(p["creator_id"]) for p in post_rows}
    for df in pdaily:
        c = idx[df["post_id"].iloc[0]]
        views_c[len(dates) - len(df):, c] += df["views"].to_numpy()
    order_lag = _gamma_pmf(1.8, 3.0, 40)
    caused_orders = np.zeros((days, creators), dtype=int)
    for c in range(creators):
        lam = np.convolve(views_c[:, c], order_lag)[:days] * 0.0004 * order_effect * visit_rate[c] / 0.006
        caused_orders[:, c] = rng.poisson(lam)
    base_orders = rng.poisson(25 * dow * (1 + 0.3 * t / 365))
    rows = []
    oid = 0
    codes = {c: f"TOY{c:02d}" for c in range(creators)}
    for d in range(days):
        for _ in range(base_orders[d]):
            leak = start_day <= d <= win_end_idx and rng.random() < 0.03
            code = codes[int(rng.integers(0, creators))] if leak else None
            rows.append((oid, d, None if code is None else code, bool(rng.random() < 0.35)))
            oid += 1
        for c in np.nonzero(caused_orders[d])[0]:
            for _ in range(caused_orders[d, c]):
                rows.append((oid, d, codes[c] if rng.random() < 0.5 else None, bool(rng.random() < 0.6)))
                oid += 1
    orders = pd.DataFrame(rows, columns=["n", "day", "discount_code", "new_customer"])
    orders["order_id"] = "o" + orders["n"].astype(str)
    orders["created_date"] = dates[orders["day"].to_numpy()]
    orders["created_at"] = (orders["created_date"] + pd.Timedelta(hours=12)).dt.tz_localize("UTC")
    orders["revenue"] = np.round(np.exp(rng.normal(np.log(45), 0.4, len(orders))), 2)
    orders["customer_id"] = "cu" + (orders["n"] % 5000).astype(str)
    for col in ("utm_source", "utm_campaign", "utm_content", "affiliate_id"):
        orders[col] = None
    orders["region"] = "US"
    orders = orders.drop(columns=["n", "day"])
    campaigns = pd.DataFrame([{"campaign_id": cid, "brand": "Toy", "name": "Toy launch", "objective": "launch",
                               "start_date": start, "end_date": end, "budget": 50_000.0, "currency": "USD",
                               "brand_account": "toybrand", "timezone": "UTC"}])
    creators_df = pd.DataFrame({"creator_id": creator_ids, "handle": [f"@toy{i:02d}" for i in range(creators)],
                                "followers": np.round(size), "niche": "beauty", "country": "US"})
    contracts = pd.DataFrame({"campaign_id": cid, "creator_id": creator_ids,
                              "fee": np.round(size * 0.02 + 300, 0), "product_cost": 50.0,
                              "deliverables": n_posts, "discount_code": [codes[c] for c in range(creators)],
                              "utm_content": None, "affiliate_id": None})
    win = slice(start_day, win_end_idx + 1)
    rev_mean = float(np.exp(np.log(45) + 0.4 ** 2 / 2))
    truth = {
        "followers": {"incremental": float(caused[win].sum()),
                      "by_creator": {creator_ids[c]: float(caused[win, c].sum()) for c in range(creators)}},
        "conversions": {"incremental": {"orders": float(caused_orders[win].sum()),
                                        "revenue": float(caused_orders[win].sum() * rev_mean)}},
    }
    tables = {"campaigns": campaigns, "creators": creators_df, "contracts": contracts,
              "posts": pd.DataFrame(post_rows), "post_daily": pd.concat(pdaily, ignore_index=True),
              "brand_account_daily": brand, "paid_media_daily": paid, "orders": orders}
    return tables, truth


def _gamma_pmf(shape: float, scale: float, length: int) -> np.ndarray:
    from scipy import stats

    w = np.diff(stats.gamma.cdf(np.arange(length + 1), shape, scale=scale))
    return w / w.sum()
