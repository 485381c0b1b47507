"""Run every many-seed validation study and collect their tables into ``docs/validation.md``.

Each study is its own script (``validation_*.py`` beside this file) that writes
``docs/validation_<name>.md``; this script runs them in turn and concatenates the results.
Run with ``make validate``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs"
STUDIES = ["lift", "did", "survey", "attribution", "ranking", "sensitivity", "repeat", "persistence"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--collect", action="store_true",
                        help="only gather the existing docs/validation_*.md into docs/validation.md")
    args = parser.parse_args()
    status = 0
    for name in [] if args.collect else STUDIES:
        script = HERE / f"validation_{name}.py"
        print(f"== validation study: {name}", flush=True)
        status |= subprocess.call([sys.executable, str(script)])
    parts = ["# Validation studies",
             "",
             "Many-seed studies of every estimator on simulated data with known truth. Regenerate with "
             "`make validate`; the fast test suite keeps pinned-seed versions of the same checks.",
             ""]
    for name in STUDIES:
        doc = DOCS / f"validation_{name}.md"
        if doc.exists():
            text = doc.read_text().strip().splitlines()
            parts += ["#" + line if line.startswith("#") else line for line in text] + [""]
    (DOCS / "validation.md").write_text("\n".join(parts).rstrip() + "\n")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
