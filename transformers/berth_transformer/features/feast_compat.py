"""Every Feast internal Berth relies on, fenced in one module (Feast pinned in constraints.txt).

Each function below wraps one ``_``-prefixed Feast attribute; :data:`INTERNALS` names them all,
and ``tests/unit/test_feast_compat.py`` checks each against the installed Feast, failing with
the internal's name when an upgrade moves or reshapes it. Run that test whenever the pin is
bumped. Nothing outside this module touches a Feast internal.

``feast`` is imported inside the functions: it is slow to import and pulls torch in when torch
is installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.infra.online_stores.redis import RedisOnlineStore

# (module or class path, attribute): what this module calls, for the compat test.
INTERNALS: tuple[tuple[str, str], ...] = (
    ("feast.feature_store.FeatureStore", "_get_provider"),
    ("feast.infra.online_stores.redis", "_versioned_fv_name"),
    ("feast.infra.online_stores.redis.RedisOnlineStore", "_generate_hset_keys_for_features"),
    ("feast.infra.online_stores.redis.RedisOnlineStore", "_generate_redis_keys_for_entities"),
    ("feast.infra.online_stores.redis.RedisOnlineStore", "_parse_connection_string"),
    ("feast.infra.online_stores.redis.RedisOnlineStore", "_get_client_async"),
    ("feast.infra.online_stores.helpers", "_mmh3"),
)


def online_store(store: FeatureStore) -> Any:
    """The store's online store object (``FeatureStore._get_provider().online_store``)."""
    return store._get_provider().online_store


def async_online_read(store: FeatureStore) -> bool:
    """Whether the store's provider reads the online store asynchronously."""
    return bool(store._get_provider().async_supported.online.read)


def versioned_view_name(view: Any, store: FeatureStore) -> str:
    """The name Feast's Redis store files ``view`` under (``_versioned_fv_name``)."""
    from feast.infra.online_stores.redis import _versioned_fv_name

    name: str = _versioned_fv_name(view, store.config)
    return name


def hset_field(online: RedisOnlineStore, view: Any, feature: str, fv_name: str) -> bytes:
    """The hash field holding ``feature`` of ``view`` (``_generate_hset_keys_for_features``)."""
    _, keys = online._generate_hset_keys_for_features(view, [feature], fv_name_override=fv_name)
    key = keys[0]
    return key if isinstance(key, bytes) else key.encode()


def mmh3_field(view: str, feature: str) -> bytes:
    """The hash field of ``<view>:<feature>`` for an unversioned view (``helpers._mmh3``)."""
    from feast.infra.online_stores.helpers import _mmh3

    field: bytes = _mmh3(f"{view}:{feature}")
    return field


def redis_key(online: RedisOnlineStore, store: FeatureStore, entity_key: Any) -> bytes:
    """The Redis key of one ``EntityKey`` proto (``_generate_redis_keys_for_entities``)."""
    key: bytes = online._generate_redis_keys_for_entities(store.config, [entity_key])[0]
    return key


def parse_connection_string(connection_string: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Feast's parse of a Redis connection string: startup nodes and redis-py keyword arguments
    (``RedisOnlineStore._parse_connection_string``)."""
    from feast.infra.online_stores.redis import RedisOnlineStore

    nodes, params = RedisOnlineStore._parse_connection_string(connection_string)
    return nodes, params


async def async_redis_client(online: RedisOnlineStore, store: FeatureStore) -> Any:
    """The redis-py async client Feast's Redis store reads with, created in the running event
    loop on first use (``RedisOnlineStore._get_client_async``)."""
    return await online._get_client_async(store.config.online_store)
