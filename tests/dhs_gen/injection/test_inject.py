import numpy as np
import pyarrow as pa
import pytest

from dhs_gen.injection.inject import InjectConfig, inject_batch
from dhs_gen.injection.manifest import ManifestConfig, build_manifest
from dhs_gen.io.stamps import decode_canonical_image, encode_stamp
from dhs_gen.lensing import render_lensed_sersic
from dhs_gen.lensing.magnification import magnification
from dhs_gen.schemas import validate_table

PIX = 0.262
OFFSET = 0.5 * PIX  # 64-px crop of a 101-px cutout: the host centre is half a pixel off the stamp centre


def _img(table, column, i):
    return decode_canonical_image(table.column(column)[i].as_py())


def _lens_source(m: pa.Table, rows):
    c = {k: m.column(k).to_numpy()[rows].astype(np.float64) for k in m.column_names
         if pa.types.is_floating(m.schema.field(k).type)}
    lens = {"theta_E": c["theta_e_arcsec"], "e1": c["lens_e1"], "e2": c["lens_e2"],
            "center_x": c["lens_center_x"] + OFFSET, "center_y": c["lens_center_y"] + OFFSET,
            "gamma1": c["shear_gamma1"], "gamma2": c["shear_gamma2"]}
    source = {"R_sersic": c["src_reff_arcsec"], "n_sersic": c["src_n_sersic"], "e1": c["src_e1"], "e2": c["src_e2"],
              "center_x": lens["center_x"] + c["src_x_arcsec"], "center_y": lens["center_y"] + c["src_y_arcsec"],
              **{f"flux_{b}": c[f"src_flux_{b}"] for b in "grz"}}
    return lens, source


@pytest.fixture(scope="module")
def plain(real_hosts, with_cutouts):
    hosts, blobs = real_hosts
    m = build_manifest(hosts, ManifestConfig(injections_per_host=4, seed=11))
    return m, inject_batch(with_cutouts(m, blobs), InjectConfig()), blobs


def test_products_are_host_plus_arc_in_nanomaggies(plain):
    m, out, blobs = plain
    validate_table(out, "stamps", allow_extra=False)
    assert out.column("status").to_pylist() == ["ok"] * m.num_rows
    rows = np.arange(m.num_rows)
    lens, source = _lens_source(m, rows)
    psf = np.stack([out.column(f"psf_fwhm_used_{b}").to_numpy() for b in "grz"], axis=1)
    np.testing.assert_allclose(psf, np.tile([1.45, 1.30, 1.15], (m.num_rows, 1)), rtol=1e-6)
    arcs = render_lensed_sersic(lens, source, psf)
    for i in rows:
        host = decode_canonical_image(blobs[m.column("host_id")[i].as_py()])[:, 18:82, 18:82]
        assert np.array_equal(_img(out, "ctrl_stamp", i), host)
        np.testing.assert_allclose(_img(out, "stamp", i) - host, arcs[i], atol=2e-6)
    x_ratio = m.column("theta_e_arcsec").to_numpy() / psf[:, 1]
    np.testing.assert_allclose(out.column("x_ratio").to_numpy(), x_ratio, rtol=1e-6)
    lensed = arcs[:, 1].sum(axis=(1, 2))
    np.testing.assert_allclose(out.column("lensed_mag_r").to_numpy(), 22.5 - 2.5 * np.log10(lensed), atol=1e-4)


def test_injected_flux_is_magnification_times_source_flux(plain):
    m, out, _ = plain
    theta = m.column("theta_e_arcsec").to_numpy()
    rows = np.flatnonzero(theta < 2.2)  # arcs well inside the 16.8" stamp
    lens, source = _lens_source(m, rows)
    mu = magnification(lens, source)
    injected = np.array([(_img(out, "stamp", i) - _img(out, "ctrl_stamp", i))[1].sum() for i in rows])
    np.testing.assert_allclose(injected, mu * source["flux_r"], rtol=0.02)
    np.testing.assert_allclose(out.column("magnification").to_numpy()[rows], mu, rtol=0.02)
    assert set(out.column("n_images").to_pylist()) <= {2, 3, 4}


