"""Mechanistic simulator of a TikTok influencer programme, with ground truth.

The simulator builds a brand's year by mechanism (viewers watch, engage, visit a
profile, follow, click, buy) rather than by copying any estimator's functional form,
and records every injected effect in ``truth.json``. It shares no code with the
estimators it is meant to test.

Submodules
----------
world
    :class:`~analysis.simulate.world.World`, the state shared by the components.
core
    Brand, campaigns, targets, creators, audiences, contracts, posts, post metrics,
    paid media, the brand account's daily followers and the follower truth.
commerce
    Orders, web sessions, geo holdouts, regional sales, brand-lift surveys; conversion and lift truth.
voice
    Comments, mentions, content reviews, creator feedback; sentiment truth.
io
    Deterministic CSV and JSON writing.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.config import DEFAULT_SEED
from analysis.simulate.core import MIN_DAYS, REPEAT_EFFECT, build_core
from analysis.simulate.io import write_dataset
from analysis.simulate.world import World

__all__ = ["World", "build_core", "cli", "generate", "short_exports", "simulate", "totals_exports",
           "weekly_exports"]


def _check_sizes(campaigns: int, days: int) -> None:
    if int(campaigns) < 1:
        raise ValueError(f"campaigns must be at least 1 (got {campaigns}).")
    if int(days) < MIN_DAYS:
        raise ValueError(
            f"days must be at least {MIN_DAYS} (got {days}): the simulator needs a 60-day pre-period, "
            "campaign windows and a 28-day attribution tail."
        )


def _stages(seed: int, campaigns: int, days: int, effect_scale: float = 1.0,
            repeat_effect: float = REPEAT_EFFECT) -> list[tuple[str, object]]:
    """The simulator's components, in order; each takes and returns the world."""

    def core(_world):
        return build_core(seed=seed, campaigns=campaigns, days=days, effect_scale=effect_scale,
                          repeat_effect=repeat_effect)

    def commerce(world: World) -> World:
        from analysis.simulate import commerce as _commerce

        _commerce.add_commerce(world)
        return world

    def voice(world: World) -> World:
        from analysis.simulate import voice as _voice

        _voice.add_voice(world)
        return world

    return [("creators, posts and followers", core), ("orders and sales", commerce),
            ("comments and reviews", voice)]


def generate(*, seed: int = DEFAULT_SEED, campaigns: int = 10, days: int = 365,
             show_progress: bool | None = None,
             effect_scale: float = 1.0,
             repeat_effect: float = REPEAT_EFFECT) -> tuple[dict[str, pd.DataFrame], dict]:
    """Simulate every canonical raw table and the injected truth, in memory.

    Parameters
    ----------
    seed : int
        Master random seed; the same seed gives identical tables.
    campaigns : int
        Number of campaigns over the period (at least 1).
    days : int
        Days of history, starting 2025-01-06 (at least ``MIN_DAYS``).
    show_progress : bool, optional
        Show a progress bar over the components (default: unless ``ANALYSIS_NO_PROGRESS`` is set).
    effect_scale : float
        Multiplier of the campaign-caused brand follows and orders (default 1: the calibrated
        simulator). 0 gives null campaigns: posts with views that cause no brand follows and no
        orders, and a truth of 0, for checking that intervals cover zero.
    repeat_effect : float
        Population multiplier (geometric mean over creators, default ``REPEAT_EFFECT`` = 1.2) of the
        brand-profile-visit rate of a creator's viewers in every campaign after the creator's first
        with the brand; each creator's own multiplier is log-normal around it. 1 switches the repeat
        effect off. Recorded in ``truth["repeat"]`` and ``truth["campaigns"][id]["repeat"]``.

    Returns
    -------
    tables : dict of str to pandas.DataFrame
        Canonical raw tables by name.
    truth : dict
        ``{"seed": int, "campaigns": {campaign_id: {...}}}`` with every injected effect.
    """
    from analysis.progress import progress

    _check_sizes(campaigns, days)
    if not (np.isfinite(effect_scale) and effect_scale >= 0):
        raise ValueError(f"effect_scale must be a number of 0 or more (got {effect_scale}).")
    if not (np.isfinite(repeat_effect) and repeat_effect > 0):
        raise ValueError(f"repeat_effect must be a positive number (got {repeat_effect}); 1 means no effect.")
    world: World | None = None
    disable = None if show_progress is None else not show_progress
    for _name, stage in progress(_stages(int(seed), int(campaigns), int(days), float(effect_scale),
                                         float(repeat_effect)), desc="simulate",
                                 disable=disable):
        world = stage(world)
    assert world is not None
    return world.tables, world.truth


def weekly_exports(tables: dict[str, pd.DataFrame], *, weekday: int = 0) -> dict[str, pd.DataFrame]:
    """The tables as an analyst who exports post metrics once a week would hold them.

    Keeps the ``post_metrics`` snapshots taken on ``weekday`` (0 = Monday) and each post's last snapshot
    (its settled totals); every other table is unchanged. The cumulative counts are those of the daily
    export, so a post's views reach the same total in fewer, larger steps.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        Raw tables from :func:`generate`.
    weekday : int
        Day of the week of the export, 0 (Monday) to 6 (Sunday).

    Returns
    -------
    dict of str to pandas.DataFrame
        A new dict; the input is not modified.
    """
    if weekday not in range(7):
        raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday) (got {weekday!r}).")
    pm = tables["post_metrics"]
    day = pd.to_datetime(pm["date"])
    last = day == day.groupby(pm["post_id"]).transform("max")
    return {**tables, "post_metrics": pm[(day.dt.day_of_week == weekday) | last].reset_index(drop=True)}


