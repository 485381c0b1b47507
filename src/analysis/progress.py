"""Progress bars that stay quiet where nobody is watching."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T], *, desc: str = "", total: int | None = None,
             disable: bool | None = None) -> Iterator[T]:
    """Wrap ``iterable`` in a progress bar on stderr.

    Parameters
    ----------
    iterable : Iterable
        What to iterate over.
    desc : str
        Label shown before the bar.
    total : int, optional
        Number of items, when ``iterable`` has no ``len``.
    disable : bool, optional
        Force the bar off (``True``) or on (``False``). By default it is off when
        ``ANALYSIS_NO_PROGRESS`` is set.
    """
    if disable is None:
        disable = not progress_enabled()
    return iter(tqdm(iterable, desc=desc, total=total, disable=disable, file=sys.stderr,
                     dynamic_ncols=True, leave=False))


def progress_enabled() -> bool:
    """Whether progress bars are on: unless ``ANALYSIS_NO_PROGRESS`` is set."""
    return not os.environ.get("ANALYSIS_NO_PROGRESS")
