"""The one way this project compiles a numeric kernel: numba, ahead of use, cached on disk.

``kernel`` compiles a function of numpy arrays and scalars to machine code on first call (about
a second per kernel) and caches it next to the module (or in ``NUMBA_CACHE_DIR``, set on EMR
nodes, where the installed package is read-only), so later processes load it in milliseconds.
Kernels run single-threaded and release the GIL; they never allocate per element.

Floating point: ``FASTMATH`` allows fused multiply-add, ignores NaN/inf/signed-zero special
cases and approximate reciprocals, but not re-association, so a kernel's result does not depend
on how the compiler groups a sum (same inputs ⇒ same bits on a machine). Code that must handle
NaN or inf pixels uses ``kernel_strict``.

numba is a dependency of lenstronomy as well; it is pinned in pyproject.toml.
"""
from __future__ import annotations

from numba import njit

FASTMATH = frozenset({"nnan", "ninf", "nsz", "arcp", "contract"})


def kernel(func=None, **options):
    """``numba.njit`` with this project's settings: cache=True, nogil=True, :data:`FASTMATH`,
    error_model="numpy" (a division by zero gives inf/NaN as in numpy, no exception check per
    element). ``options`` override them. Use as ``@kernel`` or ``@kernel(...)``."""
    settings = {"cache": True, "nogil": True, "fastmath": set(FASTMATH), "error_model": "numpy", **options}
    if func is None:
        return njit(**settings)
    return njit(**settings)(func)


def kernel_strict(func=None, **options):
    """:func:`kernel` with IEEE semantics (no fast-math): for kernels whose inputs may hold NaN
    or inf (masked pixels) and must test for them."""
    return kernel(func, **{"fastmath": False, **options})
