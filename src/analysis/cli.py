"""Command line: ``python -m analysis COMMAND`` (see the README and CONTRACT).

Each command's work lives in its own module; this file only parses arguments and
dispatches, importing the module lazily so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from analysis import __version__
from analysis.config import DEFAULT_SEED


class CommandError(Exception):
    """An error whose message is shown to the user without a traceback (exit status 2)."""


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="write a realistic raw data set (every canonical table) and truth.json",
        description="Simulate a TikTok influencer programme by mechanism (viewers, watch, follow, buy) and "
        "write every canonical raw table as CSV plus truth.json with every injected effect.",
    )
    p.add_argument("--out", required=True, type=Path, help="directory to write the raw tables to")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    p.add_argument("--campaigns", type=int, default=10, help="number of campaigns (default 10)")
    p.add_argument("--days", type=int, default=365, help="days of history (default 365)")
    p.set_defaults(_target="analysis.simulate:cli")


def _add_ingest(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest",
        help="validate and normalise raw tables into processed Parquet",
        description="Read every table in --raw, validate all of them, report every problem at once "
        "(exit 2, nothing written), else write normalised Parquet to --out atomically.",
    )
    p.add_argument("--raw", required=True, type=Path, help="directory of raw tables (CSV, Parquet or XLSX)")
    p.add_argument("--out", required=True, type=Path, help="processed directory to (re)write")
    p.set_defaults(_target="analysis.ingest:cli")


def _add_kpis(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kpis", help="write a KPI table (one row per entity, one column per metric)")
    p.add_argument("--data", required=True, type=Path, help="processed directory written by ingest")
    p.add_argument("--level", required=True, choices=["post", "creator", "campaign"])
    p.add_argument("--campaign", default=None, help="restrict to one campaign id")
    p.add_argument("--out", required=True, type=Path, help="output file (.csv or .parquet)")
    p.set_defaults(_target="analysis.kpis:cli")


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="execute the campaign report notebook for each campaign")
    p.add_argument("--data", required=True, type=Path, help="processed directory written by ingest")
    p.add_argument("--out", required=True, type=Path, help="directory for the reports")
    p.add_argument("--campaign", nargs="+", default=None, metavar="ID", help="campaign ids (default: all)")
    p.add_argument("--jobs", type=int, default=None, help="parallel notebooks (default: number of cores)")
    p.set_defaults(_target="analysis.report:cli")


def _add_postmortem(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("postmortem", help="execute the academic-style post-mortem notebook for one campaign, "
                       "with HTML")
    p.add_argument("--data", required=True, type=Path, help="processed directory written by ingest")
    p.add_argument("--campaign", required=True, metavar="ID", help="the campaign to write up")
    p.add_argument("--out", required=True, type=Path,
                   help="directory for OUT/<campaign>/postmortem.ipynb, postmortem.html and results.json")
    p.set_defaults(_target="analysis.report:postmortem_cli")


def _add_not_yet(sub: argparse._SubParsersAction, name: str, help_: str, args: list[tuple]) -> None:
    p = sub.add_parser(name, help=f"{help_} (not available in this release)")
    for flags, kw in args:
        p.add_argument(*flags, **kw)
    p.set_defaults(_target=None, _name=name)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for every command of the contract."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Measure whether TikTok influencer programmes work.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_simulate(sub)
    _add_ingest(sub)
    _add_kpis(sub)
    _add_report(sub)
    data = (("--data",), {"required": True, "type": Path})
    out = (("--out",), {"required": True, "type": Path})
    _add_postmortem(sub)
    _add_not_yet(sub, "portfolio", "cross-campaign and creator-relationship analysis", [data, out])
    _add_not_yet(sub, "monitor", "real-time pacing, anomalies and always-valid lift",
                 [data, (("--campaign",), {"required": True}), (("--as-of",), {"required": True}),
                  (("--out",), {"type": Path})])
    _add_not_yet(sub, "shortlist", "rank candidate creators for a brief",
                 [data, (("--brief",), {"required": True, "type": Path}), out])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status."""
    # pandera imports PySpark's pandas layer when PySpark is installed; its pandas-3 notice is noise here.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    args = build_parser().parse_args(argv)
    if args._target is None:
        print(f"`{args._name}` is not available in this release of the toolkit.", file=sys.stderr)
        return 2
    module_name, func_name = args._target.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    try:
        return int(func(args) or 0)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