def test_hard_negative_shuffles_the_arc_light(plain):
    """Hard negative − control: the arc's sectors shuffled over the annulus that holds 99.5% of its
    flux (so < 1% stays in place), band fluxes kept within 1%."""
    from dhs_gen.injection.hardneg import annulus_mask, shuffle_annulus

    m, out, _ = plain
    for i in range(0, m.num_rows, 5):
        ctrl = _img(out, "ctrl_stamp", i)
        delta, shuffled = _img(out, "stamp", i) - ctrl, _img(out, "hardneg_stamp", i) - ctrl
        center = ((m.column("lens_center_x")[i].as_py() + OFFSET) / PIX, (m.column("lens_center_y")[i].as_py() + OFFSET) / PIX)
        inside = annulus_mask(delta.shape[-2:], *shuffle_annulus(delta, center), center)
        assert delta[1][~inside].sum() < 0.01 * delta[1].sum()
        np.testing.assert_allclose(shuffled.sum(axis=(1, 2)), delta.sum(axis=(1, 2)), rtol=0.01, atol=1e-4)
        assert not np.allclose(shuffled, delta)


def test_output_does_not_depend_on_the_batch(real_hosts, with_cutouts):
    hosts, blobs = real_hosts
    m = build_manifest(hosts, ManifestConfig(injections_per_host=3, variants=[{"artifact_profile": "strong"}]))
    table = with_cutouts(m, blobs)
    cfg = InjectConfig(arc_poisson=True)
    whole = inject_batch(table, cfg)
    parts = pa.concat_tables([inject_batch(table.slice(0, 7), cfg), inject_batch(table.slice(7), cfg)])
    assert whole.equals(parts)


def test_bad_rows_get_a_status_and_good_rows_survive(real_hosts, with_cutouts):
    hosts, blobs = real_hosts
    m = build_manifest(hosts, ManifestConfig(injections_per_host=1))
    t = with_cutouts(m, blobs)
    n = t.num_rows
    cut = t.column("cutout").to_pylist()
    cut[0] = None
    nan_host = decode_canonical_image(cut[1]).copy()
    nan_host[:, 40:60, 40:60] = np.nan
    cut[1] = encode_stamp(nan_host)
    t = t.set_column(t.column_names.index("cutout"), "cutout", pa.array(cut, pa.binary()))
    theta = t.column("theta_e_arcsec").to_numpy().copy()
    theta[2] = -1.0
    t = t.set_column(t.column_names.index("theta_e_arcsec"), "theta_e_arcsec", pa.array(theta, pa.float32()))
    psf = t.column("psfsize_r").to_numpy().copy()
    psf[3] = np.nan
    t = t.set_column(t.column_names.index("psfsize_r"), "psfsize_r", pa.array(psf, pa.float32()))
    status = t.column("status").to_pylist()
    status[4] = "upstream_failure"
    t = t.set_column(t.column_names.index("status"), "status", pa.array(status))
    out = inject_batch(t, InjectConfig())
    got = out.column("status").to_pylist()
    assert got[0] == "missing_cutout"
    assert got[1].startswith("bad_cutout") and out.column("cutout_ok")[1].as_py() is False
    assert got[2].startswith("render_error") and "theta_E" in got[2]
    assert got[3] == "missing_psf"
    assert got[4] == "manifest: upstream_failure"
    assert got[5:] == ["ok"] * (n - 5)
    assert out.column("stamp")[2].as_py() is None and out.column("stamp")[5].as_py() is not None
    assert out.column("bad_pixel_frac")[1].as_py() == pytest.approx(3 * 400 / (3 * 64 * 64))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_a_chunk_that_fails_after_rendering_in_place_is_redone_row_by_row():
    """Consecutive rows render into their slice of the output; one row whose flux overflows float32
    (inf pixels, found after the whole chunk is written) fails the chunk: the other rows equal a
    clean render of themselves, the bad row is zero with a render_error status."""
    from dhs_gen.injection import inject
    from dhs_gen.lensing import LensingInputError

    rng = np.random.default_rng(21)
    n, bad = 6, 3
    lens = {"theta_E": rng.uniform(0.8, 2.0, n), "e1": rng.normal(0, 0.1, n), "e2": rng.normal(0, 0.1, n),
            "center_x": rng.normal(0, 0.1, n), "center_y": rng.normal(0, 0.1, n),
            "gamma1": rng.normal(0, 0.05, n), "gamma2": rng.normal(0, 0.05, n)}
    source = {"R_sersic": rng.uniform(0.2, 0.5, n), "n_sersic": rng.uniform(1.0, 3.0, n),
              "e1": rng.normal(0, 0.1, n), "e2": rng.normal(0, 0.1, n),
              "center_x": lens["center_x"] + 0.2, "center_y": lens["center_y"] - 0.1,
              **{f"flux_{b}": rng.uniform(1.0, 5.0, n) for b in "grz"}}
    source["flux_r"][bad] = 1e300
    psf = np.tile([1.4, 1.3, 1.2], (n, 1))
    cfg = InjectConfig()
    arcs = np.full((n, 3, cfg.stamp_size, cfg.stamp_size), 7.0, np.float32)
    written = arcs.copy()
    with pytest.raises(LensingInputError, match="non-finite"):  # the chunk fails after writing every row
        render_lensed_sersic(lens, source, psf, out=written)
    assert not (written == 7.0).all(axis=(1, 2, 3)).any()
    status = np.array(["ok"] * n, dtype=object)
    inject._render(lens, source, psf, cfg, status, np.arange(n), np.array(["sersic"] * n), np.arange(n), arcs,
                   np.zeros(n, np.int64))
    good = np.delete(np.arange(n), bad)
    clean = render_lensed_sersic({k: v[good] for k, v in lens.items()}, {k: v[good] for k, v in source.items()},
                                 psf[good])
    assert np.array_equal(arcs[good], clean) and not arcs[bad].any()
    assert status[bad].startswith("render_error") and list(status[good]) == ["ok"] * (n - 1)


