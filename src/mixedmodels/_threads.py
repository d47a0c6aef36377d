"""One BLAS thread while fitting.

The optimizer calls LAPACK on many small and mid-sized blocks. OpenBLAS's worker threads spin
while they wait, and on a machine whose cores are busy with other work that makes each call up
to 20 times slower (InstEval ML, load 7 on 2 cores: 1.2 s per objective evaluation with two
threads, 54 ms with one). Our blocks gain little from threads anyway, so every fit runs with
one BLAS thread unless ``MIXEDMODELS_BLAS_THREADS`` asks for more.
"""
from __future__ import annotations

import contextlib
import functools
import os

_controller = None
_depth = 0


def active() -> bool:
    """True inside ``blas_threads()`` (the limit is already set)."""
    return _depth > 0


@contextlib.contextmanager
def blas_threads():
    """Limit BLAS to ``MIXEDMODELS_BLAS_THREADS`` threads (default 1); nests at no cost."""
    global _controller, _depth
    if _depth:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    if _controller is None:
        import scipy.linalg  # noqa: F401  (load scipy's own OpenBLAS before looking for it)
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    limit = int(os.environ.get("MIXEDMODELS_BLAS_THREADS", "1"))
    with _controller.limit(limits=limit, user_api="blas"):
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1


def with_blas_threads(func):
    """Decorator: run ``func`` under ``blas_threads()``."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with blas_threads():
            return func(*args, **kwargs)

    return wrapper
