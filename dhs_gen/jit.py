"""The one way this project compiles a numeric kernel: numba, ahead of use, cached on disk.

``kernel`` compiles a function of numpy arrays and scalars to machine code on first call (about
a second per kernel) and caches it next to the module (or in ``NUMBA_CACHE_DIR``, set on EMR
nodes, where the installed package is read-only), so later processes load it in milliseconds.
Kernels run single-threaded and release the GIL; they never allocate per element.

Floating point: ``FASTMATH`` allows fused multiply-add, ignores NaN/inf/signed-zero special
cases and approximate reciprocals, but not re-association, so a kernel's result does not depend
on how the compiler groups a sum (same inputs ⇒ same bits on a machine). Code that must handle
NaN or inf pixels uses ``kernel_strict``.

Cache validity: numba checks a cached kernel only against its own file's time stamp, so a
kernel that calls a function or reads a constant of another module (``kernels.sie_source_position``,
``N_SIE``) would keep loading code compiled against that module's old version — silently wrong
pixels. Here every kernel's cache is also keyed by :data:`KERNEL_SOURCES_STAMP`, a hash of all
kernel modules (the ``dhs_gen`` files that import this one): editing any of them recompiles the
kernels. Rule: a kernel calls functions and reads constants only of kernel modules.

numba is a dependency of lenstronomy as well; it is pinned in pyproject.toml.
"""
from __future__ import annotations

import hashlib
import os

from numba import njit
from numba.core import caching

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


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def kernel_sources_stamp(root: str = _PACKAGE) -> str:
    """sha256 of the path and text of every ``.py`` file under ``root`` that imports dhs_gen.jit."""
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, "rb") as fh:
                    text = fh.read()
                if b"dhs_gen.jit import" in text:
                    digest.update(os.path.relpath(path, root).encode() + b"\0" + text + b"\0")
    return digest.hexdigest()


KERNEL_SOURCES_STAMP = kernel_sources_stamp()


class _KernelSourcesStamped:
    """Cache locator mixin for functions defined in dhs_gen: numba's source stamp (the file's
    time and size) plus KERNEL_SOURCES_STAMP; a cache index with another stamp is discarded."""

    def get_source_stamp(self):
        return super().get_source_stamp(), KERNEL_SOURCES_STAMP

    @classmethod
    def from_function(cls, py_func, py_file):
        if not os.path.abspath(py_file).startswith(_PACKAGE + os.sep):
            return None  # not ours: numba's own locators
        return super().from_function(py_func, py_file)


caching.CacheImpl._locator_classes[:0] = [
    type(f"KernelSourcesStamped{base.__name__}", (_KernelSourcesStamped, base), {})
    for base in (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator, caching.UserWideCacheLocator)
]
