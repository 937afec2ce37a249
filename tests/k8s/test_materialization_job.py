"""The materialization CronJob, rendered with the chart's defaults, run for real: its rendered
command and ConfigMap executed locally against a real redis-server, with the image's paths
(``/app/...``, ``/etc/berth/...``, the secret files, ``/tmp``) mapped into a temporary root that
is built by the transformer stage's own Dockerfile steps."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from berth.kube.chart import render_objects
from berth.stack import RedisServer
from tests.k8s.test_dockerfile import stages

pytestmark = [pytest.mark.k8s, pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
IMAGE_PATHS = re.compile(r"(?<![\w.])(/app/|/etc/berth/|/var/run/secrets/|/tmp/)")
Obj = dict[str, Any]


def in_root(root: Path, text: str) -> str:
    """``text`` with the image's absolute paths moved under ``root``."""
    return IMAGE_PATHS.sub(lambda m: f"{root}{m.group(1)}", text)


def _env(root: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "FEAST_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **{k: in_root(root, v) for k, v in extra.items()}}


def build_image_repo(root: Path) -> None:
    """The transformer image's /app/feature_repo: its COPY of the repo files and its RUN steps
    (demo data, `feast apply`), taken from the Dockerfile and run under ``root``."""
    steps = stages()["transformer"]
    copies = [s for s in steps if s.startswith("COPY feature_repo/")]
    assert len(copies) == 1, copies
    *sources, dest = shlex.split(copies[0])[1:]
    target = Path(in_root(root, dest))
    target.mkdir(parents=True)
    for source in sources:
        (target / Path(source).name).write_bytes((ROOT / source).read_bytes())
    runs = [s.removeprefix("RUN ") for s in steps if s.startswith("RUN ")]
    assert runs, "the transformer stage has no RUN step"
    for command in runs:
        out = subprocess.run(
            ["/bin/sh", "-ec", in_root(root, command)],
            env=_env(root, {"HOME": "/tmp", "FEAST_USAGE": "False"}),
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, f"{command}\n{out.stderr[-3000:]}"


def mount_empty_dirs(root: Path, pod: Obj) -> None:
    """Each emptyDir volume mount starts empty and hides what the image has at its path."""
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for container in pod["containers"]:
        for mount in container.get("volumeMounts") or []:
            if "emptyDir" in volumes[mount["name"]]:
                path = Path(in_root(root, mount["mountPath"].rstrip("/") + "/"))
                if path.exists():
                    shutil.rmtree(path)
                path.mkdir(parents=True)


def test_default_cronjob_materializes_into_redis(tmp_path: Path) -> None:
    if not RedisServer.available():
        pytest.skip("redis-server binary not found (apt-get install redis-server)")
    import redis

    objects = render_objects({})
    cronjob = next(o for o in objects if o["kind"] == "CronJob")
    config = next(
        o for o in objects if o["kind"] == "ConfigMap" and "feature_store.yaml" in o["data"]
    )
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    root = tmp_path / "root"
    (root / "tmp").mkdir(parents=True)
    build_image_repo(root)
    mount_empty_dirs(root, pod)
    # The ConfigMap and the Redis Secret where the pod mounts them.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    store = Path(in_root(root, mounts["feature-store"] + "/"))
    store.mkdir(parents=True)
    (store / "feature_store.yaml").write_text(config["data"]["feature_store.yaml"])
    server = RedisServer().start()
    try:
        secret = Path(in_root(root, mounts["redis"] + "/"))
        secret.mkdir(parents=True)
        (secret / "connection-string").write_text(server.connection_string)
        env = {e["name"]: e["value"] for e in container["env"]}
        command = [*container["command"], in_root(root, container["args"][0])]
        out = subprocess.run(
            command, env=_env(root, env), capture_output=True, text=True, check=False, timeout=300
        )
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
        client = redis.Redis(host="127.0.0.1", port=server.port)
        keys = client.dbsize()
        # One hash per entity key: 120 drivers and 400 customers of the image's demo data.
        assert keys >= 120 + 400, keys
    finally:
        server.close()
    # The image's repo was only read; Feast wrote into the copy under /tmp.
    assert (root / "tmp" / "feature_repo" / "data" / "registry.db").is_file()
