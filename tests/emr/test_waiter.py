"""The waits use boto3's EMR waiters (cluster_running, step_complete), driven offline by botocore's
Stubber: scripted describe_step / describe_cluster responses, no AWS, no sleeping."""
from __future__ import annotations

import datetime

import boto3
import pytest
from botocore.stub import Stubber

from emr.waiter import (
    ClusterStartError,
    all_completed,
    cluster_failure_hint,
    step_log_uris,
    wait_for_cluster,
    wait_for_steps,
)

NOW = datetime.datetime(2026, 1, 1)


def _client():
    return boto3.client("emr", region_name="us-east-2", aws_access_key_id="x", aws_secret_access_key="x")


def _step(step_id, state, reason=None):
    status = {"State": state, "Timeline": {"CreationDateTime": NOW}}
    if reason:
        status["FailureDetails"] = {"Reason": reason}
    return {"Step": {"Id": step_id, "Name": step_id, "Status": status}}


def _script(stubber, cluster_id, states):
    """describe_step responses in the order the waiters will ask for them."""
    for step_id, state in states:
        stubber.add_response("describe_step", _step(step_id, state), {"ClusterId": cluster_id, "StepId": step_id})


def test_steps_awaited_in_order_and_final_states_reported_once():
    emr = _client()
    with Stubber(emr) as stub:
        _script(stub, "j-1", [("s-1", "PENDING"), ("s-1", "RUNNING"), ("s-1", "COMPLETED"), ("s-1", "COMPLETED"),
                              ("s-2", "RUNNING"), ("s-2", "COMPLETED"), ("s-2", "COMPLETED")])
        changes = []
        states = wait_for_steps(emr, "j-1", ["s-1", "s-2"], poll_seconds=0,
                                on_change=lambda sid, state, step: changes.append((sid, state)))
        stub.assert_no_pending_responses()
    assert states == {"s-1": "COMPLETED", "s-2": "COMPLETED"} and all_completed(states)
    assert changes == [("s-1", "COMPLETED"), ("s-2", "COMPLETED")]


@pytest.mark.parametrize("bad", ["FAILED", "CANCELLED", "INTERRUPTED"])
def test_a_failed_step_ends_the_wait_and_reports_the_rest(bad):
    """INTERRUPTED is not a failure state of botocore's step_complete model: added so it cannot hang."""
    emr = _client()
    with Stubber(emr) as stub:
        _script(stub, "j-1", [("s-1", "RUNNING"), ("s-1", bad), ("s-1", bad), ("s-2", "CANCELLED")])
        states = wait_for_steps(emr, "j-1", ["s-1", "s-2"], poll_seconds=0)
        stub.assert_no_pending_responses()
    assert states == {"s-1": bad, "s-2": "CANCELLED"} and not all_completed(states)


def test_timeout_names_unfinished_steps(monkeypatch):
    import botocore.waiter

    monkeypatch.setattr(botocore.waiter.time, "sleep", lambda seconds: None)
    emr = _client()
    now = [0.0]

    def clock():
        now[0] += 40.0  # every look at the clock: 40 s later
        return now[0]

    with Stubber(emr) as stub:
        # deadline 40 + 100 s; at 80 s, 60 s are left: two 30-s polls, then the pending state is listed
        for _ in range(3):
            stub.add_response("describe_step", _step("s-1", "RUNNING"), {"ClusterId": "j-1", "StepId": "s-1"})
        with pytest.raises(TimeoutError, match=r"after 100s: \{'s-1': 'RUNNING'\}"):
            wait_for_steps(emr, "j-1", ["s-1"], poll_seconds=30, timeout_seconds=100, clock=clock)
        stub.assert_no_pending_responses()


def _cluster(state, code=""):
    return {"Cluster": {"Id": "j-9", "Name": "dhs", "Status": {"State": state, "StateChangeReason": {
        "Code": code, "Message": "bootstrap action 1 returned a non-zero return code"} if code else {}}}}


def test_cluster_running_waiter():
    emr = _client()
    with Stubber(emr) as stub:
        for state in ("STARTING", "BOOTSTRAPPING", "WAITING", "WAITING"):
            stub.add_response("describe_cluster", _cluster(state), {"ClusterId": "j-9"})
        assert wait_for_cluster(emr, "j-9", poll_seconds=0)["Status"]["State"] == "WAITING"
        stub.assert_no_pending_responses()


def test_cluster_that_never_starts_is_an_error():
    emr = _client()
    with Stubber(emr) as stub:
        stub.add_response("describe_cluster", _cluster("STARTING"), {"ClusterId": "j-9"})
        for _ in range(2):
            stub.add_response("describe_cluster", _cluster("TERMINATED_WITH_ERRORS", "BOOTSTRAP_FAILURE"),
                              {"ClusterId": "j-9"})
        with pytest.raises(ClusterStartError, match="TERMINATED_WITH_ERRORS BOOTSTRAP_FAILURE"):
            wait_for_cluster(emr, "j-9", poll_seconds=0)


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
