"""Shared constants and checks (``analysis.config``)."""

from __future__ import annotations

import pytest

from analysis.config import check_alpha


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, float("nan")])
def test_check_alpha_rejects_levels_outside_zero_one(bad):
    with pytest.raises(ValueError, match="alpha must be between 0 and 1"):
        check_alpha(bad)


def test_check_alpha_accepts_a_level_and_every_analysis_uses_it():
    check_alpha(0.05)
    from analysis.attribution import attribute_followers
    from analysis.lift import proportion_lift

    with pytest.raises(ValueError, match="0.05 gives 95% intervals"):
        proportion_lift(control_successes=1, control_n=10, treatment_successes=2, treatment_n=10, alpha=1.2)
    with pytest.raises(ValueError, match="0.05 gives 95% intervals"):
        attribute_followers({}, "C01", alpha=0)
