"""Follower-growth and conversion attribution to campaigns, creators and posts.

Submodules
----------
followers
    :func:`attribute_followers`: incremental brand followers (baseline regression plus creator
    exposure through an estimated carry-over kernel, creators partially pooled, bootstrap intervals).
conversions
    :func:`attribute_orders`: the same model on daily orders, revenue and new-customer orders (exposure:
    each creator's UTM-tagged site sessions), reconciled with direct (code / UTM / affiliate)
    attribution, with code-leakage flags.
retention
    :func:`follower_retention`: how many of the gained followers stay (30/60/90 days) vs baseline churn.
sensitivity
    :func:`sensitivity`: leave-one-creator-out, alternative kernels and baseline windows.
toy
    :func:`make_toy_data`: a small synthetic data set for examples and null checks.

The method is described in ``docs/methods.md``; its validation in ``docs/validation_attribution.md``.
"""

from __future__ import annotations

from analysis.attribution.conversions import ConversionAttribution, attribute_orders
from analysis.attribution.followers import FollowerAttribution, attribute_followers
from analysis.attribution.repeat import RepeatResult, repeat_collaborations  # noqa: F401

__all__ = ["ConversionAttribution", "FollowerAttribution", "RepeatResult", "attribute_followers", "attribute_orders",
           "repeat_collaborations"]

try:  # optional parts
    from analysis.attribution.retention import RetentionResult, follower_retention  # noqa: F401
    from analysis.attribution.sensitivity import sensitivity  # noqa: F401

    __all__ += ["RetentionResult", "follower_retention", "sensitivity"]
except ImportError:  # pragma: no cover
    pass
