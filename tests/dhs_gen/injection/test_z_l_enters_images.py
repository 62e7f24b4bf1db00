"""Issue 14: z_l enters the images. On the mock survey a grid's z_l bins hold hosts at those
redshifts, so a proxy completeness — the arc's contrast over the lens light under it, on the
rendered stamps — varies with z_l for a physical reason (lower-z hosts are brighter and larger,
so more lens light sits under an arc of the same θ_E and magnitude); shuffling the hosts' redshifts
across the bins removes that variation."""
import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from dhs_gen.injection.inject import InjectConfig, attach_provider_cutouts, inject_batch
from dhs_gen.injection.manifest import ManifestConfig, build_manifest
from dhs_gen.io.stamps import decode_canonical_image
from dhs_gen.survey import MockDR10, load_lrg_sample

Z_POINTS = [0.35, 0.45, 0.55, 0.65]
HOSTS_PER_BIN = 30
GRID = {"theta_e_arcsec": [1.2], "z_l": Z_POINTS, "src_mag_r_edges": [22.0, 22.5]}


def _hosts() -> pa.Table:
    """HOSTS_PER_BIN real DR10 LRGs per z_l bin (first by catalogue order), with a shuffled-z column."""
    lrg = load_lrg_sample()
    edges = np.r_[np.asarray(Z_POINTS) - 0.05, Z_POINTS[-1] + 0.05]
    pick = np.concatenate([np.flatnonzero((lrg.z_phot >= lo) & (lrg.z_phot < hi))[:HOSTS_PER_BIN]
                           for lo, hi in zip(edges[:-1], edges[1:])])
    sub = lrg.iloc[pick]
    z_shuffled = np.random.default_rng(0).permutation(sub.z_phot.to_numpy())
    return pa.table({"galaxy_id": [f"lrg{i}" for i in sub.lrg_index], "ra": sub.ra.to_numpy(),
                     "dec": sub.dec.to_numpy(), **{f"flux_{b}": sub[f"flux_{b}"].to_numpy() for b in ("g", "r", "z", "w1")},
                     "z_shuffled": z_shuffled})


def _measure(manifest: pa.Table, cutouts: dict) -> dict:
    """Per row: requested z_l, the arc/lens-light contrast in r over the arc's pixels, and the
    host's r-band light there [nmgy]."""
    table = manifest.append_column("cutout", pa.array([cutouts[h][0] for h in manifest.column("host_id").to_pylist()]))
    for j, b in enumerate("grz"):
        table = table.append_column(f"cutout_psfsize_{b}", pa.array(
            [cutouts[h][1][j] for h in manifest.column("host_id").to_pylist()]))
    stamps = inject_batch(table, InjectConfig(stamp_size=48, supersampling=2))
    assert set(stamps.column("status").to_pylist()) == {"ok"}
    pos = np.stack([decode_canonical_image(b) for b in stamps.column("stamp").to_pylist()])[:, 1]
    ctrl = np.stack([decode_canonical_image(b) for b in stamps.column("ctrl_stamp").to_pylist()])[:, 1]
    arc = pos - ctrl
    mask = arc > 0.25 * arc.max(axis=(1, 2), keepdims=True)
    arc_flux, lens_flux = (arc * mask).sum(axis=(1, 2)), (ctrl * mask).sum(axis=(1, 2))
    return {"z_req": stamps.column("z_l_requested").to_numpy(), "contrast": arc_flux / lens_flux,
            "lens_flux": lens_flux}


def _by_bin(values, z_req, fn):
    return np.array([fn(values[np.isclose(z_req, z, atol=1e-4)]) for z in Z_POINTS])


@pytest.fixture(scope="module")
def measured():
    hosts = _hosts()
    base = dict(design="grid", grid=GRID, seed=3, experiment_id="zl_physics")
    real = build_manifest(hosts, ManifestConfig(**base))
    shuffled = build_manifest(hosts, ManifestConfig(**base, host_redshift={"column": "z_shuffled"}))
    provider = MockDR10(seed=1, noise=False, include_lenses=False, defect_rates={k: 0.0 for k in (
        "nan_patch", "satellite_trail", "missing_band")})
    table = attach_provider_cutouts(hosts.rename_columns(["host_id", *hosts.column_names[1:]]), provider, size=49)
    cutouts = {h: (c, (g, r, z)) for h, c, g, r, z in zip(
        *(table.column(n).to_pylist() for n in ("host_id", "cutout", "cutout_psfsize_g", "cutout_psfsize_r",
                                                 "cutout_psfsize_z")))}
    return _measure(real, cutouts), _measure(shuffled, cutouts)


def test_completeness_varies_with_z_l_through_the_lens_light_and_shuffling_removes_it(measured):
    real, shuffled = measured
    assert len(real["z_req"]) == len(shuffled["z_req"]) == len(Z_POINTS) * HOSTS_PER_BIN
    tau = float(np.median(real["contrast"]))  # one cut for both sets: C ~ 0.5 overall
    c_real = _by_bin(real["contrast"] > tau, real["z_req"], np.mean)
    c_shuf = _by_bin(shuffled["contrast"] > tau, shuffled["z_req"], np.mean)
    light = _by_bin(real["lens_flux"], real["z_req"], np.median)
    print(f"\nz_l bins {Z_POINTS}: median lens light under the arc [nmgy] {np.round(light, 3).tolist()}; "
          f"C(z_l) {np.round(c_real, 3).tolist()}; C with hosts shuffled across z_l {np.round(c_shuf, 3).tolist()}")
    # the physical reason: lower-z hosts put more light under the same arc
    assert light[0] > 1.5 * light[-1] and light[1] > light[2] > light[3]
    # so completeness rises with z_l, far beyond binomial noise (sigma ~0.09 per bin of 30)
    assert stats.spearmanr(Z_POINTS, c_real).statistic == pytest.approx(1.0) and c_real[-1] - c_real[0] > 0.5
    # hosts shuffled across the bins: no trend, bins agree within binomial noise
    k = np.round(c_shuf * HOSTS_PER_BIN).astype(int)
    chi2 = stats.chi2_contingency(np.c_[k, HOSTS_PER_BIN - k]).pvalue
    assert chi2 > 0.01 and np.ptp(c_shuf) < 0.3 and np.ptp(c_shuf) < 0.5 * np.ptp(c_real)
