import numpy as np

from dhs_gen.injection.gallery import SOURCE_MODES, gallery_stamps, render_injection_gallery


def test_gallery_stamps_are_faint_and_cover_every_generator():
    t = gallery_stamps(per_mode=1)
    assert t.column("source_mode").to_pylist() == list(SOURCE_MODES)
    assert t.column("status").to_pylist() == ["ok"] * 3
    # realistic faintness: lensed arcs of r ~ 23, not the earlier simulation's ~100x brighter arcs
    assert np.all(t.column("lensed_mag_r").to_numpy() > 21.5)


def test_gallery_png_is_written(tmp_path):
    out = render_injection_gallery(str(tmp_path / "gallery.png"), per_mode=1)
    data = (tmp_path / "gallery.png").read_bytes()
    assert out.endswith("gallery.png") and data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000
