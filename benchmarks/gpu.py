"""The device table: model alone vs trainer vs scorer for resnet18, efficientnet_b0 and
convnext_tiny on one device, in one command (``make bench-gpu``):

    python -m benchmarks.gpu --device cuda            # sized for < 5 minutes on one GPU
    python -m benchmarks.gpu --device cpu             # a smoke run at small sizes (batch 16, 2 steps)

Builds synthetic 64x64 paired shards with ``convert_to_shards``, then per model measures (see
benchmarks.efficiency) the model alone (train: resident batch, forward+backward+AdamW; inference),
``Trainer.train_epoch`` (configs/train.yaml: paired, augmentation and preprocessing on, its batch
size and loader workers unless given), ``Scorer.logits`` and ``Scorer.score_table`` (canonical
blobs, decode included) with the model ``Trainer.export`` wrote; and for resnet18 the memory
formats (recorded like bench_training's, for ``run.channels_last: auto``). Writes
``<out>/device_table.md`` and ``<out>/device_table.json``. Not part of ``make bench`` (which runs
bench_training's resnet18 rows on whatever device is present).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

MODELS = ("resnet18", "efficientnet_b0", "convnext_tiny")
GPU_SIZES = {"steps": 24, "score_images": 16384, "score_batch": 2048}  # batch: configs/train.yaml's
CPU_SMOKE = {"batch": 16, "steps": 2, "score_images": 128, "score_batch": 64}
COLUMNS = (("model", "model"), ("train_alone", "alone, train [img/s]"), ("trainer", "trainer [img/s]"),
           ("trainer_efficiency", "trainer eff."), ("infer_alone", "alone, inference [img/s]"),
           ("scorer_logits", "Scorer.logits [img/s]"), ("score_table", "score_table [rows/s]"),
           ("scorer_efficiency", "scorer eff."), ("channels_last", "channels_last"), ("batch", "train batch"))


def measure_model(name: str, shards: str, root: str, device: str, batch: int | None, workers: int | None,
                  score_images, score_batch: int) -> dict:
    from benchmarks.efficiency import scorer_vs_model, train_config, trainer_vs_model

    cfg = train_config(shards, os.path.join(root, name), model=name, device=device, batch_size=batch,
                       num_workers=workers)
    tr, trainer = trainer_vs_model(cfg, rounds=2)
    try:
        trainer.export()
    finally:
        trainer.close()
    sc = scorer_vs_model(os.path.join(root, name, "frozen"), score_images, device, score_batch, rounds=2)
    return {"model": name, "train_alone": tr["model"], "trainer": tr["trainer"], "trainer_efficiency": tr["efficiency"],
            "infer_alone": sc["model"], "scorer_logits": sc["logits"], "score_table": sc["score_table"],
            "scorer_efficiency": sc["efficiency"], "channels_last": tr["channels_last"], "batch": tr["batch"],
            "steps_per_epoch": tr["steps"], "amp": tr["amp"], "num_workers": tr["num_workers"]}


def markdown(rows: list[dict], header: str) -> str:
    def cell(v):
        return f"{v:,.0f}" if isinstance(v, float) and v >= 10 else (f"{v:.2f}" if isinstance(v, float) else str(v))
    lines = [header, "", "| " + " | ".join(t for _, t in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r[k]) for k, _ in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated backbones")
    parser.add_argument("--batch", type=int, default=None,
                        help=f"train batch (default: configs/train.yaml's on cuda, {CPU_SMOKE['batch']} on cpu)")
    parser.add_argument("--workers", type=int, default=None, help="loader workers (default configs/train.yaml's)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per timed epoch (default 24; cpu 2)")
    parser.add_argument("--score-images", type=int, default=None, help="images scored (default 16384; cpu 128)")
    parser.add_argument("--score-batch", type=int, default=None, help="scorer batch (default 2048; cpu 64)")
    parser.add_argument("--out", default="build/bench")
    args = parser.parse_args(argv)
    import torch

    from benchmarks.bench_training import _train_yaml_batch, bench_memory_format
    from benchmarks.efficiency import synthetic_pairs, synthetic_shards
    from dhs_gen.storage import write_json, write_text
    from training.memory_format import device_key

    if args.device == "cuda" and not torch.cuda.is_available():
        print("benchmarks.gpu: --device cuda but no CUDA device is available (use --device cpu for a smoke run)",
              file=sys.stderr)
        return 2
    started = time.time()
    device = torch.device(args.device)
    sizes = {"batch": _train_yaml_batch(), **GPU_SIZES} if args.device == "cuda" else dict(CPU_SMOKE)
    sizes.update({k: v for k, v in vars(args).items() if k in sizes and v is not None})
    batch, steps, score_batch = sizes["batch"], sizes["steps"], sizes["score_batch"]
    models = [m for m in args.models.split(",") if m]
    rows, extra = [], []
    with tempfile.TemporaryDirectory(prefix="dhs-bench-device-") as tmp:
        shards = synthetic_shards(os.path.join(tmp, "data"), n_train=steps * batch // 2)
        images = synthetic_pairs(sizes["score_images"], seed=3)["stamp"]
        for name in models:
            print(f"[bench-gpu] {name} ...", file=sys.stderr, flush=True)
            rows.append(measure_model(name, shards, tmp, args.device, batch, args.workers, images, score_batch))
        if "resnet18" in models and args.device == "cuda":
            extra = bench_memory_format(quick=False, device=device)
    where = f"{device_key(device)}, torch {torch.__version__}, {os.cpu_count()} CPU cores"
    header = (f"Device table ({where}): 64x64 paired synthetic shards, configs/train.yaml; "
              f"{steps} steps per timed epoch, best of 2 alternating rounds; {time.time() - started:.0f} s")
    report = {"device": device_key(device), "torch": torch.__version__, "rows": rows, "memory_format": extra,
              "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json(os.path.join(args.out, "device_table.json"), report)
    table = markdown(rows, header)
    write_text(os.path.join(args.out, "device_table.md"), table)
    print(table + f"\nwrote {os.path.join(args.out, 'device_table.md')}")
    print(json.dumps({"elapsed_s": round(time.time() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
