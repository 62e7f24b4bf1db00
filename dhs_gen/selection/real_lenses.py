"""The real lens set the injection-realism probe compares injections with.

A real set is one of
* ``packaged``: the six real DESI Legacy Surveys DR10 cutouts of lenscat "probable" DESI lens
  candidates shipped in ``dhs_gen/data/dr10_cutouts`` (provenance in dhs_gen/data/PROVENANCE.md);
* a folder of cutout files (``.npz`` in any legacy layout, ``.fits``/``.fits.gz``/``.fits.fz``),
  optionally with a catalogue (CSV or Parquet) whose ``file`` column (a path relative to the folder)
  or ``galaxy_id``/``name``/``id`` column (the file's stem) says which files belong to the set;
* a cutout table (Parquet, e.g. the output of ``dhs cutouts`` for a published candidate list) with
  the images as blobs in ``column`` (rows with ``cutout_ok`` false are left out and counted).

Every image is decoded by ``dhs_gen.io.stamps.decode_stamp_npz`` as g, r, z nanomaggies; a file or
row that does not decode, is not three-band, or is listed in the catalogue but absent is counted in
``failed`` with its reason, never silently dropped. The set's name, source and size travel into the
selection summary with the probe's AUC.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

PACKAGED = "packaged"
PACKAGED_NAME = "DR10 lenscat DESI candidates (packaged)"
PACKAGED_SOURCE = ("real DESI Legacy Surveys DR10 cutouts (101x101 g,r,z, 0.262\"/px, nanomaggies) of lenscat "
                   "'probable' DESI lens candidates, from aditrivaishnavi/toy_glens_kinematics @ 51655e43 "
                   "(dhs_gen/data/PROVENANCE.md)")
CUTOUT_SUFFIXES = (".npz", ".fits", ".fit", ".fits.gz", ".fits.fz")
CATALOGUE_ID_COLUMNS = ("file", "galaxy_id", "name", "id")


@dataclass
class RealLensSet:
    """Decoded real lens cutouts, float32 (3, H, W) each, with what the set is."""

    name: str
    source: str
    path: str
    ids: list = field(default_factory=list)
    images: list = field(default_factory=list)
    failed: list = field(default_factory=list)  # (id, reason)

    def summary(self) -> dict:
        """What the selection summary records about the set."""
        return {"name": self.name, "source": self.source, "path": self.path, "n": len(self.images),
                "n_failed": len(self.failed), "failed": [f"{i}: {r}" for i, r in self.failed[:10]]}


def _stem(path: str) -> str:
    name = os.path.basename(path)
    for suffix in sorted(CUTOUT_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _decode(out: RealLensSet, ident: str, source) -> None:
    from dhs_gen.io.stamps import decode_stamp_npz

    try:
        image = decode_stamp_npz(source, nan_policy="report").image
    except Exception as exc:  # noqa: BLE001 - any undecodable input is recorded with its reason
        out.failed.append((ident, f"{type(exc).__name__}: {str(exc)[:120]}"))
        return
    if image.ndim != 3 or image.shape[0] != 3:
        out.failed.append((ident, f"not a g,r,z image (shape {image.shape})"))
        return
    out.ids.append(ident)
    out.images.append(np.asarray(image, dtype=np.float32))


def read_catalogue(path: str):
    """A catalogue table from CSV (.csv, .csv.gz) or Parquet."""
    from dhs_gen.storage import local_path, read_parquet

    if path.lower().endswith((".csv", ".csv.gz")):
        import pyarrow.csv as pacsv

        return pacsv.read_csv(local_path(path))
    return read_parquet(path)


def _catalogue_files(catalogue: str, files: dict) -> tuple[list, list]:
    """(files listed by the catalogue, listed entries without a file)."""
    table = read_catalogue(catalogue)
    column = next((c for c in CATALOGUE_ID_COLUMNS if c in table.column_names), None)
    if column is None:
        raise ValueError(f"{catalogue}: a real-lens catalogue needs one of the columns {CATALOGUE_ID_COLUMNS}")
    listed, missing = [], []
    for value in table[column].cast("string").to_pylist():
        key = _stem(value) if column == "file" else value
        (listed if key in files else missing).append(files.get(key, value))
    return listed, missing


def load_real_lenses(path: str, catalogue: str | None = None, column: str = "cutout", name: str = "",
                     source: str = "") -> RealLensSet:
    """The real lens set at ``path`` (``packaged``, a folder of cutout files, or a cutout table)."""
    from dhs_gen.storage import local_path

    if path == PACKAGED:
        from dhs_gen.data_files import data_path

        folder = str(data_path("dr10_cutouts"))
        out = RealLensSet(name or PACKAGED_NAME, source or PACKAGED_SOURCE, f"{PACKAGED}:dhs_gen/data/dr10_cutouts")
    else:
        folder = local_path(path)
        out = RealLensSet(name or os.path.basename(path.rstrip("/")), source or path, path)
    files = {}
    if os.path.isdir(folder):
        files = {_stem(f): os.path.join(folder, f) for f in sorted(os.listdir(folder))
                 if f.lower().endswith(CUTOUT_SUFFIXES)}
    if files:
        chosen = sorted(files.values())
        if catalogue:
            chosen, missing = _catalogue_files(catalogue, files)
            out.failed += [(m, "listed in the catalogue, no cutout file") for m in missing]
        for f in chosen:
            _decode(out, _stem(f), f)
        return out
    return _load_table(out, path, column)


def _load_table(out: RealLensSet, path: str, column: str) -> RealLensSet:
    import pyarrow.compute as pc

    from dhs_gen.storage import parquet_dataset

    names = parquet_dataset(path).schema.names
    if column not in names:
        raise ValueError(f"{path}: neither a folder of cutout files {CUTOUT_SUFFIXES} nor a cutout table with "
                         f"column {column!r} (columns: {names})")
    ident = next((c for c in ("galaxy_id", "name", "id") if c in names), None)
    cols = [c for c in (ident, column, "cutout_ok") if c]
    table = parquet_dataset(path).to_table(columns=cols)
    ids = table[ident].cast("string").to_pylist() if ident else [f"row{i}" for i in range(table.num_rows)]
    ok = (table["cutout_ok"].fill_null(False).to_pylist() if "cutout_ok" in cols else [True] * table.num_rows)
    blobs = pc.fill_null(table[column], b"").to_pylist() if table.num_rows else []
    for i, blob, good in zip(ids, blobs, ok):
        if not good:
            out.failed.append((i, "cutout_ok is false"))
        elif not blob:
            out.failed.append((i, f"no {column} blob"))
        else:
            _decode(out, i, blob)
    return out
