"""Every Feast internal Berth calls (``berth_transformer.features.feast_compat``), checked against
the installed Feast. Run this first when the Feast pin in constraints.txt moves: a failure names
the internal that moved or changed shape. No Redis needed: Feast builds keys and clients lazily.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mmh3
import pytest

from berth_transformer.features import feast_compat

PROJECT = "compat"


@contextmanager
def internal(name: str) -> Iterator[None]:
    """Turn any failure inside into one that names the Feast internal."""
    try:
        yield
    except (AttributeError, ImportError, TypeError, ValueError, KeyError, IndexError) as exc:
        pytest.fail(f"Feast internal {name} moved or changed: {type(exc).__name__}: {exc}")


def _resolve(path: str) -> Any:
    """``a.b.C`` -> the longest importable module prefix, then attributes."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


@pytest.mark.parametrize(("owner", "attr"), feast_compat.INTERNALS)
def test_every_fenced_internal_exists(owner: str, attr: str) -> None:
    with internal(f"{owner}.{attr}"):
        assert callable(getattr(_resolve(owner), attr))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from feast import FeatureStore, RepoConfig

    root: Path = tmp_path_factory.mktemp("compat")
    config = RepoConfig(
        project=PROJECT,
        registry=str(root / "registry.db"),
        provider="local",
        online_store={"type": "redis", "connection_string": "127.0.0.1:1,db=3"},
        entity_key_serialization_version=3,
    )
    return FeatureStore(config=config)


@pytest.fixture(scope="module")
def view() -> Any:
    from feast import Entity, FeatureView, Field, FileSource
    from feast.types import Float32

    driver = Entity(name="driver", join_keys=["driver_id"])
    source = FileSource(path="unused.parquet", timestamp_field="event_timestamp")
    return FeatureView(
        name="driver_hourly_stats",
        entities=[driver],
        schema=[Field(name="conv_rate", dtype=Float32)],
        source=source,
    )


def _feast_field(key: str) -> bytes:
    """Feast's hash field, computed from its documented definition (murmur3, 4 bytes LE)."""
    return struct.pack("<I", mmh3.hash(key, signed=False))


def test_provider_and_online_store(store: Any) -> None:
    from feast.infra.online_stores.redis import RedisOnlineStore

    with internal("FeatureStore._get_provider"):
        assert isinstance(feast_compat.online_store(store), RedisOnlineStore)
        assert feast_compat.async_online_read(store) is True


def test_view_name_and_hash_fields(store: Any, view: Any) -> None:
    online = feast_compat.online_store(store)
    with internal("feast.infra.online_stores.redis._versioned_fv_name"):
        name = feast_compat.versioned_view_name(view, store)
        assert name == "driver_hourly_stats"
    with internal("RedisOnlineStore._generate_hset_keys_for_features"):
        field = feast_compat.hset_field(online, view, "conv_rate", name)
        assert field == _feast_field("driver_hourly_stats:conv_rate")
    with internal("feast.infra.online_stores.helpers._mmh3"):
        assert feast_compat.mmh3_field(view.name, "conv_rate") == field


def test_entity_redis_key(store: Any) -> None:
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    key = EntityKey(join_keys=["driver_id"], entity_values=[Value(int64_val=1001)])
    online = feast_compat.online_store(store)
    with internal("RedisOnlineStore._generate_redis_keys_for_entities"):
        got = feast_compat.redis_key(online, store, key)
        assert got == serialize_entity_key(key, 3) + PROJECT.encode()


@pytest.mark.parametrize(
    ("connection", "nodes", "params"),
    [
        (
            "redis-0:6379,ssl=true,password=pw,db=2",
            [{"host": "redis-0", "port": "6379"}],
            {"ssl": True, "password": "pw", "db": 2},
        ),
        (
            "a:7000,b:7001,skip_full_coverage_check=true",
            [{"host": "a", "port": "7000"}, {"host": "b", "port": "7001"}],
            {"skip_full_coverage_check": True},
        ),
    ],
)
def test_connection_string(connection: str, nodes: list[Any], params: dict[str, Any]) -> None:
    with internal("RedisOnlineStore._parse_connection_string"):
        assert feast_compat.parse_connection_string(connection) == (nodes, params)


def test_async_client_is_feasts_own_and_lazy(store: Any) -> None:
    import redis.asyncio

    online = feast_compat.online_store(store)

    async def twice() -> tuple[Any, Any]:
        return (
            await feast_compat.async_redis_client(online, store),
            await feast_compat.async_redis_client(online, store),
        )

    with internal("RedisOnlineStore._get_client_async"):
        first, second = asyncio.run(twice())
        assert isinstance(first, redis.asyncio.Redis)
        assert first is second  # Feast keeps one client: the one its SDK reads with
        assert first.connection_pool.connection_kwargs["db"] == 3


def test_internals_table_lists_every_internal_the_module_uses() -> None:
    """Each ``_``-prefixed name feast_compat reads off Feast is in ``INTERNALS``."""
    tree = ast.parse(Path(feast_compat.__file__).read_text())
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("feast"):
            used |= {alias.name for alias in node.names}
    private = {name for name in used if name.startswith("_") and not name.startswith("__")}
    assert private == {attr for _, attr in feast_compat.INTERNALS}
