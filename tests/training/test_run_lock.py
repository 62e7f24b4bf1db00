"""One writer per out_dir (run lock with stale-lock takeover) and torchrun workers that die with
their launcher."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import yaml

from training.run_lock import LOCK_NAME, RunLock, RunLocked
from training.train import main, run

from .conftest import train_config


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_run_on_a_locked_out_dir_is_refused(paired_shards, tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        out.mkdir()
        (out / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid}))
        cfg = train_config(paired_shards, out, optim__epochs=1)
        with pytest.raises(RunLocked, match=f"in use by a running training \\(pid {holder.pid}"):
            run(cfg)
        cfg_path = tmp_path / "cfg.yaml"
        cfg_path.write_text(yaml.safe_dump(json.loads(cfg.model_dump_json())))
        assert main(["--config", str(cfg_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "one writer per out_dir" in err[0]
        assert not (out / "metrics.csv").exists() and not (out / "last.pt").exists()
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_is_taken_over_and_released(paired_shards, tmp_path, caplog):
    out = tmp_path / "run"
    out.mkdir()
    dead = _dead_pid()
    (out / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": dead}))
    res = run(train_config(paired_shards, out, optim__epochs=1))
    assert res["model_id"]
    assert f"stale run lock on {out}" in caplog.text and str(dead) in caplog.text
    assert not (out / LOCK_NAME).exists()  # released at the end


def test_lock_records_the_holder_and_refuses_other_hosts(tmp_path):
    with RunLock(str(tmp_path)) as lock:
        rec = json.loads((tmp_path / LOCK_NAME).read_text())
        assert rec["pid"] == os.getpid() and rec["host"] == socket.gethostname()
        with pytest.raises(RunLocked):
            RunLock(str(tmp_path)).acquire()  # this very process holds it: alive
    assert not lock.held and not (tmp_path / LOCK_NAME).exists()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"host": "elsewhere.example", "pid": 123}))
    with pytest.raises(RunLocked, match="host elsewhere.example .* remove"):
        RunLock(str(tmp_path)).acquire()


def test_reused_pid_is_not_a_live_holder(tmp_path):
    """The PID is running but it is a different process (start time differs): stale."""
    (tmp_path / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                                  "start_time": "1"}))
    with RunLock(str(tmp_path)):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["start_time"] != "1"


LAUNCHER = """
import os, subprocess, sys, time
env = dict(os.environ, TORCHELASTIC_RUN_ID="test")
child = subprocess.Popen([sys.executable, "-m", "training.train", "--config", sys.argv[1]],
                         env=env, start_new_session=True)  # torchrun starts workers in their own session
print(child.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_the_launcher_leaves_no_worker(paired_shards, tmp_path):
    out = tmp_path / "run"
    cfg = train_config(paired_shards, out, optim__epochs=200, data__num_workers=1)
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(json.loads(cfg.model_dump_json())))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DHS_NO_PROGRESS": "1"}
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(cfg_path)], stdout=subprocess.PIPE,
                                text=True, env=env, cwd=os.getcwd())
    worker = int(launcher.stdout.readline())
    try:
        deadline = time.time() + 120
        while not (out / "metrics.csv").exists():  # the worker is training
            assert time.time() < deadline and _alive(worker), "worker never started training"
            time.sleep(0.5)
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        deadline = time.time() + 30
        while _alive(worker) and time.time() < deadline:
            time.sleep(0.2)
        assert not _alive(worker), "the worker outlived its launcher"
    finally:
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)
        if launcher.poll() is None:
            launcher.kill()
