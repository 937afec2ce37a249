"""What ``berth build`` is asked to do: its settings, one object for every step."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class BuildConfig:
    repo: Path
    output: Path
    feature_service: str = "driver_ranking_v1"
    name: str = "driver-ranking"
    version: str | None = None
    quantization: str = "static"
    regenerate: bool = False
    data: dict[str, int] = field(default_factory=dict)
    sign_key: Path | None = None  # EC private key (PEM): the package step signs last
    track: bool = True  # log the build as an MLflow run (berth.modelbuild.tracking)
    register: str | None = None  # register the artifact as a version of this model
    storage_uri: str | None = None  # where the artifact is published (the version's tag)

    @property
    def workdir(self) -> Path:
        return self.output.with_name(self.output.name + ".build")
