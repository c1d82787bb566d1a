"""The operator's hysteresis memory across restarts: the hot nodes a policy's status keeps (state `Hot`)."""

from __future__ import annotations

from livemig.controller.status import remembered_hot_nodes


def test_hot_nodes_are_read_back_from_status_nodes() -> None:
    status = {
        "nodes": [
            {"name": "n1", "state": "Hot"},
            {"name": "n2", "state": "Unhealthy", "since": "2026-12-01T00:00:00Z"},
            {"name": "n3", "state": "Hot"},
            {"state": "Hot"},  # no name: ignored
            "garbage",
        ]
    }
    assert remembered_hot_nodes(status) == {"n1", "n3"}
    assert remembered_hot_nodes({}) == frozenset()
