"""The cutout interface every survey provider implements."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dhs_gen import BANDS


class SurveyError(RuntimeError):
    """A cutout could not be produced; ``reason`` is a short machine-readable status string."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class Cutout:
    """A g/r/z cutout: ``image`` float32 (C, size, size) in nanomaggies at 0.262"/px (north up,
    east left), ``psf_fwhm`` (C,) arcsec, ``psfdepth`` (C,) 5-sigma AB mag (NaN when unknown),
    ``meta`` provenance (provider, request_url, ...)."""

    image: np.ndarray
    bands: str = BANDS
    psf_fwhm: np.ndarray = field(default_factory=lambda: np.full(3, np.nan, dtype=np.float32))
    psfdepth: np.ndarray = field(default_factory=lambda: np.full(3, np.nan, dtype=np.float32))
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.image = np.asarray(self.image, dtype=np.float32)
        if self.image.ndim != 3 or self.image.shape[0] != len(self.bands):
            raise ValueError(f"cutout image must be (C, H, W) with C = len({self.bands!r}), got {self.image.shape}")
        self.psf_fwhm = np.asarray(self.psf_fwhm, dtype=np.float32)
        self.psfdepth = np.asarray(self.psfdepth, dtype=np.float32)

    @property
    def size(self) -> int:
        return int(self.image.shape[-1])


class CutoutProvider:
    """Base class: ``get_cutout(ra, dec, size=101) -> Cutout``; raises :class:`SurveyError`."""

    kind = "base"

    def get_cutout(self, ra: float, dec: float, size: int = 101, galaxy_id: str | None = None) -> Cutout:
        """Cutout centred on (ra, dec) [deg]; ``galaxy_id`` helps caches keyed by id."""
        raise NotImplementedError

    def describe(self, ra: float, dec: float, size: int = 101) -> str:
        """Where a cutout comes from (URL, cache path, or mock key) for provenance columns."""
        return f"{self.kind}:{ra:.7f},{dec:.7f},{size}"

    def close(self) -> None:
        """Release resources (sessions, file handles)."""
