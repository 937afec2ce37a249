"""Direct reads on a real Redis Cluster (6 redis-servers on loopback, 3 masters): the same
values and event times as Feast's SDK on the same cluster, redirections followed; TLS and ACL
users on plain Redis and on a cluster.

The feature repo is applied and materialized into the cluster by Feast itself
(``feature_store.redis_cluster.yaml``: ``redis_type: redis_cluster``), then a stale row per view
and an unknown driver/customer make the missing and stale paths show.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from berth.featurerepo import CLUSTER_YAML, materialize_latest, open_store, service_contract
from berth.stack import RedisClusterServers
from tests.support.env import patched_env

pytestmark = pytest.mark.integration

UNKNOWN_DRIVER = 7001
UNKNOWN_CUSTOMER = 9001
STALE_STATS_DRIVER = 7002  # driver_hourly_stats 3 h old (TTL 2 h)
STALE_PROFILE_DRIVER = 7003  # driver_profile 100 d old (TTL 90 d)
DRIVERS = [
    1001,
    1002,
    UNKNOWN_DRIVER,
    STALE_STATS_DRIVER,
    STALE_PROFILE_DRIVER,
    1001,
    *range(1003, 1040),
]
FRESH = shutil.ignore_patterns("registry.db", "online_store.db")


def materialize_with_odd_rows(repo: Path, yaml_file: Path, connection_string: str) -> None:
    """Feast's apply + materialize into the store of ``yaml_file``, then stale rows."""
    with patched_env(REDIS_CONNECTION_STRING=connection_string):
        store = materialize_latest(repo, yaml_file)
        now = pd.Timestamp(datetime.now(UTC))
        stats = pd.read_parquet(repo / "data" / "driver_hourly_stats.parquet").tail(1)
        profile = pd.read_parquet(repo / "data" / "driver_profile.parquet").head(1)
        for view, frame, driver, age in (
            ("driver_hourly_stats", stats, STALE_STATS_DRIVER, timedelta(hours=3)),
            ("driver_profile", profile, STALE_STATS_DRIVER, timedelta(minutes=5)),
            ("driver_hourly_stats", stats, STALE_PROFILE_DRIVER, timedelta(minutes=5)),
            ("driver_profile", profile, STALE_PROFILE_DRIVER, timedelta(days=100)),
        ):
            row = frame.assign(driver_id=driver, event_timestamp=now - age, created=now - age)
            store.write_to_online_store(view, row.reset_index(drop=True))


def columns_for(drivers: list[int], customer: int) -> dict[str, list[Any]]:
    return {
        "customer_id": [customer] * len(drivers),
        "driver_id": list(drivers),
        "trip_distance_km": [3.5] * len(drivers),
        "pickup_hour": [9] * len(drivers),
    }


async def compare_with_sdk(repo: Path, yaml_file: Path, service: str) -> Any:
    """Direct source and Feast's SDK on the same rows: equal values and event times. Returns
    the direct source (closed) for the caller to inspect."""
    from berth_transformer.features import FeastSource, open_reader

    store = open_store(repo, yaml_file)
    reader = open_reader(store, service, service_contract(store, service), None, {}, {}, 5.0)
    sdk = FeastSource(store, store.get_feature_service(service), reader.features)
    try:
        for customer in (7, UNKNOWN_CUSTOMER):
            rows = columns_for(DRIVERS, customer)
            sdk_values, sdk_stamps = await sdk.fetch(rows)
            values, stamps = await reader.source.fetch(rows)
            np.testing.assert_array_equal(values, sdk_values)
            np.testing.assert_array_equal(stamps, sdk_stamps)
            assert np.isnan(values).any() and not np.isnan(values).all()
        return reader.source
    finally:
        await reader.source.close()