def test_arc_poisson_noise_has_the_gain_variance(real_hosts, with_cutouts):
    hosts, blobs = real_hosts
    m = build_manifest(hosts, ManifestConfig(injections_per_host=2, priors={"src_mag_r": (20.0, 20.5)}))
    t = with_cutouts(m, blobs)
    clean, noisy = inject_batch(t, InjectConfig()), inject_batch(t, InjectConfig(arc_poisson=True))
    resid, arc = [], []
    for i in range(t.num_rows):
        a = _img(clean, "stamp", i) - _img(clean, "ctrl_stamp", i)
        resid.append((_img(noisy, "stamp", i) - _img(noisy, "ctrl_stamp", i) - a).ravel())
        arc.append(a.ravel())
    resid, arc = np.concatenate(resid), np.concatenate(arc)
    bright = arc > 0.05
    assert np.var(resid[bright] / np.sqrt(arc[bright] / 150.0)) == pytest.approx(1.0, rel=0.1)
    assert abs(resid.sum()) < 5 * np.sqrt(arc.clip(0).sum() / 150.0)


@pytest.mark.parametrize("mode", ["cosmos", "sersic_clumps"])
def test_image_source_modes_render_with_the_manifest_flux(mode, real_hosts, with_cutouts):
    hosts, blobs = real_hosts
    m = build_manifest(hosts.slice(0, 3), ManifestConfig(variants=[{"source_mode": mode}],
                                                         priors={"theta_e_arcsec": (1.0, 1.5)}))
    out = inject_batch(with_cutouts(m, blobs), InjectConfig())
    assert out.column("status").to_pylist() == ["ok"] * 3
    mu = out.column("magnification").to_numpy()
    assert np.all(mu > 1.5) and np.all(mu < 60)
    for i in range(3):
        assert np.isfinite(_img(out, "stamp", i)).all()


def test_cutouts_from_a_provider_carry_their_own_psf():
    from dhs_gen.injection.inject import attach_provider_cutouts
    from dhs_gen.survey import make_provider

    hosts = pa.table({"galaxy_id": ["a", "b"], "ra": [150.1, 150.2], "dec": [2.1, 2.2]})
    m = build_manifest(hosts, ManifestConfig(injections_per_host=2))
    provider = make_provider({"kind": "mock", "mock": {"seed": 0}})
    t = attach_provider_cutouts(m, provider, size=101)
    assert t.column("cutout").null_count == 0
    expected = provider.get_cutout(150.1, 2.1, size=101).psf_fwhm
    np.testing.assert_allclose([t.column(f"cutout_psfsize_{b}")[0].as_py() for b in "grz"], expected, rtol=1e-6)
    out = inject_batch(t, InjectConfig())
    ok = np.array(out.column("status").to_pylist()) == "ok"
    assert ok.sum() >= 3
    np.testing.assert_allclose(out.column("psf_fwhm_used_r").to_numpy()[ok],
                               t.column("cutout_psfsize_r").to_numpy()[ok], rtol=1e-6)


