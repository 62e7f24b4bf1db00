"""The report's ablation section is generated from ablation.json: one row per variant, deltas with
intervals and the Holm verdict, figures only where they exist; no file, no section."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from dhs.ablate import AblationConfig, compare, table
from dhs.report.ablation import ablation_sections


def _result(tmp_path):
    rng = np.random.default_rng(0)
    cfg = AblationConfig.model_validate({
        "base_config": "configs/train_demo.yaml", "shards": "unused", "out_dir": str(tmp_path), "baseline": "base",
        "variants": [{"name": "base"}, {"name": "better"}], "seeds": [1, 2],
        "stats": {"fprs": [0.05], "primary_metric": "tpr@0.05", "n_boot": 100}})
    frames = []
    for split in ("val", "test"):
        y = rng.random(800) < 0.5
        f = pd.DataFrame({"split": split, "label": y.astype(int), "ra": rng.uniform(0, 20, y.size),
                          "dec": rng.uniform(0, 20, y.size)})
        for s in (1, 2):
            f[f"logit__base/seed{s}"] = np.where(y, 1.0, 0) + rng.normal(size=y.size)
            f[f"logit__better/seed{s}"] = np.where(y, 2.5, 0) + rng.normal(size=y.size)
        frames.append(f)
    cells = [{"variant": v, "seed": s, "status": "ok"} for v in ("base", "better") for s in (1, 2)]
    result = compare(cfg, cells, pd.concat(frames, ignore_index=True), None)
    result.update(config=cfg.model_dump(), baseline="base", failed_cells=[],
                  table=table(result, cfg).to_dict(orient="records"))
    return result


def test_section_table_comes_from_the_json(tmp_path):
    assert ablation_sections(str(tmp_path / "ablation.json")) == []
    path = tmp_path / "ablation.json"
    path.write_text(json.dumps(_result(tmp_path), default=float))
    (tmp_path / "ablation_differences.png").write_bytes(b"\x89PNG")
    (section,) = ablation_sections(str(path))
    header, *rows = section.table
    assert header[0] == "variant" and any("Δtpr@0.05" in h for h in header)
    by_name = {r[0]: r for r in rows}
    assert set(by_name) == {"base", "better", "ensemble"}
    assert by_name["base"][-1] == "baseline" and "survives Holm" in by_name["better"][-1]
    assert [f.path.endswith("ablation_differences.png") for f in section.figures] == [True]
    assert "Every cell finished" in section.text
