"""One toolkit for local serving stacks (``berth up``, the benchmarks, the tests).

Process specs for the containers (:func:`predictor_process`, :func:`transformer_process`,
:func:`feature_env`), features online (:func:`materialize`), a private :class:`RedisServer` /
:class:`RedisClusterServers` / :class:`PrometheusServer`, free loopback :class:`Ports`,
:class:`Stack`, which starts named :class:`ServerProcess` children, waits until they are ready
and stops them in reverse, and :class:`ServingPair`, a predictor and a transformer as one.
Everything binds 127.0.0.1.
"""

from berth.stack.artifacts import repackaged_artifact
from berth.stack.features import materialize
from berth.stack.group import READY_TIMEOUT_S, NotReady, Stack
from berth.stack.pair import ServingPair
from berth.stack.ports import LOOPBACK, Ports, free_port, port_is_free
from berth.stack.process import ServerProcess
from berth.stack.prometheus import PrometheusServer
from berth.stack.redis_cluster import RedisClusterServers
from berth.stack.redis_server import RedisServer, TlsFiles
from berth.stack.roles import feature_env, predictor_process, transformer_process

__all__ = [
    "LOOPBACK",
    "READY_TIMEOUT_S",
    "NotReady",
    "Ports",
    "PrometheusServer",
    "RedisClusterServers",
    "RedisServer",
    "ServerProcess",
    "ServingPair",
    "Stack",
    "TlsFiles",
    "feature_env",
    "free_port",
    "materialize",
    "port_is_free",
    "predictor_process",
    "repackaged_artifact",
    "transformer_process",
]
