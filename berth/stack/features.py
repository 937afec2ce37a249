"""Features online for a local stack: ``feast apply`` + every entity's latest row."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any
from unittest import mock


def materialize(
    repo: Path,
    connection_string: str | None = None,
    store_yaml: Path | None = None,
    log_path: Path | None = None,
) -> Any:
    """Apply ``repo`` and put every entity's latest row into the online store of ``store_yaml``
    (the repo's default ``feature_store.yaml`` if ``None``); its ``FeatureStore``.

    ``connection_string``: the Redis (Cluster) address, as ``REDIS_CONNECTION_STRING`` for this
    call only. ``log_path``: where Feast's own output and warnings go (else they are shown).
    """
    from berth.featurerepo import materialize_latest

    env = {"REDIS_CONNECTION_STRING": connection_string} if connection_string else {}
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, env))
        if log_path is not None:
            log = stack.enter_context(log_path.open("w"))
            stack.enter_context(warnings.catch_warnings())
            stack.enter_context(contextlib.redirect_stdout(log))
            stack.enter_context(contextlib.redirect_stderr(log))
            warnings.simplefilter("ignore")
        return materialize_latest(repo, store_yaml)
