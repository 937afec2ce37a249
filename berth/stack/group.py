"""Server processes of one local stack: started in order, waited for, stopped in reverse."""

from __future__ import annotations

from pathlib import Path

from berth.stack.process import ServerProcess

READY_TIMEOUT_S = 180.0


class NotReady(RuntimeError):
    """A server of the stack exited or did not get ready; the message ends with its log tail."""

    def __init__(self, role: str, proc: ServerProcess, lines: int = 15) -> None:
        tail = "\n".join(proc.log().splitlines()[-lines:])
        super().__init__(f"{role} did not start; last lines of {proc.log_path}:\n{tail}")
        self.role = role


class Stack:
    """Named :class:`ServerProcess` children (``predictor``, ``transformer``, ``canary`` ...).

    :meth:`start` starts one and remembers it under its role; :meth:`wait_ready` polls every
    one (in start order) until ready; :meth:`stop` stops them in reverse, also after a failed
    start (use it as a context manager).
    """

    def __init__(self, logs: Path | None = None) -> None:
        self.logs = logs  # where :meth:`log_path` puts ``<role>.log``
        self.procs: dict[str, ServerProcess] = {}

    def log_path(self, role: str) -> Path | None:
        if self.logs is None:
            return None
        self.logs.mkdir(parents=True, exist_ok=True)
        return self.logs / f"{role}.log"

    def start(self, role: str, proc: ServerProcess) -> ServerProcess:
        """Start ``proc`` as ``role`` (a role started twice replaces the first, stopped)."""
        if role in self.procs:
            self.procs.pop(role).stop()
        self.procs[role] = proc.start()
        return proc

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S, *roles: str) -> Stack:
        """Until every process (or those of ``roles``) answers ready; :class:`NotReady` names
        the first that exits or times out."""
        for role in roles or tuple(self.procs):
            proc = self.procs[role]
            try:
                proc.wait_ready(timeout_s)
            except (RuntimeError, TimeoutError):
                raise NotReady(role, proc) from None
        return self

    def get(self, role: str) -> ServerProcess | None:
        return self.procs.get(role)

    def failed(self) -> str | None:
        """The role of a process that exited on its own, if any."""
        for role, proc in self.procs.items():
            if proc.proc is not None and proc.proc.poll() is not None:
                return role
        return None

    def pids(self) -> dict[str, int]:
        return {r: p.proc.pid for r, p in self.procs.items() if p.proc is not None}

    def stop(self) -> None:
        """SIGTERM (then SIGKILL) every process, the last started first."""
        for role in reversed(list(self.procs)):
            self.procs.pop(role).stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