@pytest.fixture(scope="module")
def cluster_repo(
    built: tuple[Path, Path],
    redis_cluster: RedisClusterServers,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    repo = Path(
        shutil.copytree(built[0], tmp_path_factory.mktemp("cluster") / "repo", ignore=FRESH)
    )
    materialize_with_odd_rows(repo, repo / CLUSTER_YAML, redis_cluster.connection_string)
    with patched_env(REDIS_CONNECTION_STRING=redis_cluster.connection_string):
        yield repo


@pytest.mark.parametrize("service", ["driver_ranking_v1", "driver_ranking_v2"])
def test_direct_cluster_reads_equal_feast_sdk_on_the_cluster(
    cluster_repo: Path, service: str
) -> None:
    """Every feature of the service (float32 and int64 views, float64/int64 request fields),
    known, unknown, stale and repeated drivers, a known and an unknown customer: the same as
    Feast's SDK reads from the same cluster, and the read spans every master."""
    from berth_transformer.redis_transport import ClusterTransport

    source = asyncio.run(compare_with_sdk(cluster_repo, cluster_repo / CLUSTER_YAML, service))
    assert isinstance(source.transport, ClusterTransport)
    slots = {command.slot for command in source._commands.values()}
    owners = {source.transport._client.nodes_manager.get_node_from_slot(s).name for s in slots}
    assert len(owners) == 3  # keys are spread over all three masters


def test_moved_replies_are_followed_and_fix_the_slot_map(cluster_repo: Path) -> None:
    """A slot map that names the wrong master for some keys (as after a resharding or a
    failover) gets MOVED from the real servers; the read still equals a correct one and the
    next read goes straight to the right master."""
    from berth_transformer.features import open_reader

    store = open_store(cluster_repo, cluster_repo / CLUSTER_YAML)
    service = "driver_ranking_v1"
    reader = open_reader(store, service, service_contract(store, service), None, {}, {}, 5.0)
    source = reader.source
    rows = columns_for(DRIVERS, 7)

    async def run() -> None:
        try:
            expected = await source.fetch(rows)
            manager = source.transport._client.nodes_manager
            slots = sorted({c.slot for c in source._commands.values()})
            right = {s: manager.slots_cache[s][0] for s in slots}
            masters = {n.name: n for n in right.values()}
            wrong = {s: next(n for k, n in masters.items() if k != right[s].name) for s in slots}
            for s in slots:
                manager.slots_cache[s] = [wrong[s]]
            got = await source.fetch(rows)
            for a, b in zip(got, expected, strict=True):
                np.testing.assert_array_equal(a, b)
            assert all(manager.slots_cache[s][0].name == right[s].name for s in slots)
        finally:
            await source.close()

    asyncio.run(run())


# --- TLS and ACL: a self-signed certificate made for this test, a user with a password -----

USER = ("berth-reader", "s3cret-pw")


async def read_once(source: Any) -> None:
    try:
        await source.fetch(columns_for([1001], 7))
    finally:
        await source.close()


def test_tls_and_acl_on_plain_redis(built: tuple[Path, Path], tmp_path: Path) -> None:
    """Feast's ``ssl=true,ssl_ca_certs=...,username=...,password=...`` on a TLS-only
    redis-server whose only user is an ACL user: Feast materializes through it, the direct
    source reads what the SDK reads; a wrong password or no TLS is refused (a RedisError: the
    transformer's 503)."""
    import redis.exceptions

    from berth.featurerepo import REDIS_YAML
    from berth.stack import RedisServer
    from berth_transformer.features import open_reader
    from berth_transformer.redis_transport import PlainTransport
    from tests.support.tls import self_signed_tls

    if not RedisServer.available():
        pytest.skip("redis-server binary not found")
    tls = self_signed_tls(tmp_path)
    server = RedisServer(tls=tls, user=USER).start()
    try:
        repo = Path(shutil.copytree(built[0], tmp_path / "repo", ignore=FRESH))
        materialize_with_odd_rows(repo, repo / REDIS_YAML, server.connection_string)
        assert "ssl=true" in server.connection_string
        with patched_env(REDIS_CONNECTION_STRING=server.connection_string):
            source = asyncio.run(compare_with_sdk(repo, repo / REDIS_YAML, "driver_ranking_v1"))
        assert isinstance(source.transport, PlainTransport)

        wrong = server.connection_string.replace(USER[1], "wrong-pw")
        plaintext = f"127.0.0.1:{server.port},username={USER[0]},password={USER[1]}"
        for connection, error in (
            (wrong, redis.exceptions.AuthenticationError),
            (plaintext, redis.exceptions.ConnectionError),
        ):
            with patched_env(REDIS_CONNECTION_STRING=connection):
                store = open_store(repo, repo / REDIS_YAML)
                contract = service_contract(store, "driver_ranking_v1")
                reader = open_reader(store, "driver_ranking_v1", contract, None, {}, {}, 5.0)

                with pytest.raises(error):
                    asyncio.run(read_once(reader.source))
    finally:
        server.close()


def test_tls_and_acl_on_redis_cluster(built: tuple[Path, Path], tmp_path: Path) -> None:
    """The same on a 6-node cluster whose client port, bus and replication all speak TLS and
    whose only user is the ACL user."""
    from berth_transformer.redis_transport import ClusterTransport
    from tests.support.tls import self_signed_tls

    if not RedisClusterServers.available():
        pytest.skip("redis-server/redis-cli not found")
    cluster = RedisClusterServers(tls=self_signed_tls(tmp_path), user=USER).start()
    try:
        repo = Path(shutil.copytree(built[0], tmp_path / "repo", ignore=FRESH))
        materialize_with_odd_rows(repo, repo / CLUSTER_YAML, cluster.connection_string)
        with patched_env(REDIS_CONNECTION_STRING=cluster.connection_string):
            source = asyncio.run(compare_with_sdk(repo, repo / CLUSTER_YAML, "driver_ranking_v2"))
        assert isinstance(source.transport, ClusterTransport)
    finally:
        cluster.close()


DTYPES_REPO = """
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, Project, ValueType
from feast.types import Float32, Float64, Int32, Int64

project = Project(name="dtypes")
item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.INT64)
numbers = FeatureView(
    name="numbers",
    entities=[item],
    ttl=timedelta(days=1),
    schema=[
        Field(name="i32", dtype=Int32),
        Field(name="i64", dtype=Int64),
        Field(name="f32", dtype=Float32),
        Field(name="f64", dtype=Float64),
    ],
    source=FileSource(path="data/numbers.parquet", timestamp_field="event_timestamp"),
)
dtypes_v1 = FeatureService(name="dtypes_v1", features=[numbers])
"""


def test_every_servable_dtype_reads_like_feast_sdk_on_the_cluster(
    redis_cluster: RedisClusterServers, tmp_path: Path
) -> None:
    """int32, int64, float32 and float64 features (negative, large, null, a missing entity,
    a stale row): the direct cluster source decodes what Feast's SDK decodes."""
    from berth_transformer.features import FeastSource, open_reader

    repo = tmp_path / "dtypes"
    (repo / "data").mkdir(parents=True)
    (repo / "dtypes_features.py").write_text(DTYPES_REPO)
    (repo / CLUSTER_YAML).write_text(
        "project: dtypes\nregistry: data/registry.db\nprovider: local\n"
        "offline_store:\n  type: file\nonline_store:\n  type: redis\n"
        "  redis_type: redis_cluster\n  connection_string: ${REDIS_CONNECTION_STRING}\n"
        "entity_key_serialization_version: 3\n"
    )
    now = pd.Timestamp(datetime.now(UTC))
    pd.DataFrame(
        {
            "item_id": [1, 2, 3, 4, 5],
            "i32": pd.array([-7, 2**31 - 1, 0, 5, 9], dtype="int32"),
            "i64": [-(2**40), 2**53, 0, 3, 11],
            "f32": np.array([-1.5, 3.25, 1e-7, np.nan, 8.0], dtype=np.float32),
            "f64": [0.1, -2.5e300, np.nan, 4.0, 1.0 / 3],
            "event_timestamp": [now - timedelta(minutes=5)] * 4 + [now - timedelta(days=3)],
        }
    ).to_parquet(repo / "data" / "numbers.parquet")
    with patched_env(REDIS_CONNECTION_STRING=redis_cluster.connection_string):
        store = materialize_latest(repo, repo / CLUSTER_YAML)
        contract = service_contract(store, "dtypes_v1")
        assert [f.dtype for f in contract] == ["int64", "int64", "float32", "float64"]
        reader = open_reader(store, "dtypes_v1", contract, None, {}, {}, 5.0)
        sdk = FeastSource(store, store.get_feature_service("dtypes_v1"), reader.features)
        rows = {"item_id": [1, 2, 3, 4, 5, 99, 2]}

        async def both() -> tuple[Any, Any]:
            try:
                return await reader.source.fetch(rows), await sdk.fetch(rows)
            finally:
                await reader.source.close()

        (values, stamps), (sdk_values, sdk_stamps) = asyncio.run(both())
    np.testing.assert_array_equal(values, sdk_values)
    np.testing.assert_array_equal(stamps, sdk_stamps)
    assert values[1, 0] == 2**31 - 1 and values[0, 1] == -(2**40) and values[1, 3] == -2.5e300
    assert np.isnan(values[5]).all() and np.isnan(values[2, 3]) and np.isnan(values[3, 2])
