"""Loading processed data: ``load(data_dir) -> Dataset``.

A processed directory is what ``python -m analysis ingest`` writes: one Parquet file per table and
``manifest.json``. Tables are read lazily, once, as pandas DataFrames with the canonical dtypes
(dates ``datetime64[ms]``, timestamps ``datetime64[ms, UTC]``, ids strings).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.ingest import MANIFEST, Manifest
from analysis.schemas import TABLES

__all__ = ["Dataset", "load"]


class Dataset:
    """The processed tables of one directory.

    Access a table as an attribute or item (``ds.posts``, ``ds["posts"]``); an optional table that
    is absent gives ``None`` (check with :meth:`has`). Unknown names raise ``KeyError`` /
    ``AttributeError``.

    Parameters
    ----------
    data_dir : str or Path
        A processed directory written by ``ingest``.
    """

    def __init__(self, data_dir: str | Path):
        self.path = Path(data_dir)
        if not (self.path / MANIFEST).is_file():
            raise ValueError(f"{self.path} is not a processed directory (no {MANIFEST}); "
                             "run `python -m analysis ingest --raw RAW --out DIR` first.")
        self.manifest = Manifest.read(self.path)
        self._cache: dict[str, pd.DataFrame] = {}

    @property
    def tables(self) -> list[str]:
        """Names of the tables present, sorted."""
        return sorted(self.manifest.tables)

    def has(self, name: str) -> bool:
        """Whether table ``name`` is present."""
        return name in self.manifest.tables

    def __getitem__(self, name: str) -> pd.DataFrame | None:
        if name in self._cache:
            return self._cache[name]
        if not self.has(name):
            if name in TABLES or name == "post_daily":
                return None
            raise KeyError(f"unknown table {name!r}; tables: {', '.join(self.tables)}")
        df = pd.read_parquet(self.path / f"{name}.parquet")
        self._cache[name] = df
        return df

    def __getattr__(self, name: str) -> pd.DataFrame | None:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(str(exc)) from None

    def __contains__(self, name: str) -> bool:
        return self.has(name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self.tables))

    def __repr__(self) -> str:
        rows = ", ".join(f"{t}={v['rows']}" for t, v in sorted(self.manifest.tables.items()))
        return f"Dataset({str(self.path)!r}: {rows})"

    @property
    def main_timezone(self) -> str:
        """Time zone of local dates for rows without a campaign."""
        return self.manifest.main_timezone

    @property
    def campaign_ids(self) -> list[str]:
        """Campaign ids, sorted."""
        return sorted(self["campaigns"]["campaign_id"].tolist())

    def campaign(self, campaign_id: str) -> dict:
        """Return the campaign row as a plain dict (dates as ``pandas.Timestamp``).

        Raises
        ------
        KeyError
            If there is no such campaign.
        """
        c = self["campaigns"]
        row = c[c["campaign_id"] == str(campaign_id)]
        if row.empty:
            raise KeyError(f"unknown campaign {campaign_id!r}; campaigns: "
                           f"{', '.join(self.campaign_ids)}")
        rec = row.iloc[0].to_dict()
        return {k: (None if (not isinstance(v, (list, dict)) and pd.isna(v)) else v)
                for k, v in rec.items()}


def load(data_dir: str | Path) -> Dataset:
    """Open a processed directory written by ``ingest``.

    Parameters
    ----------
    data_dir : str or Path
        Processed directory.

    Returns
    -------
    Dataset
    """
    return Dataset(data_dir)


def as_dataset(data: Dataset | str | Path) -> Dataset:
    """Return ``data`` itself when it is already a :class:`Dataset`, else open it with :func:`load`."""
    return data if isinstance(data, Dataset) else load(data)
