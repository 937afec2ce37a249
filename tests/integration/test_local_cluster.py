"""``berth up --redis-cluster`` against a real 3-master Redis Cluster on loopback: it applies,
materializes and serves with the direct source, and its scores equal those of ``berth up
--redis`` on a plain redis-server for the same requests, bit for bit."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from berth.cli.options import stack_from_args
from berth.local import Endpoints, LocalStack
from berth.stack import RedisClusterServers, RedisServer, free_port
from tests.support.env import patched_env

pytestmark = pytest.mark.integration
FRESH = shutil.ignore_patterns("registry.db", "online_store.db")


def start_up(argv: list[str], built: tuple[Path, Path], root: Path) -> tuple[LocalStack, Endpoints]:
    """``berth up ARGV`` as the CLI parses it, started in-process: (stack, endpoints)."""
    from berth.cli import build_parser

    repo = Path(shutil.copytree(built[0], root / "repo", ignore=FRESH))
    args = build_parser().parse_args(
        ["up", "--repo", str(repo), "--artifact", str(built[1]), "--logs", str(root), *argv]
    )
    stack = stack_from_args(args, free_port(), free_port())
    stack.echo = lambda line: None
    with patched_env(REDIS_CONNECTION_STRING=""):
        try:
            return stack, stack.start()
        except BaseException:
            stack.stop()
            raise


def test_berth_up_on_redis_cluster_scores_like_plain_redis_bit_for_bit(
    built: tuple[Path, Path], redis_cluster: RedisClusterServers, tmp_path: Path
) -> None:
    from berth.cli.demo import grpc_scores, post_json

    if importlib.util.find_spec("berth_predictor.__main__") is None:
        pytest.skip("predictors/berth_predictor has no __main__ yet")
    plain = RedisServer().start()
    stacks: list[LocalStack] = []
    try:
        a, ep_a = start_up(["--redis", plain.url], built, tmp_path / "plain")
        stacks.append(a)
        b, ep_b = start_up(
            ["--redis-cluster", redis_cluster.connection_string], built, tmp_path / "cluster"
        )
        stacks.append(b)
        log = (tmp_path / "cluster" / "transformer.log").read_text()
        assert "feature source: direct Redis reads" in log and "redis_cluster" in log, log
        assert ep_b.online_store.startswith("Redis Cluster 127.0.0.1:")

        for customer in (7, 21, 88):
            rows = [
                {
                    "customer_id": customer,
                    "driver_id": driver,
                    "trip_distance_km": 2.5 + driver % 7,
                    "pickup_hour": driver % 24,
                }
                for driver in range(1001, 1041)
            ]
            body = {"instances": rows}
            url = "/v1/models/driver-ranking:predict"
            rest_a = post_json(ep_a.http + url, body)["predictions"]
            rest_b = post_json(ep_b.http + url, body)["predictions"]
            assert rest_a == rest_b
            grpc_a = grpc_scores(ep_a.grpc, ep_a.model, rows)
            grpc_b = grpc_scores(ep_b.grpc, ep_b.model, rows)
            assert grpc_a == grpc_b and len(set(grpc_b)) > 1
    finally:
        for stack in reversed(stacks):
            stack.stop()
        plain.close()
