"""``python -m analysis``: the command line."""

from analysis.cli import main

raise SystemExit(main())
