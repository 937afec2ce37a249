"""``cluster_port``: node ports never collide with another node's cluster bus (port + 10000).

A collision made ``redis-cli --cluster create`` fail at random (a node at 36739 has its bus on
46739; a second node given 46739 cannot listen there)."""

from __future__ import annotations

import pytest

from berth.stack import redis_cluster
from berth.stack.redis_cluster import BUS_OFFSET, cluster_port


def test_a_port_that_is_a_taken_nodes_bus_port_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    offered = iter([36739 + BUS_OFFSET, 30001])
    monkeypatch.setattr(redis_cluster, "free_port", lambda: next(offered))
    monkeypatch.setattr(redis_cluster, "port_is_free", lambda port: True)
    assert cluster_port({36739}) == 30001


def test_a_port_whose_bus_port_is_a_taken_node_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    offered = iter([36739, 30001])
    monkeypatch.setattr(redis_cluster, "free_port", lambda: next(offered))
    monkeypatch.setattr(redis_cluster, "port_is_free", lambda port: True)
    assert cluster_port({36739 + BUS_OFFSET}) == 30001


def test_ports_above_the_bus_range_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    offered = iter([65_000, 30001])
    monkeypatch.setattr(redis_cluster, "free_port", lambda: next(offered))
    monkeypatch.setattr(redis_cluster, "port_is_free", lambda port: True)
    assert cluster_port(set()) == 30001
