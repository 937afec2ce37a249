"""The data every benchmark reads: a private feature repo, a private Redis, one artifact copy.

Both stacks (Berth and the baseline) and the component benchmarks read the same Redis with the
same materialized rows, so their numbers compare. Nothing outside ``root`` is written: the
feature repo's definitions are copied from the project, the data is generated fresh (the
newest hourly stats are then inside their 2 h TTL, as in production) or copied from
``--data``, and the artifact is copied.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from berth.stack import RedisServer

DATA_FILES = (
    "driver_hourly_stats.parquet",
    "driver_profile.parquet",
    "customer_profile.parquet",
    "rides.parquet",
)


@dataclass
class Workspace:
    """``root/repo`` (Feast repo + data), ``root/artifact``, a redis-server; ``close()`` ends it."""

    root: Path
    artifact_src: Path
    data_src: Path | None = None
    redis: RedisServer = field(default_factory=RedisServer)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def artifact(self) -> Path:
        return self.root / "artifact"

    @property
    def build_dir(self) -> Path | None:
        """``<artifact>.build`` beside the source artifact (model.pt for torch), if present."""
        candidate = self.artifact_src.parent / (self.artifact_src.name + ".build")
        return candidate if (candidate / "model.pt").exists() else None

    @property
    def redis_env(self) -> dict[str, str]:
        return {"REDIS_CONNECTION_STRING": self.redis.connection_string}

    def entity_ranges(self) -> dict[str, tuple[int, int]]:
        """First and last id of each entity in the data (requests draw from these)."""
        import pandas as pd

        data = self.repo / "data"
        drivers = pd.read_parquet(data / "driver_profile.parquet", columns=["driver_id"])
        customers = pd.read_parquet(data / "customer_profile.parquet", columns=["customer_id"])
        return {
            "drivers": (int(drivers.driver_id.min()), int(drivers.driver_id.max())),
            "customers": (int(customers.customer_id.min()), int(customers.customer_id.max())),
        }

    def start(self) -> Workspace:
        from berth.featurerepo import copy_repo

        if not RedisServer.available():
            raise RuntimeError("redis-server not found: apt-get install redis-server")
        self.root.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        if not (self.artifact_src / "metadata.json").exists():
            raise FileNotFoundError(f"{self.artifact_src}: no artifact (run `berth build`)")
        shutil.copytree(self.artifact_src, self.artifact, dirs_exist_ok=True)
        copy_repo(self.repo)
        self._data()
        self.redis.start()
        self.timings["prepare_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        self._materialize()
        self.timings["materialize_s"] = round(time.perf_counter() - started, 2)
        return self

    def _data(self) -> None:
        data = self.repo / "data"
        data.mkdir(parents=True, exist_ok=True)
        if self.data_src is not None:
            for name in DATA_FILES:
                if (self.data_src / name).exists():
                    shutil.copy2(self.data_src / name, data / name)
            return
        from berth.datagen import generate

        generate(data)

    def _materialize(self) -> None:
        """``feast apply`` + every entity's latest row into this Redis (Feast's output: a log)."""
        from berth.featurerepo import materialize_latest

        os.environ.update(self.redis_env)
        log_path = self.root / "materialize.log"
        with (
            log_path.open("w") as log,
            warnings.catch_warnings(),
            contextlib.redirect_stdout(log),
            contextlib.redirect_stderr(log),
        ):
            warnings.simplefilter("ignore")
            materialize_latest(self.repo)

    def close(self) -> None:
        self.redis.close()