def totals_exports(tables: dict[str, pd.DataFrame], *, on_last_day: bool = False) -> dict[str, pd.DataFrame]:
    """The tables as an analyst who exported post metrics once would hold them (one snapshot per post).

    Keeps each post's last ``post_metrics`` snapshot (its settled totals), dated on the day of its last
    metrics or, with ``on_last_day``, on the brand account's last day (one export of every post at the end,
    such as a single TikTok One campaign report); every other table is unchanged.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        Raw tables from :func:`generate`.
    on_last_day : bool
        Date every snapshot on the last day of ``brand_account_daily`` instead of the post's last metrics day.

    Returns
    -------
    dict of str to pandas.DataFrame
        A new dict; the input is not modified.
    """
    pm = tables["post_metrics"]
    day = pd.to_datetime(pm["date"])
    last = pm[day == day.groupby(pm["post_id"]).transform("max")].reset_index(drop=True)
    if on_last_day:
        last = last.assign(date=tables["brand_account_daily"]["date"].max())
    return {**tables, "post_metrics": last}


#: Tables of daily brand-level series that :func:`short_exports` trims (a date column named ``date``).
DAILY_ACCOUNT_TABLES = ("brand_account_daily", "paid_media_daily", "web_sessions_daily", "geo_sales_daily")


def short_exports(tables: dict[str, pd.DataFrame], campaign_id: str, *, before: int = 30,
                  after: int = 56) -> dict[str, pd.DataFrame]:
    """The tables as an analyst who exported the brand's daily series for a short period would hold them.

    Keeps the rows of the daily account tables (:data:`DAILY_ACCOUNT_TABLES`) from ``before`` days before
    the campaign's start to ``after`` days after its end (TikTok Studio's custom date ranges, for example
    the 60 days around a campaign); posts, post metrics, orders and every other table are unchanged.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        Raw tables from :func:`generate`.
    campaign_id : str
        The campaign whose dates the period is built around.
    before, after : int
        Days kept before the campaign's ``start_date`` and after its ``end_date`` (0 or more).

    Returns
    -------
    dict of str to pandas.DataFrame
        A new dict; the input is not modified.
    """
    if before < 0 or after < 0:
        raise ValueError(f"before and after must be 0 or more days (got {before!r} and {after!r}).")
    camp = tables["campaigns"].set_index("campaign_id")
    if campaign_id not in camp.index:
        raise ValueError(f"unknown campaign {campaign_id!r}; the campaigns are {', '.join(map(str, camp.index))}.")
    lo = pd.Timestamp(camp.loc[campaign_id, "start_date"]) - pd.Timedelta(days=before)
    hi = pd.Timestamp(camp.loc[campaign_id, "end_date"]) + pd.Timedelta(days=after)
    out = dict(tables)
    for name in DAILY_ACCOUNT_TABLES:
        if name in out:
            day = pd.to_datetime(out[name]["date"])
            out[name] = out[name][(day >= lo) & (day <= hi)].reset_index(drop=True)
    return out


def simulate(out_dir: str | Path, *, seed: int = DEFAULT_SEED, campaigns: int = 10, days: int = 365,
             show_progress: bool | None = None) -> dict:
    """Simulate a complete raw data set and write it to ``out_dir``.

    Writes ``<table>.csv`` for every canonical table and ``truth.json``. Files are
    first written to a temporary directory beside ``out_dir`` and then moved in, so
    an interrupted run never leaves a half-written table. The same seed gives
    byte-identical files.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Directory to write to (created if needed).
    seed, campaigns, days, show_progress
        As in :func:`generate`.

    Returns
    -------
    dict
        The truth written to ``truth.json``.
    """
    tables, truth = generate(seed=seed, campaigns=campaigns, days=days, show_progress=show_progress)
    write_dataset(Path(out_dir), tables, truth)
    return truth


def cli(args) -> int:
    """Entry point of ``python -m analysis simulate``."""
    from analysis.cli import CommandError

    try:
        _check_sizes(args.campaigns, args.days)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} exists and is not a directory.")
    t0 = time.perf_counter()
    tables, truth = generate(seed=args.seed, campaigns=args.campaigns, days=args.days)
    write_dataset(out, tables, truth)
    elapsed = time.perf_counter() - t0
    width = max(len(name) for name in tables)
    print(f"Simulated {len(truth['campaigns'])} campaigns over {args.days} days "
          f"(seed {args.seed}) in {elapsed:.1f} s:")
    for name in sorted(tables):
        print(f"  {name:<{width}}  {len(tables[name]):>9,d} rows")
    print(f"Tables written to {out}; injected effects in {out / 'truth.json'}")
    return 0
