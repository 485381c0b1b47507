"""Measure whether TikTok influencer programmes work.

Submodules
----------
config
    Paths and shared constants.
simulate
    Mechanistic simulator of an influencer programme with ground truth.
schemas, ingest, data
    Canonical data model (pandera), validated ingest, loading processed data.
metrics, kpis, scorecard
    The metric registry (single source of truth for every KPI) and the KPI engine.
lift
    Incrementality designs: synthetic control, structural time series, DiD, surveys, power.
attribution
    Follower-growth and conversion attribution.
report, results, plotting
    Notebook execution, ``results.json``, the shared plot theme.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
