"""One writer per training run, and no worker outliving its launcher.

``RunLock(out_dir)`` holds ``<out_dir>/.run.lock`` for the life of a run: a JSON record of the
holder's host, PID and process start time, created with O_EXCL. A second run on the same
``out_dir`` is refused with one line naming the holder. A lock whose holder is gone (same host, PID
not running, or the PID now belongs to a process started later) is stale: it is taken over with a
log line. A lock held on another host cannot be checked from here and is refused; its message says
which file to remove once that run is known to be dead.

``exit_with_parent()`` makes this process die with its launcher (``torchrun``), which starts the
workers in their own session, so a ``kill -9`` of the launcher would otherwise leave them running
beside a resumed run: Linux ``prctl(PR_SET_PDEATHSIG)``, elsewhere a watchdog thread on the
parent PID.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time

from dhs_gen.log import get_logger

log = get_logger(__name__)
LOCK_NAME = ".run.lock"
PR_SET_PDEATHSIG = 1


class RunLocked(RuntimeError):
    """``out_dir`` is held by another live run (or one on another host)."""


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22), or None
    where /proc is not available; tells a reused PID from the original holder."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _running(pid: int, start_time: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return start_time is None or _start_time(pid) in (None, start_time)


class RunLock:
    """Exclusive hold on a run's ``out_dir`` (see module docstring); a context manager."""

    def __init__(self, out_dir: str):
        self.path = os.path.join(os.path.abspath(out_dir), LOCK_NAME)
        self.held = False

    def _record(self) -> dict:
        pid = os.getpid()
        return {"host": socket.gethostname(), "pid": pid, "start_time": _start_time(pid),
                "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "argv": sys.argv[:6]}

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(self._record(), f)
        return True

    def _holder(self) -> dict:
        try:
            with open(self.path) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {"host": "?", "pid": -1, "unreadable": True}

    def acquire(self) -> RunLock:
        """Take the lock, taking over a stale one; RunLocked when another run holds it."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        for _ in range(3):
            if self._create():
                self.held = True
                return self
            holder = self._holder()
            if not holder:
                continue  # released between our two looks
            here = holder.get("host") == socket.gethostname()
            pid = int(holder.get("pid", -1))
            if here and pid > 0 and _running(pid, holder.get("start_time")):
                raise RunLocked(f"{os.path.dirname(self.path)} is in use by a running training (pid {pid} on "
                                f"{holder['host']} since {holder.get('started_utc', '?')}); one writer per out_dir")
            if not here and not holder.get("unreadable"):
                raise RunLocked(f"{os.path.dirname(self.path)} is locked by pid {pid} on host {holder.get('host')} "
                                f"(cannot check it from here); remove {self.path} if that run is dead")
            stale = f"{self.path}.stale-{os.getpid()}"
            try:
                os.replace(self.path, stale)  # only one contender wins the rename
            except FileNotFoundError:
                continue
            os.remove(stale)
            log.warning("taking over a stale run lock on %s (pid %s on %s is gone)",
                        os.path.dirname(self.path), pid, holder.get("host"))
        raise RunLocked(f"could not take the run lock {self.path} (contended)")

    def release(self) -> None:
        if self.held:
            self.held = False
            if self._holder().get("pid") == os.getpid():
                os.remove(self.path)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def exit_with_parent(sig: int = signal.SIGTERM) -> str:
    """Have this process receive ``sig`` when its parent (the launcher) dies; returns the mechanism
    used ("prctl" or "watchdog"). Exits at once if the parent is already gone (reparented)."""
    parent = os.getppid()
    how = "watchdog"
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0:
            how = "prctl"
    if how == "watchdog":
        def watch():
            while os.getppid() == parent:
                time.sleep(1.0)
            os.kill(os.getpid(), sig)

        threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
    if os.getppid() != parent:  # the launcher died while the guard was being set
        os.kill(os.getpid(), sig)
    return how
