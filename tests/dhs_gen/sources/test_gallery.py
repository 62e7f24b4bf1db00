"""Faintness calibration: injected arcs are as faint as real DR10 arcs (not the old 100x-too-bright)."""
from __future__ import annotations

import numpy as np

from dhs_gen.sources.gallery import calibration, load_hosts


def test_arcs_are_dr10_faint():
    c = calibration("sersic", n=150, seed=3)
    # median lensed arc r ~ 22-23 mag and matched-filter SNR of order 10 at DR10 depth;
    # a 100x flux error would move these by 5 mag / 100x in SNR
    assert 21.5 < c["lensed_mag_r"][1] < 23.5
    assert 5 < c["snr_r"][1] < 40
    assert 24.0 < c["depth_r"][1] < 25.0


def test_real_hosts_are_nanomaggy_cutouts():
    hosts = load_hosts()
    assert hosts.shape == (6, 3, 64, 64) and hosts.dtype == np.float32
    centre = hosts[:, 1, 28:36, 28:36].sum(axis=(1, 2))
    assert np.all(centre > 0.5) and np.all(centre < 500)  # LRG cores: ~1-100 nanomaggies
