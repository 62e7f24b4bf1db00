"""``make demo`` evaluation stage: evaluate the demo training run, then score the demo injection
stamps with the Spark scoring job (local[2]) when the injection stage published them."""
from __future__ import annotations

import posixpath

from dhs_gen.log import get_logger
from dhs_gen.resources import configs_dir

log = get_logger(__name__)

CONFIGS = configs_dir()


def _summary(demo_root: str, stage: str) -> dict:
    from dhs_gen.storage import exists, join_uri, read_json

    uri = join_uri(demo_root, stage, "summary.json")
    return read_json(uri) if exists(uri) else {}


def run_demo_stage(root: str, force: bool = False) -> dict:
    """Run ``dhs evaluate`` on the training stage's run and ``dhs score`` on the injection stamps."""
    from dhs_gen.config import load_config
    from dhs_gen.storage import join_uri
    from training.evaluate import EvaluateConfig, evaluate_run, summary_line

    demo_root = posixpath.dirname(root.rstrip("/"))
    training = _summary(demo_root, "training")
    run_dir = training.get("out_dir") or training.get("run_dir")
    if not run_dir:
        raise RuntimeError(f"no training run to evaluate: {demo_root}/training/summary.json has no out_dir")
    cfg = load_config(EvaluateConfig, str(CONFIGS / "eval_demo.yaml"))
    cfg = cfg.model_copy(update={"run_dir": run_dir, "out_dir": join_uri(root, "eval")})
    result = evaluate_run(cfg)
    summary = {"status": "ok", "run_dir": run_dir, "evaluation": join_uri(root, "eval", "evaluation.json"),
               **summary_line(result, cfg)}

    stamps = _summary(demo_root, "injection").get("stamps")
    if stamps:
        from dhs.demo_jobs import spark_submit

        scores = join_uri(root, "scores")
        summary["score_job"] = spark_submit("score", [
            "--config", str(CONFIGS / "eval_score_demo.yaml"), "--input", stamps, "--output", scores,
            "--model", join_uri(run_dir, "frozen"), "--calibration", join_uri(root, "eval", "calibration.json")])
        summary["scores"] = scores
    else:
        log.info("injection stage published no 'stamps' dataset: scoring skipped")
    return summary
