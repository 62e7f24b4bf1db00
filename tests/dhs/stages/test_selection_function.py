"""The demo stage: frozen model scores a small grid set and negatives, then the full selection run."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dhs.stages.selection_function import DEMO_CONFIG, DemoSelectionConfig, run_demo_stage
from dhs_gen.config import load_config
from dhs_gen.io.stamps import encode_stamp
from dhs_gen.selection.synthetic import synthetic_selection_set
from dhs_gen.storage import join_uri, write_parquet


def test_demo_stage_end_to_end(tmp_path):
    torch = pytest.importorskip("torch")
    from training.export import export_frozen_model
    from training.models import build_model

    demo = load_config(DemoSelectionConfig, str(DEMO_CONFIG))
    base = str(tmp_path)
    torch.manual_seed(0)
    export_frozen_model(build_model(name="small_cnn", in_chans=3), {"demo": True},
                        join_uri(base, demo.frozen_models[0]), data_manifest_hash="h", preprocess={},
                        trained_ids=["train-0", "train-1"])
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
        "cutout_ok": [True] * n_neg, "status": ["ok"] * n_neg,
        "cutout": pa.array([stamp(0.0) for _ in range(n_neg)], pa.binary()),
    }), join_uri(base, demo.negative_cutouts, "part-0.parquet"))
    out = run_demo_stage(join_uri(base, "selection_function"))
    assert out["status"] == "ok", out
    assert set(out["completeness_at_theta_e"]) == {"1", "1.5", "2"}
    assert out["realism"]["status"] == "ok" and "model_features" in out["realism"]
    assert len(out["figures"]) == 4
