"""The one seaborn theme every report figure uses, and shared plot helpers.

Call :func:`set_theme` once (the report notebooks do, in their first cell). Helpers
label axes with units, mark post dates and format large counts; they draw on a given
``ax`` and return it, seaborn-style.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import pandas as pd
import seaborn as sns

__all__ = ["PALETTE", "axes", "finish", "format_count_axis", "mark_dates", "mark_window", "set_theme"]

#: Colour roles shared by every figure.
PALETTE = {
    "observed": "#1f4e79",
    "counterfactual": "#8c8c8c",
    "effect": "#d1495b",
    "interval": "#f2b5bd",
    "post": "#edae49",
    "window": "#e8eef6",
    "good": "#2e8b57",
    "bad": "#c0392b",
}

_RC = {
    "figure.figsize": (9.0, 4.2),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "axes.titleweight": "bold",
    "axes.titlesize": 12,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "figure.autolayout": True,
}


def set_theme(*, context: str = "notebook", font_scale: float = 0.95) -> None:
    """Apply the project's seaborn theme (white grid, colour-blind palette, PNG figures).

    Parameters
    ----------
    context : {"notebook", "paper", "talk", "poster"}
        seaborn context.
    font_scale : float
        Font scaling passed to seaborn.
    """
    sns.set_theme(context=context, style="whitegrid", palette="colorblind", font_scale=font_scale, rc=_RC)
    try:  # figures go into HTML reports as PNG
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
    except ImportError:  # outside IPython
        pass


def axes(ax: Any = None, *, figsize: tuple[float, float] | None = None, **subplots_kw: Any):
    """Return ``ax`` or a new Axes on a new figure.

    Parameters
    ----------
    ax : matplotlib Axes, optional
        Returned as it is when given.
    figsize : tuple of float, optional
        Size of the new figure in inches (default: the theme's).
    **subplots_kw
        Further keywords of :func:`matplotlib.pyplot.subplots` (e.g. ``layout="constrained"``).
    """
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize or mpl.rcParams["figure.figsize"], **subplots_kw)
    return ax


def finish(ax, *, title: str, xlabel: str, ylabel: str, legend: bool | None = None):
    """Set the title and axis labels (with units) and tidy the legend; return ``ax``."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    handles, _ = ax.get_legend_handles_labels()
    if legend is None:
        legend = bool(handles)
    if legend and handles:
        ax.legend(loc="best", fontsize="small")
    elif ax.get_legend() is not None:
        ax.get_legend().remove()
    return ax


def format_count_axis(ax, axis: str = "y", *, max_ticks: int | None = None):
    """Show large counts as 1.2k / 3.4M on ``axis`` (at most ``max_ticks`` ticks, if given); return ``ax``."""

    def _fmt(v: float, _pos: int) -> str:
        a = abs(v)
        for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if a >= div:
                return f"{v / div:.3g}{suffix}"
        return f"{v:.4g}"

    target = ax.yaxis if axis == "y" else ax.xaxis
    if max_ticks is not None:
        target.set_major_locator(mticker.MaxNLocator(max_ticks))
    target.set_major_formatter(mticker.FuncFormatter(_fmt))
    return ax


def date_axis(ax, *, max_ticks: int = 8):
    """Date ticks on the x axis that do not overlap (matplotlib's concise date format); return ``ax``."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=max_ticks)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    return ax


def mark_dates(ax, dates: Iterable[Any], *, label: str = "post published", color: str | None = None):
    """Draw a thin vertical line at each date (e.g. post publication); return ``ax``."""
    dates = sorted(pd.to_datetime(pd.Series(list(dates))).dropna().unique())
    for i, d in enumerate(dates):
        ax.axvline(d, color=color or PALETTE["post"], lw=0.9, ls="--", alpha=0.8,
                   label=label if i == 0 else None, zorder=0)
    return ax


def mark_window(ax, start: Any, end: Any, *, label: str = "campaign window"):
    """Shade the campaign window; return ``ax``."""
    if start is not None and end is not None:
        ax.axvspan(pd.Timestamp(start), pd.Timestamp(end), color=PALETTE["window"], alpha=0.8,
                   label=label, zorder=0)
    return ax
