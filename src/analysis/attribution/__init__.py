"""Follower-growth and conversion attribution to campaigns, creators and posts.

Submodules
----------
followers
    :func:`attribute_followers`: incremental brand followers (baseline regression plus creator
    exposure through an estimated carry-over kernel, creators partially pooled, bootstrap intervals).
conversions
    :func:`attribute_orders`: the same model on daily orders, revenue and new-customer orders (exposure:
    each creator's UTM-tagged site sessions), reconciled with direct (code / UTM / affiliate)
    attribution, with code-leakage flags; a geo-test campaign's incremental orders come from its holdout.
geo_orders
    :func:`geo_incremental_orders`: a geo holdout read on the shop's orders by region (synthetic control).
retention
    :func:`follower_retention`: how many of the gained followers stay (30/60/90 days) vs baseline churn.
persistence
    :func:`own_content_persistence`: do the brand's own videos draw more views after the campaign?
sensitivity
    :func:`sensitivity`: leave-one-creator-out, alternative kernels and baseline windows.
repeat
    :func:`repeat_collaborations` and :func:`returning_creators`: do creators who worked with the
    brand before bring more (or fewer) incremental followers per view the next time?
toy
    :func:`make_toy_data`: a small synthetic data set for examples and null checks.

:func:`measured_view_curve` gives the pooled view curve of a data set's posts, to pass as ``view_curve=``
where a campaign's posts were exported once.

The method is described in ``docs/methods.md``; its validation in ``docs/validation_attribution.md``.
"""

from __future__ import annotations

from analysis.attribution._data import measured_view_curve
from analysis.attribution.conversions import ConversionAttribution, attribute_orders
from analysis.attribution.followers import FollowerAttribution, attribute_followers
from analysis.attribution.geo_orders import GeoConversions, geo_incremental_orders
from analysis.attribution.persistence import PersistenceResult, own_content_persistence
from analysis.attribution.repeat import RepeatResult, repeat_collaborations, returning_creators
from analysis.attribution.retention import NoUnfollowData, RetentionResult, follower_retention
from analysis.attribution.sensitivity import SensitivityResult, sensitivity

__all__ = ["ConversionAttribution", "FollowerAttribution", "GeoConversions", "NoUnfollowData", "PersistenceResult",
           "RepeatResult", "RetentionResult", "SensitivityResult", "attribute_followers", "attribute_orders",
           "follower_retention", "geo_incremental_orders", "measured_view_curve", "own_content_persistence",
           "repeat_collaborations", "returning_creators", "sensitivity"]
