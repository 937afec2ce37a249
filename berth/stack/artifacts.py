"""Artifact copies for local stacks."""

from __future__ import annotations

import shutil
from pathlib import Path


def repackaged_artifact(source: Path, target: Path, version: str) -> Path:
    """A copy of the artifact at ``source`` under another ``version`` (same model bytes,
    metadata re-signed): an A/A canary, identical to the primary but for its version label."""
    from berth.artifact import read_metadata, write_metadata

    shutil.copytree(source, target)
    write_metadata(target, read_metadata(target).model_copy(update={"version": version}))
    return target
