"""The error every rollout step raises; ``berth``'s CLI prints its message and exits 1."""

from __future__ import annotations

from berth.errors import BerthError


class RolloutError(BerthError):
    """A rollout step cannot go on; the message says why and what to do."""

    status = 400

    @property
    def client_message(self) -> str:
        return self.message
