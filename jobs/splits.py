"""HEALPix spatial split relabeling: recompute ``split`` from healpix_128 (or ra/dec) with ``splits``.

Any dataset with ``healpix_128`` or ra/dec in; the same rows out, partitioned by split, with
counts and id sets verified. E.g. ``--set splits.fractions=[0.8,0.2] --set splits.names=[train,val]``
for an 80/20 relabel of existing splits.
"""
from __future__ import annotations

import sys

from jobs.compact import run


def main(argv=None) -> int:
    return run("splits", __doc__.splitlines()[0], argv, relabel=True)


if __name__ == "__main__":
    from dhs_gen.entrypoint import run_main

    sys.exit(run_main(main))
