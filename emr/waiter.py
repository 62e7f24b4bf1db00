"""Waiting on an EMR run with boto3's own waiters: ``cluster_running``, then ``step_complete`` per step.

Steps run one at a time (``StepConcurrencyLevel`` 1), so they are awaited in order; each step's
final state is reported once through ``on_change``. A failed step or a cluster that never starts
ends the wait early; the time budget is shared by all waits (TimeoutError naming the unfinished
steps). Tested offline with botocore's Stubber and with moto.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Dict, Sequence

TERMINAL_STATES = frozenset({"COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED"})


def step_log_uris(log_uri: str, cluster_id: str, step_id: str) -> Dict[str, str]:
    """Where EMR puts a step's logs (about five minutes after the step ends)."""
    base = f"{log_uri.rstrip('/')}/{cluster_id}"
    return {"stderr": f"{base}/steps/{step_id}/stderr.gz", "stdout": f"{base}/steps/{step_id}/stdout.gz",
            "controller": f"{base}/steps/{step_id}/controller.gz", "yarn_containers": f"{base}/containers/"}


class ClusterStartError(RuntimeError):
    """The cluster terminated before reaching RUNNING/WAITING (e.g. a bootstrap failure)."""


def _attempts(deadline: float | None, delay: float, clock: Callable[[], float]) -> int:
    if deadline is None:
        return 10 ** 6
    return max(1, math.ceil(max(0.0, deadline - clock()) / max(delay, 1e-3)))


def _waiter(emr, name: str):
    """boto3's EMR waiter ``name``; ``step_complete`` also fails on INTERRUPTED (botocore's model
    only lists FAILED and CANCELLED, so an interrupted step would be awaited until the time ran out)."""
    if name != "step_complete":
        return emr.get_waiter(name)
    import copy

    import botocore.session
    from botocore.waiter import WaiterModel, create_waiter_with_client

    loader = botocore.session.get_session().get_component("data_loader")
    config = copy.deepcopy(loader.load_service_model("emr", "waiters-2"))
    config["waiters"]["StepComplete"]["acceptors"].append(
        {"state": "failure", "matcher": "path", "argument": "Step.Status.State", "expected": "INTERRUPTED"})
    return create_waiter_with_client("StepComplete", WaiterModel(config), emr)


def _wait(emr, name: str, delay: float, deadline: float | None, clock, **kwargs) -> bool:
    """Run boto3 waiter ``name``; True on success, False when it hit a failure state.

    TimeoutError when the attempts the remaining time allows run out.
    """
    from botocore.exceptions import WaiterError

    waiter = _waiter(emr, name)
    try:
        waiter.wait(**kwargs, WaiterConfig={"Delay": delay, "MaxAttempts": _attempts(deadline, delay, clock)})
        return True
    except WaiterError as exc:
        if "Max attempts exceeded" in str(exc):
            raise TimeoutError(f"{name}: still waiting when the time ran out ({kwargs})") from None
        return False


def wait_for_cluster(emr, cluster_id: str, *, poll_seconds: float = 30.0, timeout_seconds: float | None = None,
                     clock: Callable[[], float] = time.monotonic) -> dict:
    """Wait until the cluster is RUNNING or WAITING (boto3 ``cluster_running``); returns its description.

    ClusterStartError (with the state change reason) when it terminates first.
    """
    deadline = None if timeout_seconds is None else clock() + timeout_seconds
    ok = _wait(emr, "cluster_running", poll_seconds, deadline, clock, ClusterId=cluster_id)
    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    if not ok:
        reason = cluster.get("Status", {}).get("StateChangeReason", {})
        raise ClusterStartError(f"cluster {cluster_id} did not start: {cluster['Status']['State']} "
                                f"{reason.get('Code', '')} {reason.get('Message', '')}".rstrip())
    return cluster


def wait_for_steps(emr, cluster_id: str, step_ids: Sequence[str], *,
                   on_change: Callable[[str, str, dict], None] | None = None,
                   poll_seconds: float = 30.0, timeout_seconds: float | None = None,
                   clock: Callable[[], float] = time.monotonic) -> Dict[str, str]:
    """Wait for each step in order with boto3's ``step_complete`` waiter; returns ``{step_id: state}``.

    ``on_change(step_id, state, step)`` is called with each step's final state. After a step ends
    other than COMPLETED the later steps are not awaited: their current states are reported.
    TimeoutError (naming the unfinished steps) after ``timeout_seconds`` in all.
    """
    deadline = None if timeout_seconds is None else clock() + timeout_seconds
    states: Dict[str, str] = {}
    for index, step_id in enumerate(step_ids):
        try:
            _wait(emr, "step_complete", poll_seconds, deadline, clock, ClusterId=cluster_id, StepId=step_id)
        except TimeoutError:
            pending = {s: emr.describe_step(ClusterId=cluster_id, StepId=s)["Step"]["Status"]["State"]
                       for s in step_ids[index:]}
            raise TimeoutError(f"steps still running after {timeout_seconds:.0f}s: {pending}") from None
        step = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
        states[step_id] = step["Status"]["State"]
        if on_change is not None:
            on_change(step_id, states[step_id], step)
        if states[step_id] != "COMPLETED":
            for later in step_ids[index + 1:]:
                later_step = emr.describe_step(ClusterId=cluster_id, StepId=later)["Step"]
                states[later] = later_step["Status"]["State"]
                if on_change is not None:
                    on_change(later, states[later], later_step)
            break
    return states


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