def test_cosmos_rows_record_their_template(real_hosts, with_cutouts):
    hosts, blobs = real_hosts
    m = build_manifest(hosts, ManifestConfig(injections_per_host=2, variants=[{"source_mode": "cosmos"},
                                                                              {"source_mode": "sersic"}]))
    out = inject_batch(with_cutouts(m, blobs), InjectConfig())
    modes = out.column("source_mode").to_pylist()
    assert {"cosmos", "sersic"} <= set(modes)
    idents = out.column("cosmos_index").to_pylist()
    assert all((i is not None and i >= 0) == (mode == "cosmos") for mode, i in zip(modes, idents))


def test_hosts_read_by_address_are_the_inline_hosts(real_hosts, with_cutouts, tmp_path):
    """Host cutouts read by (file, row) address from a cutout dataset (zero-copy views of the row
    groups, several files, rows out of order, repeated, missing) give the stamps of the same
    blobs given inline; an address that points at another galaxy fails the batch."""
    from dhs_gen.injection.inject import CUTOUT_FILE, CUTOUT_ROW, attach_dataset_cutouts, cutout_reader
    from dhs_gen.storage import write_parquet

    hosts, blobs = real_hosts
    ids = hosts.column("galaxy_id").to_pylist()
    files = [str(tmp_path / "cutouts" / f"part-{k}.parquet") for k in range(2)]
    for k, mine in enumerate((ids[:4], ids[4:])):
        write_parquet(pa.table({"galaxy_id": mine, "cutout": [blobs[h] for h in mine]}), files[k], row_group_size=3)
    m = build_manifest(hosts, ManifestConfig(injections_per_host=2, seed=5))
    where = {h: (files[0], i) if i < 4 else (files[1], i - 4) for i, h in enumerate(ids)}
    host_ids = m.column("host_id").to_pylist()
    address = [None if j == 1 else where[h] for j, h in enumerate(host_ids)]  # row 1: no cutout
    addressed = m.append_column(CUTOUT_FILE, pa.array([a and a[0] for a in address], pa.string())) \
        .append_column(CUTOUT_ROW, pa.array([a and a[1] for a in address], pa.int64()))
    got = inject_batch(attach_dataset_cutouts(addressed, cutout_reader()), InjectConfig())
    inline = dict(blobs)
    want = inject_batch(with_cutouts(m, inline).set_column(
        len(m.column_names), "cutout", pa.array([None if j == 1 else inline[h] for j, h in enumerate(host_ids)],
                                                pa.binary())), InjectConfig())
    assert got.column("status").to_pylist()[1] == "missing_cutout"
    for name in ("status", "ctrl_stamp", "stamp", "hardneg_stamp", "bad_pixel_frac", "arc_snr_sum"):
        assert got.column(name).equals(want.column(name)), name
    moved = addressed.set_column(len(m.column_names) + 1, CUTOUT_ROW,
                                 pa.array([a and (a[1] + 1) % 2 for a in address], pa.int64()))
    with pytest.raises(ValueError, match="cutout dataset changed"):
        attach_dataset_cutouts(moved, cutout_reader())


def test_host_blobs_are_views_of_the_arrow_buffers():
    """The batch's cutout blobs reach the decoder as views of the Arrow data (a ~120 KB copy per
    row otherwise); sliced chunks, nulls, empty chunks and large_binary keep their values."""
    from dhs_gen.injection.inject import _blob_views

    values = [b"a" * 10, None, b"", b"bcd" * 7, b"\x8b\x1f"]
    for kind in (pa.binary(), pa.large_binary()):
        chunks = [pa.array(values, kind).slice(1), pa.array([], kind), pa.array(values[:2], kind)]
        views = _blob_views(pa.chunked_array(chunks))
        assert [None if v is None else bytes(v) for v in views] == values[1:] + values[:2]
        assert views[3][:1] == b"\x8b"  # compares as bytes do
        data = chunks[0].buffers()[2]
        view = np.frombuffer(views[2], np.uint8)
        assert view.ctypes.data == data.address + len(b"a" * 10)  # values[3] of the first chunk, in place
    assert _blob_views(pa.chunked_array([pa.nulls(2)])) == [None, None]
