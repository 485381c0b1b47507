"""One BLAS thread for the analyses, so that results do not depend on how many threads BLAS runs.

Multi-threaded BLAS splits sums differently with each thread count, and the attribution's ridge solves are
ill-conditioned enough (lagged views of one creator are nearly collinear) to carry that difference into the
tenth significant digit, past the 12 digits ``results.json`` keeps. A report written by ``--jobs 2`` (one BLAS
thread per kernel) and one written alone would then differ. The model's many small solves are also faster
on one thread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from threadpoolctl import threadpool_limits

F = TypeVar("F", bound=Callable)


def single_threaded_blas() -> threadpool_limits:
    """Context manager: BLAS limited to one thread inside, restored afterwards."""
    return threadpool_limits(limits=1, user_api="blas")


def one_blas_thread(func: F) -> F:
    """Decorator: run ``func`` with BLAS limited to one thread (see the module docstring)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with single_threaded_blas():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
