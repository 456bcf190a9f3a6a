"""`kulta release get`'s tree: stages, their Rollouts with state, phase, step, weight and
revisions, the message of a held stage, and the Temporal link."""

from __future__ import annotations

from kulta.release_cli import render_release


def test_the_tree_shows_each_stage_and_rollout_where_it_is() -> None:
    release = {
        "metadata": {"namespace": "shop", "name": "checkout", "generation": 2},
        "spec": {"stages": []},
        "status": {
            "phase": "Paused",
            "reason": "Shipping",
            "message": "stage backend waiting for approval (0/2 stages done)",
            "observedGeneration": 2,
            "workflowId": "release/shop/checkout/2.abcdef01",
            "conditions": [
                {
                    "type": "Degraded",
                    "status": "True",
                    "reason": "ActionRetrying",
                    "message": "follow Rollout shop/web in cluster east: timeout",
                    "lastTransitionTime": "2026-12-03T00:00:00Z",
                }
            ],
            "stages": [
                {
                    "name": "backend",
                    "phase": "WaitingForApproval",
                    "message": "waiting for approval: kulta release approve checkout backend",
                    "rollouts": [
                        {
                            "name": "orders",
                            "state": "Completed",
                            "phase": "Completed",
                            "step": 2,
                            "stepCount": 2,
                            "weight": 100,
                            "revision": "new1",
                            "previousRevision": "old1",
                        },
                    ],
                },
                {
                    "name": "frontend",
                    "cluster": "east",
                    "phase": "Pending",
                    "rollouts": [{"name": "web", "state": "Pending"}],
                },
            ],
        },
    }
    text = render_release(release)
    lines = text.splitlines()
    assert lines[0] == "Release shop/checkout  Paused (Shipping)  generation 2, observed 2"
    assert "degraded: follow Rollout shop/web in cluster east: timeout" in text
    assert "  stage backend  WaitingForApproval" in lines
    assert "kulta release approve checkout backend" in text
    orders = next(line for line in lines if "orders" in line)
    assert "✓" in orders and "step 2/2" in orders and "weight 100%" in orders
    assert "old1 -> new1" in orders
    assert "  stage frontend  [cluster east]  Pending" in lines
    assert (
        lines[-1].startswith("  Temporal: ")
        and "release%2Fshop%2Fcheckout%2F2.abcdef01" in lines[-1]
    )


def test_a_release_without_status_shows_its_plan() -> None:
    release = {
        "metadata": {"namespace": "shop", "name": "checkout", "generation": 1},
        "spec": {"stages": [{"name": "backend", "rollouts": [{"name": "orders"}]}]},
    }
    text = render_release(release)
    assert "Pending" in text.splitlines()[0]
    assert "  stage backend  Pending" in text and "orders" in text
