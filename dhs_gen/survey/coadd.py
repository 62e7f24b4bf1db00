"""CoaddCutoutProvider: cutouts from a cache of stamp files (npz or FITS, local or s3://).

Files are found by ``pattern`` formatted with ``galaxy_id``, ``ra``, ``dec`` and ``size``
(default ``{galaxy_id}.npz``, the earlier pipeline's cutout folders), or, when the caller has
no galaxy id, through a position index: a Parquet file with ``path`` (relative to ``root``),
``ra``, ``dec`` [deg] (``index``), or else the ``meta_ra``/``meta_dec`` of every file under
``root`` (read once). Any legacy layout decodes (:func:`dhs_gen.io.stamps.decode_stamp_npz`);
larger stamps are cropped about their centre to the requested size.
"""
from __future__ import annotations

import numpy as np

from dhs_gen import BANDS
from dhs_gen.survey.base import Cutout, CutoutProvider, SurveyError

_STAMP_SUFFIXES = (".npz", ".fits", ".fits.gz", ".fits.fz", ".npz.gz")


class CoaddCutoutProvider(CutoutProvider):
    """Read cutouts from ``root`` (a directory URI); see module docstring."""

    kind = "coadd"

    def __init__(self, root: str, pattern: str = "{galaxy_id}.npz", index: str | None = None,
                 match_radius_arcsec: float = 1.0, bands: str = BANDS):
        self.root = root.rstrip("/")
        self.pattern = pattern
        self.index = index
        self.match_radius_arcsec = match_radius_arcsec
        self.bands = bands
        self._positions = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_positions"} | {"_positions": None}

    def path_for(self, ra: float, dec: float, size: int = 101, galaxy_id: str | None = None) -> str:
        """The cache URI of a cutout (by pattern, else by nearest indexed position)."""
        from dhs_gen.storage import join_uri

        needs_id = "{galaxy_id" in self.pattern
        if galaxy_id is not None or not needs_id:
            return join_uri(self.root, self.pattern.format(galaxy_id=galaxy_id, ra=ra, dec=dec, size=size))
        paths, pra, pdec = self._position_index()
        if not len(paths):
            raise SurveyError("not_in_cache", f"no stamps under {self.root}")
        dra = (pra - ra + 180.0) % 360.0 - 180.0
        sep = np.hypot(dra * np.cos(np.radians(dec)), pdec - dec) * 3600.0
        best = int(np.argmin(sep))
        if sep[best] > self.match_radius_arcsec:
            raise SurveyError("not_in_cache", f"nothing within {self.match_radius_arcsec}\" of ({ra}, {dec})")
        return paths[best] if "://" in paths[best] or paths[best].startswith("/") else join_uri(self.root, paths[best])

    def _position_index(self):
        if self._positions is None:
            if self.index:
                from dhs_gen.storage import read_parquet

                table = read_parquet(self.index, columns=["path", "ra", "dec"])
                self._positions = (table.column("path").to_pylist(), table.column("ra").to_numpy(),
                                   table.column("dec").to_numpy())
            else:
                self._positions = self._scan()
        return self._positions

    def _scan(self):
        from dhs_gen.io.stamps import StampDecodeError, decode_stamp_npz
        from dhs_gen.storage import list_files

        paths, ras, decs = [], [], []
        for uri in list_files(self.root):
            if not uri.endswith(_STAMP_SUFFIXES):
                continue
            try:
                meta = decode_stamp_npz(uri, nan_policy="report").meta
            except StampDecodeError:
                continue
            if "ra" in meta and "dec" in meta:
                paths.append(uri)
                ras.append(float(meta["ra"]))
                decs.append(float(meta["dec"]))
        return paths, np.array(ras), np.array(decs)

    def get_cutout(self, ra: float, dec: float, size: int = 101, galaxy_id: str | None = None) -> Cutout:
        """Read, validate and crop one cached cutout; raises SurveyError (not_in_cache, invalid_stamp,
        bad_bands, too_small)."""
        from dhs_gen.io.stamps import StampDecodeError, decode_stamp_npz
        from dhs_gen.storage import exists

        uri = self.path_for(ra, dec, size, galaxy_id)
        if not exists(uri):
            raise SurveyError("not_in_cache", uri)
        try:
            stamp = decode_stamp_npz(uri, nan_policy="report")
        except StampDecodeError as exc:
            raise SurveyError("invalid_stamp", f"{uri}: {exc}") from None
        if stamp.bands != self.bands:
            raise SurveyError("bad_bands", f"{uri}: holds {stamp.bands!r}, expected {self.bands!r}")
        _, h, w = stamp.image.shape
        if h < size or w < size:
            raise SurveyError("too_small", f"{uri}: {h}x{w} < {size}")
        r0, c0 = h // 2 - size // 2, w // 2 - size // 2
        image = stamp.image[:, r0:r0 + size, c0:c0 + size]
        meta = dict(stamp.meta, provider=self.kind, request_url=uri, layout=stamp.layout)
        fwhm = [meta.get(f"psfsize_{b}", np.nan) for b in self.bands]
        depth = [meta.get(f"psfdepth_{b}_mag5", np.nan) for b in self.bands]
        return Cutout(image=image, bands=stamp.bands, psf_fwhm=np.array(fwhm, dtype=float),
                      psfdepth=np.array(depth, dtype=float), meta=meta)

    def describe(self, ra: float, dec: float, size: int = 101, galaxy_id: str | None = None) -> str:
        try:
            return self.path_for(ra, dec, size, galaxy_id)
        except SurveyError:
            return f"{self.root}?ra={ra}&dec={dec}"
