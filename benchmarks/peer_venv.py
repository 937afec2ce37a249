"""Private virtualenvs for the peers and tools whose pins clash with the project's.

MLServer, PyTriton and ``onnxruntime-gpu`` each get a venv of their own under
``benchmarks/.venvs/<name>`` (git-ignored; ``BENCH_VENVS`` moves it), made on first use with
pip from the package index and reused while its requirements are unchanged. The project's own
venv and pins are never touched.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MARKER = "berth-requirements.txt"
INSTALL_TIMEOUT_S = 1200


class PeerUnavailable(RuntimeError):
    """A peer's venv could not be made or its interpreter is missing; the message says why."""


@dataclass(frozen=True)
class PeerEnv:
    name: str
    requirements: tuple[str, ...]
    python: str = ""  # "3.12": that minor version (PATH, then pyenv); "": this interpreter


ENVS = {
    "mlserver": PeerEnv("mlserver", ("mlserver==1.7.1", "onnxruntime==1.32.0")),
    # PyTriton 0.7.0's Python stub fails on this project's Python 3.11.7 (AttributeError:
    # '_thread.RLock' object has no attribute '_recursion_count'); on 3.12 it runs.
    "pytriton": PeerEnv(
        "pytriton", ("nvidia-pytriton==0.7.0", "onnxruntime==1.32.0"), python="3.12"
    ),
    "onnxruntime-gpu": PeerEnv(
        "onnxruntime-gpu", ("onnxruntime-gpu[cuda,cudnn]==1.31.1", "numpy==2.4.6")
    ),
}


def venvs_root() -> Path:
    return Path(os.environ.get("BENCH_VENVS", PROJECT_ROOT / "benchmarks" / ".venvs"))


def find_python(version: str) -> str:
    """An interpreter of ``version`` (``"3.12"``): on PATH, else pyenv's; raise if none."""
    if not version:
        return sys.executable
    found = shutil.which(f"python{version}")
    pyenv = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    if found and Path(found).parent == Path(pyenv) / "shims":
        found = None  # a pyenv shim fails unless that version is selected: take the real one
    candidates = sorted(glob.glob(f"{pyenv}/versions/{version}.*/bin/python{version}"))
    for path in [found, *reversed(candidates)]:
        if path and Path(path).exists():
            return os.path.realpath(path)
    raise PeerUnavailable(f"no Python {version} found (PATH, {pyenv}/versions)")


def libdir(python: str) -> str:
    """The interpreter's LIBDIR (its libpython), for programs that embed it (Triton's stub)."""
    out = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR') or '')"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return out.stdout.strip() or str(sysconfig.get_config_var("LIBDIR") or "")


def ensure(name: str) -> Path:
    """The venv of peer ``name`` (its directory), made or refreshed when needed."""
    env = ENVS[name]
    root = venvs_root() / name
    python = root / "bin" / "python"
    marker = root / MARKER
    wanted = "\n".join(env.requirements) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return root
    base = find_python(env.python)
    root.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [base, "-m", "venv", "--clear", str(root)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         *env.requirements],
    ]  # fmt: skip
    for cmd in steps:
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise PeerUnavailable(f"{name}: `{' '.join(cmd[:4])}` timed out") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise PeerUnavailable(f"{name}: `{' '.join(cmd[:4])}` failed: {' | '.join(tail)}")
    marker.write_text(wanted)
    return root
