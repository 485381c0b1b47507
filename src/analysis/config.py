"""Project paths, shared constants and the one check of an interval level, named once.

Paths resolve relative to the repository when the package is installed in
editable mode (the normal set-up); every command also takes explicit paths.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJ_ROOT = PACKAGE_DIR.parents[1]
DATA_DIR = PROJ_ROOT / "data"
RAW_DIR = DATA_DIR / "raw"
PROCESSED_DIR = DATA_DIR / "processed"
REPORTS_DIR = PROJ_ROOT / "reports"
NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"
DOCS_DIR = PROJ_ROOT / "docs"
RESOURCES_DIR = PACKAGE_DIR / "resources"

#: Local, git-ignored file holding the salt used to pseudonymise customer ids.
SALT_FILE = PROJ_ROOT / ".salt"

#: Days after a campaign's end that still count towards its effects
#: (follows and orders caused by its posts arrive with a lag).
ATTRIBUTION_TAIL_DAYS = 28

#: Days after a campaign's end that form its post-campaign window (long-term effects).
POST_CAMPAIGN_DAYS = 90

#: Creator tiers by followers: (name, lower bound inclusive, upper bound exclusive).
TIERS: tuple[tuple[str, int, float], ...] = (
    ("nano", 0, 10_000),
    ("micro", 10_000, 100_000),
    ("mid", 100_000, 500_000),
    ("macro", 500_000, 1_000_000),
    ("mega", 1_000_000, float("inf")),
)

DEFAULT_SEED = 20251


def check_alpha(alpha: float) -> None:
    """Raise a readable ``ValueError`` unless ``0 < alpha < 1`` (one minus an interval's coverage)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (got {alpha!r}); 0.05 gives 95% intervals.")
