"""The simulated world shared by every simulator component.

``core.build_core`` creates a :class:`World` holding the brand, its campaigns and
creators, the posts and their true daily exposure; the commerce and voice
components add their tables and truth to the same object.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class World:
    """Everything simulated so far, plus the injected ground truth.

    Attributes
    ----------
    seed : int
        The master seed; every component draws from :meth:`rng` streams derived from it.
    dates : pandas.DatetimeIndex
        Every simulated calendar day (local dates, naive, at midnight).
    timezone : str
        IANA time zone of the brand (all campaigns share it), e.g. ``"America/New_York"``.
    currency : str
        ISO currency code of every amount (``"USD"``).
    brand, brand_account : str
        Brand name and its TikTok account handle.
    tables : dict of str to pandas.DataFrame
        Canonical raw tables (CONTRACT section 2 columns) generated so far. Date columns hold
        naive ``datetime64`` at midnight, timestamp columns (``posted_at``, ``created_at``)
        tz-aware UTC ``datetime64``, booleans ``bool``; ids are strings. The CSV writer formats
        them (ISO dates, ISO timestamps with ``+00:00``, ``true``/``false``).
    exposure : pandas.DataFrame
        True daily views of every campaign post: ``post_id, creator_id, campaign_id, date, views,
        link_clicks`` (integers; ``date`` naive local midnight). These are the true increments,
        not the glitchy reported snapshots.
    designs : dict of str to dict
        ``campaign_id -> {"geo": bool, "survey": bool, "staggered": bool}``: which measurement
        designs the data set supports for each campaign. Geo and staggered campaigns' windows
        (start to end + attribution tail) never overlap each other.
    truth : dict
        ``{"seed": int, "campaigns": {campaign_id: {...}}}`` (CONTRACT section 3 names).
    caused_follows : pandas.DataFrame
        Brand follows caused by campaign posts: ``campaign_id, creator_id, view_date, follow_date,
        follows, lost_within_60d`` (one row per creator, view day and follow day).
    """

    seed: int
    dates: pd.DatetimeIndex
    timezone: str
    currency: str
    brand: str
    brand_account: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    exposure: pd.DataFrame = field(default_factory=pd.DataFrame)
    designs: dict[str, dict] = field(default_factory=dict)
    truth: dict = field(default_factory=dict)
    caused_follows: pd.DataFrame = field(default_factory=pd.DataFrame)

    def rng(self, name: str) -> np.random.Generator:
        """Return an independent random stream for the component ``name``.

        The stream depends only on the master seed and ``name``, so adding or
        changing one component never shifts another component's draws.
        """
        return np.random.default_rng([int(self.seed), zlib.crc32(name.encode("utf-8"))])

    @property
    def campaigns(self) -> pd.DataFrame:
        """The ``campaigns`` table (one row per campaign)."""
        return self.tables["campaigns"]

    def campaign_window(self, campaign_id: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Return ``(start_date, end_date)`` of a campaign as naive midnight timestamps."""
        row = self.tables["campaigns"].set_index("campaign_id").loc[campaign_id]
        return pd.Timestamp(row["start_date"]), pd.Timestamp(row["end_date"])
