"""A real Redis Cluster on loopback for tests, demos and benchmarks.

Six ``redis-server --cluster-enabled yes`` processes (three masters, one replica each), joined
with ``redis-cli --cluster create --cluster-replicas 1``, as Redis's own cluster tutorial and
redis-py's test setup do. ``cluster-node-timeout`` is short (1 s by default) so a killed
master's replica takes over in seconds. TLS and an ACL user work as on
:class:`~berth.stack.redis_server.RedisServer` (the bus and replication then use them too).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time

from berth.stack.ports import LOOPBACK, claim, free_port, port_is_free
from berth.stack.redis_server import RedisServer, TlsFiles

BUS_OFFSET = 10_000  # a node's cluster bus listens on its port + 10000
MAX_PORT = 65_535 - BUS_OFFSET


def cluster_port(taken: set[int]) -> int:
    """A free loopback port whose bus port (+10000) is free too, and that is neither a taken
    node's port nor its bus port (nor has a taken node's port as its bus port)."""
    while True:
        port = free_port()
        clash = {port, port + BUS_OFFSET, port - BUS_OFFSET} & taken
        if port <= MAX_PORT and not clash and port_is_free(port + BUS_OFFSET):
            claim(port + BUS_OFFSET)
            return port


class RedisClusterServers:
    """``nodes`` redis-servers joined into one cluster with ``replicas`` replicas per master."""

    def __init__(
        self,
        nodes: int = 6,
        replicas: int = 1,
        node_timeout_ms: int = 1000,
        tls: TlsFiles | None = None,
        user: tuple[str, str] | None = None,
    ) -> None:
        self.replicas = replicas
        self.tls = tls
        self.user = user
        ports: set[int] = set()
        for _ in range(nodes):
            ports.add(cluster_port(ports))
        args = ["--cluster-enabled", "yes", "--cluster-node-timeout", str(node_timeout_ms)]
        args += ["--cluster-config-file", "nodes.conf", "--repl-diskless-sync-delay", "0"]
        if tls:
            args += ["--tls-cluster", "yes", "--tls-replication", "yes"]
        if user:
            args += ["--masteruser", user[0], "--masterauth", user[1]]
        self.servers = {p: RedisServer(p, tls=tls, user=user, args=args) for p in sorted(ports)}

    @staticmethod
    def available() -> bool:
        return RedisServer.available() and shutil.which("redis-cli") is not None

    @property
    def ports(self) -> list[int]:
        return list(self.servers)

    @property
    def connection_string(self) -> str:
        """Feast's ``host:port,host:port,...[,options]`` form (every node a startup node)."""
        first = next(iter(self.servers.values())).connection_string.split(",", 1)
        nodes = ",".join(f"{LOOPBACK}:{p}" for p in self.servers)
        return nodes + ("," + first[1] if len(first) > 1 else "")

    def cli(self, *args: str, timeout_s: float = 30.0) -> str:
        """``redis-cli`` with this cluster's TLS/ACL options; its stdout."""
        command = ["redis-cli"]
        if self.tls:
            command += ["--tls", "--cacert", str(self.tls.cert)]
        if self.user:
            command += ["--user", self.user[0], "--pass", self.user[1], "--no-auth-warning"]
        done = subprocess.run(
            [*command, *args], capture_output=True, text=True, timeout=timeout_s, check=True
        )
        return done.stdout

    def start(self, timeout_s: float = 60.0) -> RedisClusterServers:
        try:
            for server in self.servers.values():
                server.start()
            nodes = [f"{LOOPBACK}:{p}" for p in self.servers]
            self.cli(
                "--cluster",
                "create",
                *nodes,
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            )
            self.wait_ok(timeout_s)
            self.wait_synced(timeout_s)
        except BaseException:
            self.close()
            raise
        return self

    def info(self, port: int) -> dict[str, str]:
        """``CLUSTER INFO`` of one node as a map."""
        text = self.cli("-h", LOOPBACK, "-p", str(port), "cluster", "info", timeout_s=5)
        return dict(line.split(":", 1) for line in text.split() if ":" in line)

    def slot_owners(self) -> dict[int, list[tuple[int, int]]]:
        """Port of each live master that owns slots -> its slot ranges, as a live node sees it."""
        for port, server in self.servers.items():
            if server.running:
                text = self.cli("-h", LOOPBACK, "-p", str(port), "cluster", "nodes", timeout_s=5)
                owners: dict[int, list[tuple[int, int]]] = {}
                for f in (line.split() for line in text.splitlines()):
                    if "master" in f[2] and "fail" not in f[2] and len(f) > 8:
                        ranges = [r.split("-") for r in f[8:] if not r.startswith("[")]
                        owners[int(f[1].split("@")[0].rsplit(":", 1)[1])] = [
                            (int(r[0]), int(r[-1])) for r in ranges
                        ]
                return dict(sorted(owners.items()))
        return {}

    def masters(self) -> list[int]:
        """Ports of the live masters that own slots."""
        return list(self.slot_owners())

    def master_of(self, slot: int) -> int:
        """Port of the live master serving ``slot``."""
        return next(
            port
            for port, ranges in self.slot_owners().items()
            if any(low <= slot <= high for low, high in ranges)
        )

    def wait_ok(self, timeout_s: float = 60.0) -> None:
        """Until every live node says ``cluster_state:ok`` with all 16384 slots served."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(subprocess.SubprocessError):
                states = [self.info(p) for p, s in self.servers.items() if s.running]
                if states and all(
                    s.get("cluster_state") == "ok" and s.get("cluster_slots_ok") == "16384"
                    for s in states
                ):
                    return
            time.sleep(0.2)
        raise TimeoutError(f"redis cluster not ok after {timeout_s}s")

    def wait_replaced(self, port: int, timeout_s: float = 60.0) -> float:
        """Until a replica serves the slots of the (killed) master on ``port`` and the cluster is
        ok again; the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout_s
        while port in self.masters():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no replica took over from {port} in {timeout_s}s")
            time.sleep(0.1)
        self.wait_ok(max(1.0, deadline - time.monotonic()))
        return time.monotonic() - started

    def wait_synced(self, timeout_s: float = 60.0) -> None:
        """Until every live replica's link to its master is up (a replica that never synced
        cannot take over)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            links = [
                self.cli("-h", LOOPBACK, "-p", str(p), "info", "replication", timeout_s=5)
                for p, server in self.servers.items()
                if server.running
            ]
            replicas = [text for text in links if "role:slave" in text]
            if len(replicas) >= self.replicas and all(
                "master_link_status:up" in text for text in replicas
            ):
                return
            time.sleep(0.2)
        raise TimeoutError(f"redis cluster replicas not in sync after {timeout_s}s")

    def kill(self, port: int) -> None:
        """SIGKILL one node (a crash, as when its pod dies)."""
        self.servers[port].kill()

    def close(self) -> None:
        for server in self.servers.values():
            server.close()
