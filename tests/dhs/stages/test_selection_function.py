"""The demo stage: frozen model scores a small grid set and negatives, then the full selection run."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dhs.stages.selection_function import DEMO_CONFIG, DemoSelectionConfig, run_demo_stage
from dhs_gen.config import load_config
from dhs_gen.io.stamps import encode_stamp
from dhs_gen.selection.provenance import ProvenanceError
from dhs_gen.selection.real_lenses import PACKAGED_NAME
from dhs_gen.selection.synthetic import synthetic_selection_set
from dhs_gen.storage import join_uri, read_json, write_parquet


def _demo_inputs(base: str, trained_host_ids):
    """A frozen model (trained on rows train-0/1 injected into ``trained_host_ids``), a small grid
    set on hosts host0..., and held-out negatives with positions, laid out as the demo expects."""
    torch = pytest.importorskip("torch")
    from training.export import export_frozen_model
    from training.models import build_model

    demo = load_config(DemoSelectionConfig, str(DEMO_CONFIG))
    torch.manual_seed(0)
    export_frozen_model(build_model(name="small_cnn", in_chans=3), {"demo": True},
                        join_uri(base, demo.frozen_models[0]), data_manifest_hash="h", preprocess={},
                        trained_ids=["train-0", "train-1"], trained_host_ids=trained_host_ids)
    rng = np.random.default_rng(0)
    inj, _, _ = synthetic_selection_set(n_per_cell=3, n_negatives=10, seed=1)
    size = 32
    y, x = np.mgrid[:size, :size] - (size - 1) / 2

    def stamp(theta_pix):
        ring = np.exp(-0.5 * ((np.hypot(x, y) - theta_pix) / 1.0) ** 2)
        host = 5 * np.exp(-np.hypot(x, y) / 2.5)
        img = np.stack([host * c + ring for c in (0.5, 1.0, 1.3)]) + rng.normal(0, 0.05, (3, size, size))
        return encode_stamp(img.astype(np.float32))

    blobs = [stamp(t / 0.262) for t in inj["theta_e_arcsec"].to_numpy()]
    inj = inj.append_column("stamp", pa.array(blobs, pa.binary()))
    inj = inj.append_column("host_id", pa.array([f"host{i}" for i in range(inj.num_rows)]))
    write_parquet(inj, join_uri(base, demo.injections, "part-0.parquet"))
    n_neg = 300
    write_parquet(pa.table({
        "galaxy_id": [f"neg{i}" for i in range(n_neg)], "split": ["test", "train"] * (n_neg // 2),
        "ra": rng.uniform(0, 60, n_neg), "dec": rng.uniform(-10, 10, n_neg),
        "cutout_ok": [True] * n_neg, "status": ["ok"] * n_neg,
        "cutout": pa.array([stamp(0.0) for _ in range(n_neg)], pa.binary()),
    }), join_uri(base, demo.negative_cutouts, "part-0.parquet"))


def test_demo_stage_end_to_end(tmp_path):
    base = str(tmp_path)
    _demo_inputs(base, trained_host_ids=["train-host-0", "train-host-1"])
    out = run_demo_stage(join_uri(base, "selection_function"))
    assert out["status"] == "ok", out
    assert set(out["completeness_at_theta_e"]) == {"1", "1.5", "2"}
    for at in out["completeness_at_theta_e"].values():  # the quoted interval holds the cut's uncertainty
        assert at["interval_lo"] <= at["completeness"] <= at["interval_hi"]
    assert out["realism"]["status"] == "ok" and "model_features" in out["realism"]
    # the realism probe compares with the six packaged REAL DR10 lens cutouts, named in the summary
    real = out["real_lens_set"]
    assert real["n"] == out["realism"]["pixel_stats"]["n_real"] == 6 and real["n_failed"] == 0
    assert real["name"] == PACKAGED_NAME and "DR10" in real["source"]
    assert len(out["figures"]) == 4
    summary = read_json(join_uri(out["output"], "selection_summary.json"))
    (cut,) = [t for t in summary["thresholds"] if t["threshold_value"] == 0.01]
    assert cut["negative_resampling"].startswith("healpix") and cut["expected_fpr"] <= 0.01
    (prov,) = summary["provenance"]
    assert prov["verified"] and prov["n_host_overlap"] == 0 and prov["n_trained_host_ids"] == 2


def test_demo_stage_refuses_a_model_trained_on_the_selection_hosts(tmp_path):
    base = str(tmp_path)
    _demo_inputs(base, trained_host_ids=["host3", "train-host-1"])  # host3 carries grid injections
    with pytest.raises(ProvenanceError, match="selection hosts"):
        run_demo_stage(join_uri(base, "selection_function"))


def test_report_names_the_real_lens_set_of_the_realism_probe():
    from dhs.stages.report import collect_headlines

    realism = {"status": "ok", "real_set": {"name": PACKAGED_NAME, "source": "DR10", "n": 6},
               "pixel_stats": {"auc": 0.7, "ci_lo": 0.4, "ci_hi": 0.95, "n_real": 6}}
    heads = collect_headlines({"selection_function": {"realism": realism, "real_lens_cutouts": "catalogue/positive_cutouts"}},
                              {}, None)
    assert heads["realism_real_set"] == PACKAGED_NAME and heads["realism_n_real"] == 6
    assert heads["realism_ci_pixels"] == [0.4, 0.95]
    # a summary without a named real set is never labelled as real lenses
    assert collect_headlines({"selection_function": {"real_lens_cutouts": "x"}}, {}, None)["realism_real_set"] is None


def test_negatives_that_were_training_hosts_do_not_set_the_cut(tmp_path):
    # mock LRG hosts are catalogue galaxies too: a sampled negative may have hosted training injections
    base = str(tmp_path)
    _demo_inputs(base, trained_host_ids=["neg0", "neg7", "train-host-1"])
    out = run_demo_stage(join_uri(base, "selection_function"))
    assert out["status"] == "ok" and out["n_negatives"] == 298
    (prov,) = read_json(join_uri(out["output"], "selection_summary.json"))["provenance"]
    assert prov["verified"] and prov["n_host_overlap"] == 0


def test_negatives_are_cut_to_the_model_input_by_the_survey_rule():
    """101-px catalogue cutouts must be scored as the 64-px stamps they are compared with, cut by
    the rule phase 4c and score-cutouts use; undecodable or too-small blobs stay for the scorer."""
    import numpy as np
    import pyarrow as pa

    from dhs.stages.selection_function import crop_to_model_input
    from dhs_gen.io.stamps import decode_canonical_image, encode_stamp

    big = np.arange(3 * 101 * 101, dtype=np.float32).reshape(3, 101, 101)
    small = np.ones((3, 32, 32), np.float32)
    table = pa.table({"cutout": pa.array([encode_stamp(big), encode_stamp(small), b"junk"], pa.binary())})
    out, crops = crop_to_model_input(table, "cutout", 64)
    np.testing.assert_array_equal(decode_canonical_image(out["cutout"][0].as_py()), big[:, 18:82, 18:82])
    assert out["cutout"][1].as_py() == table["cutout"][1].as_py() and out["cutout"][2].as_py() == b"junk"
    assert crops == {"101x101->64x64@(18,18)": 1}
    assert crop_to_model_input(table, "cutout", None) == (table, {})
