"""Waiting on EMR steps: poll, report each state change, stop when all are terminal or time runs out.

The loop takes the describe function, clock and sleep as arguments so it is tested without AWS
(moto's steps never finish) and used unchanged against the real API.
"""
from __future__ import annotations

import time
from typing import Callable, Dict, Sequence

TERMINAL_STATES = frozenset({"COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED"})


def step_log_uris(log_uri: str, cluster_id: str, step_id: str) -> Dict[str, str]:
    """Where EMR puts a step's logs (about five minutes after the step ends)."""
    base = f"{log_uri.rstrip('/')}/{cluster_id}"
    return {"stderr": f"{base}/steps/{step_id}/stderr.gz", "stdout": f"{base}/steps/{step_id}/stdout.gz",
            "controller": f"{base}/steps/{step_id}/controller.gz", "yarn_containers": f"{base}/containers/"}


def wait_for_steps(describe_step: Callable[[str], dict], step_ids: Sequence[str], *,
                   on_change: Callable[[str, str, dict], None] | None = None,
                   poll_seconds: float = 30.0, timeout_seconds: float | None = None,
                   sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.monotonic) -> Dict[str, str]:
    """Poll ``describe_step(step_id) -> Step dict`` until every step is terminal.

    ``on_change(step_id, state, step)`` is called on each new state. Returns ``{step_id: state}``;
    TimeoutError (naming the unfinished steps and their states) after ``timeout_seconds``.
    """
    states: Dict[str, str] = {}
    started = clock()
    while True:
        for step_id in step_ids:
            if states.get(step_id) in TERMINAL_STATES:
                continue
            step = describe_step(step_id)
            state = step["Status"]["State"]
            if state != states.get(step_id):
                states[step_id] = state
                if on_change is not None:
                    on_change(step_id, state, step)
        pending = {s: states[s] for s in step_ids if states[s] not in TERMINAL_STATES}
        if not pending:
            return states
        if timeout_seconds is not None and clock() - started >= timeout_seconds:
            raise TimeoutError(f"steps still running after {timeout_seconds:.0f}s: {pending}")
        sleep(poll_seconds)


def cluster_failure_hint(cluster: dict, log_uri: str) -> str:
    """One paragraph on why a cluster ended, from a ``describe_cluster()["Cluster"]`` dict.

    Steps CANCELLED before running usually mean the cluster failed to start: the reason says
    which (e.g. BOOTSTRAP_FAILURE), and the bootstrap output is under the node logs.
    """
    status = cluster.get("Status", {})
    reason = status.get("StateChangeReason", {})
    cluster_id = cluster.get("Id", "<cluster id>")
    base = f"{log_uri.rstrip('/')}/{cluster_id}"
    return (f"cluster {cluster_id} is {status.get('State', 'UNKNOWN')}: {reason.get('Code', '')} "
            f"{reason.get('Message', '')}".rstrip()
            + f"\n    bootstrap logs: {base}/node/<instance id>/bootstrap-actions/1/stderr.gz"
            + f"\n    step logs: {base}/steps/")


def all_completed(states: Dict[str, str]) -> bool:
    """True when every step ended COMPLETED."""
    return bool(states) and all(state == "COMPLETED" for state in states.values())
