"""Where a server's CPU goes under load: py-spy samples, grouped by library and function.

``py-spy`` is optional (``pip install py-spy``, or ``BENCH_PY_SPY=/path/to/py-spy``): without
it the profile section says so and the numbers are unaffected. Samples are taken without
pausing the process (``--nonblocking``) and only while it is on CPU (idle threads dropped).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# Leaf frame file path -> the library that spent the time (first match wins).
GROUPS = (
    ("feast", "/feast/"),
    ("protobuf", "/google/protobuf/"),
    ("grpc", "/grpc/"),
    ("aiohttp", "/aiohttp/"),
    ("httpx/httpcore", "/httpx/|/httpcore/|/anyio/|/sniffio/"),
    ("uvicorn/starlette/fastapi", "/uvicorn/|/starlette/|/fastapi/"),
    ("pydantic", "/pydantic"),
    ("kserve", "/kserve/"),
    ("berth", "/berth_transformer/|/berth_predictor/|/berth/"),
    ("benchmarks (baseline)", "/benchmarks/"),
    ("onnxruntime", "/onnxruntime/"),
    ("numpy/pandas/pyarrow", "/numpy/|/pandas/|/pyarrow/"),
    ("redis-py", "/redis/"),
    ("logging/structlog", "/logging/|/structlog/"),
    ("prometheus", "/prometheus_client/"),
    ("json (orjson/json)", "/json/|orjson"),
    ("ssl/socket/selectors", "/ssl\\.py|/socket\\.py|/selectors\\.py"),
    ("asyncio/uvloop", "/asyncio/|uvloop"),
    ("typeguard/typing", "/typeguard/|/typing"),
)
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def find_py_spy() -> str | None:
    """``BENCH_PY_SPY``, else py-spy beside this Python (a venv run without activating it),
    else on ``PATH``."""
    beside = shutil.which("py-spy", path=str(Path(sys.executable).parent))
    return os.environ.get("BENCH_PY_SPY") or beside or shutil.which("py-spy")


@dataclass
class Recording:
    """A py-spy process sampling one server; :meth:`wait` returns the collapsed-stacks file."""

    name: str
    proc: subprocess.Popen[bytes]
    path: Path

    def wait(self, timeout_s: float) -> Path | None:
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        return self.path if self.path.exists() and self.path.stat().st_size else None


def start_recording(
    py_spy: str, name: str, pid: int, seconds: float, out_dir: Path, rate_hz: int = 250
) -> Recording:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.collapsed.txt"
    proc = subprocess.Popen(
        [
            py_spy,
            "record",
            *("--pid", str(pid)),
            *("--duration", str(max(1, round(seconds)))),
            *("--rate", str(rate_hz)),
            "--nonblocking",
            *("--format", "raw", "--output", str(path)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Recording(name, proc, path)


def _frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for frame in stack.split(";"):
        match = _FRAME.match(frame.strip())
        if match:
            out.append((match.group("func"), match.group("file") or ""))
        else:
            out.append((frame.strip(), ""))
    return out


def group_of(path: str) -> str:
    path = "/" + path  # py-spy names files relative to site-packages
    for name, pattern in GROUPS:
        if re.search(pattern, path):
            return name
    return "other (python/native)"


def summarize(path: Path, top: int = 12) -> dict[str, object]:
    """Self time by library, and the functions with the most inclusive time (in % of samples)."""
    by_group: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in _frames(stack) if not f[0].startswith("thread (")]
        if not frames:
            continue
        total += count
        func, file = frames[-1]
        by_group[group_of(file)] += count
        leaf[f"{func} ({_short(file)})"] += count
        for name in {f"{f} ({_short(p)})" for f, p in frames}:
            inclusive[name] += count

    def pct(counter: Counter[str], n: int) -> list[list[object]]:
        return [[k, round(100 * v / total, 1)] for k, v in counter.most_common(n)]

    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "self_by_library_pct": pct(by_group, len(by_group)),
        "self_by_function_pct": pct(leaf, top),
        "inclusive_pct": pct(inclusive, top * 2),
    }


def _short(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path
