"""Print ``environment.yml`` from ``requirements.lock`` so conda users get the same pins.

Run as ``python -m analysis._envfile > environment.yml`` (``make env-yml``); a test
checks the committed file matches.
"""

from __future__ import annotations

import sys

from analysis.config import PROJ_ROOT


def render() -> str:
    """Return the text of ``environment.yml`` for the pins in ``requirements.lock``."""
    pins = [
        line.strip()
        for line in (PROJ_ROOT / "requirements.lock").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    ]
    lines = [
        "# Generated from requirements.lock by `make env-yml`; do not edit by hand.",
        "name: tiktok-influencer-analysis",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
        *[f"      - {p}" for p in pins],
        "      - -e .",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())
