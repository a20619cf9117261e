"""``kernel``: numba compilation with the settings every compiled function of this project shares.

* nopython mode, compiled on first call and cached on disk: next to the source (``__pycache__``),
  else in ``NUMBA_CACHE_DIR`` or the user cache directory (numba's own fallbacks); when no location
  is writable the function still works, compiled once per process;
* IEEE arithmetic as NumPy does it (no fastmath; division by zero gives inf/nan rather than raising),
  so a kernel returns the same bits as the same float64 expression evaluated in NumPy.

Caveat: numba marks a cached function stale only when *its own* source file changes, not when a
compiled function it calls in another file does. Keep kernels that call each other in one module
(``kinesis_tasks.kernels`` holds all of the per-step math for this reason).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numba

F = TypeVar("F", bound=Callable)


def kernel(function: F) -> F:
    """``function`` compiled by numba (nopython, NumPy's error model, cached on disk where possible)."""
    options = dict(error_model="numpy", fastmath=False)
    try:
        return numba.njit(cache=True, **options)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(cache=False, **options)(function)
