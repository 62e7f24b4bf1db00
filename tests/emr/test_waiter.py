"""The step waiter, driven by scripted describe functions and a fake clock (moto's steps never finish)."""
from __future__ import annotations

import pytest

from emr.waiter import all_completed, cluster_failure_hint, step_log_uris, wait_for_steps


def _scripted(sequences):
    """describe_step returning the next scripted state of each step on every call."""
    calls = {sid: 0 for sid in sequences}

    def describe(step_id):
        states = sequences[step_id]
        state = states[min(calls[step_id], len(states) - 1)]
        calls[step_id] += 1
        return {"Id": step_id, "Status": {"State": state}}

    return describe, calls


def test_waits_until_all_terminal_and_reports_changes_once():
    describe, calls = _scripted({"s-1": ["PENDING", "RUNNING", "RUNNING", "COMPLETED"],
                                 "s-2": ["PENDING", "PENDING", "PENDING", "PENDING", "RUNNING", "COMPLETED"]})
    changes, sleeps = [], []
    states = wait_for_steps(describe, ["s-1", "s-2"], on_change=lambda s, st, _: changes.append((s, st)),
                            poll_seconds=7, sleep=sleeps.append)
    assert states == {"s-1": "COMPLETED", "s-2": "COMPLETED"}
    assert all_completed(states)
    assert changes == [("s-1", "PENDING"), ("s-2", "PENDING"), ("s-1", "RUNNING"), ("s-1", "COMPLETED"),
                       ("s-2", "RUNNING"), ("s-2", "COMPLETED")]
    assert calls["s-1"] == 4  # a finished step is not polled again
    assert set(sleeps) == {7} and len(sleeps) == 5


def test_failure_and_cancellation_are_terminal():
    describe, _ = _scripted({"s-1": ["RUNNING", "FAILED"], "s-2": ["PENDING", "CANCELLED"]})
    states = wait_for_steps(describe, ["s-1", "s-2"], sleep=lambda _: None)
    assert states == {"s-1": "FAILED", "s-2": "CANCELLED"}
    assert not all_completed(states)
    assert not all_completed({})


def test_timeout_names_unfinished_steps():
    describe, _ = _scripted({"s-1": ["COMPLETED"], "s-2": ["PENDING", "RUNNING"]})
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    with pytest.raises(TimeoutError, match="s-2.*RUNNING"):
        wait_for_steps(describe, ["s-1", "s-2"], poll_seconds=30, timeout_seconds=100, sleep=sleep,
                       clock=lambda: now[0])
    assert now[0] == 120


def test_log_locations():
    uris = step_log_uris("s3://b/logs/", "j-1", "s-9")
    assert uris["stderr"] == "s3://b/logs/j-1/steps/s-9/stderr.gz"
    assert uris["yarn_containers"] == "s3://b/logs/j-1/containers/"


def test_cluster_failure_hint_points_at_bootstrap_logs():
    cluster = {"Id": "j-9", "Status": {"State": "TERMINATED_WITH_ERRORS", "StateChangeReason": {
        "Code": "BOOTSTRAP_FAILURE", "Message": "On the master instance, bootstrap action 1 returned a non-zero"}}}
    hint = cluster_failure_hint(cluster, "s3://b/logs/")
    assert hint.startswith("cluster j-9 is TERMINATED_WITH_ERRORS: BOOTSTRAP_FAILURE On the master")
    assert "s3://b/logs/j-9/node/<instance id>/bootstrap-actions/1/stderr.gz" in hint
