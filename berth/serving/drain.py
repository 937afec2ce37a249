"""Graceful shutdown for KServe's ``ModelServer`` (one process, REST + gRPC).

KServe 0.21's SIGTERM path stops uvicorn at once (uvicorn installs its own handler while it
serves) and readiness never drops. Here SIGTERM (or SIGINT) starts a drain instead:

1. readiness answers 503 at once (Kubernetes stops sending new traffic);
2. after ``delay_s`` (endpoint propagation; 0 locally) new work gets 503 + ``Retry-After``,
   and traffic is moved away: the gRPC server stops with a grace (it sends GOAWAY, so
   clients open a new connection, to another replica, for their next call; the RPCs it
   holds finish within the grace), and REST keep-alive connections idle for ``QUIET_S`` are
   closed;
3. in-flight requests finish (bounded by what is left of ``grace_s``);
4. background work (the transformer's shadow queue) is given what is left of the grace;
5. the refusals go on until no request has arrived for ``QUIET_S`` (each one closes its
   connection): uvicorn's stop closes idle keep-alive connections and the accept backlog, and
   a request the server had not read yet would be reset, not answered;
6. uvicorn and the gRPC server stop; the process exits before ``grace_s`` has passed. A
   watchdog holds that bound whatever the shutdown does: at ``grace_s`` - ``EXIT_MARGIN_S``
   after the signal the process exits (status 1 when the drain had not finished).

A second signal exits at once. ``grace_s`` should stay a few seconds under the pod's
``terminationGracePeriodSeconds`` (the chart's 30 s -> 25 s).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

import kserve

from berth.observability import get_logger
from berth.serving import kserve_compat as compat
from berth.serving.guard import Guard

log = get_logger(__name__)

QUIET_S = 0.25  # no request for this long: nothing is left unread on a socket
EXIT_MARGIN_S = 0.3  # the watchdog exits this long before the grace is over


class DrainingModelServer(kserve.ModelServer):  # type: ignore[misc]
    """``kserve.ModelServer`` whose SIGTERM drains through ``guard`` before stopping."""

    def __init__(
        self,
        guard: Guard,
        grace_s: float,
        delay_s: float = 0.0,
        on_idle: Callable[[float], Awaitable[None]] | None = None,
        http_protocol: type | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(grace_period=max(1, int(grace_s)), **kwargs)
        self.guard = guard
        self.on_idle = on_idle  # background work to finish once idle, given the time left
        self.http_protocol = http_protocol  # uvicorn's protocol class (berth.serving.http_limits)
        self.grace_s = grace_s
        self.delay_s = min(delay_s, grace_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self._grpc_stop: asyncio.Task[None] | None = None
        self._drained = False

    async def serve_until_drained(self) -> None:
        """Run the servers (``self.servers``) with the drain as their SIGTERM."""
        self._loop = asyncio.get_running_loop()
        rest = compat.rest_server_of(self)
        if rest is not None and self.http_protocol is not None:
            rest.config.http = self.http_protocol  # read when uvicorn starts
        if rest is not None:
            # uvicorn installs ``handle_exit`` as its signal handler while it serves
            compat.uvicorn_of(rest).handle_exit = self._on_signal
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        await asyncio.gather(*self.servers)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._begin, sig)

    def _begin(self, sig: int) -> None:
        if self._drain_task is not None:
            log.warning("second signal: exiting now", signal=signal.Signals(sig).name)
            self._stop_servers(force=True)
            return
        log.info(
            "draining",
            signal=signal.Signals(sig).name,
            inflight=self.guard.inflight,
            grace_s=self.grace_s,
        )
        self.guard.draining = True
        watchdog = threading.Timer(max(0.1, self.grace_s - EXIT_MARGIN_S), self._exit_now)
        watchdog.daemon = True
        watchdog.start()
        self._drain_task = asyncio.get_running_loop().create_task(self._drain())

    def _exit_now(self) -> None:
        """The grace is (almost) over and the process is still here: leave, whatever runs."""
        log.warning("exit at the grace bound", grace_s=self.grace_s, drained=self._drained)
        os._exit(0 if self._drained else 1)

    def _move_traffic_away(self, grace_s: float) -> None:
        """GOAWAY on every gRPC connection (new calls go elsewhere, held ones finish within
        ``grace_s``); REST keep-alive connections with nothing on them closed."""
        grpc = compat.grpc_server_of(self)
        grpc_server = compat.aio_server_of(grpc) if grpc is not None else None
        if grpc_server is not None:
            self._grpc_stop = asyncio.get_running_loop().create_task(grpc_server.stop(grace_s))
        closed = 0
        rest = compat.rest_server_of(self)
        if rest is not None:
            for conn in list(compat.uvicorn_of(rest).server_state.connections):
                close_if_idle = getattr(conn, "close_if_idle", None)
                closed += bool(close_if_idle is not None and close_if_idle(QUIET_S))
        log.info("moving traffic away", grpc_goaway=grpc_server is not None, idle_closed=closed)

    async def _drain(self) -> None:
        started = time.monotonic()
        await asyncio.sleep(self.delay_s)
        self.guard.accepting = False
        budget = max(0.5, self.grace_s - (time.monotonic() - started) - 1.0)
        self._move_traffic_away(budget)
        idle = await self.guard.wait_idle(budget)
        left = self.grace_s - (time.monotonic() - started) - 1.0
        if idle and self.on_idle is not None and left > 0:
            try:
                await asyncio.wait_for(self.on_idle(left), left)
            except Exception as exc:  # background work must never block the exit
                log.warning("background work unfinished at exit", error=repr(exc))
        left = self.grace_s - (time.monotonic() - started) - 1.0
        quiet = idle and await self.guard.wait_quiet(QUIET_S, max(0.0, left))
        log.info(
            "drained" if idle else "drain budget spent",
            inflight=self.guard.inflight,
            quiet=quiet,
            seconds=round(time.monotonic() - started, 3),
        )
        self._drained = idle
        self._stop_servers(force=not idle)
        if self._grpc_stop is not None:
            left = self.grace_s - (time.monotonic() - started) - EXIT_MARGIN_S - 0.2
            await asyncio.wait({self._grpc_stop}, timeout=max(0.0, left))

    def _stop_servers(self, force: bool) -> None:
        rest, grpc = compat.rest_server_of(self), compat.grpc_server_of(self)
        if rest is not None:
            server = compat.uvicorn_of(rest)
            server.should_exit = True
            server.force_exit = force
        aio_server = compat.aio_server_of(grpc) if grpc is not None else None
        if force and aio_server is not None:
            asyncio.get_running_loop().create_task(aio_server.stop(grace=None))
