"""Local mode: ``berth up`` and ``berth demo`` run the containers' entrypoints on loopback.

``berth up`` builds the artifact if absent (``berth build``), applies the Feast repo,
materializes its features into an online store -- the Redis at ``--redis URL`` or the Redis
Cluster at ``--redis-cluster NODES`` (Feast's connection string); else a private
``redis-server`` on a free port when the binary exists; else Feast's SQLite store, saying so --
starts ``python -m berth_predictor`` and ``python -m berth_transformer`` as child processes,
waits until both are ready, prints how to call them and stops everything on Ctrl-C / SIGTERM.
``berth demo`` does the same, sends real ranking requests, prints the ranked drivers and exits.

The feature repo defaults to the project's ``feature_repo/`` with its data in
``feature_repo/data/`` (gitignored), the one ``berth build`` uses; logs go to ``.berth/logs/``.
feast is imported only by the commands (it takes seconds to import).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from berth.cli import DEFAULT_ARTIFACT, add_data_arguments
from berth.errors import BerthError
from berth.loadtest import grpc_request, v2_inputs
from berth.testing import (
    LOOPBACK,
    RedisServer,
    ServerProcess,
    free_port,
    predictor_process,
    transformer_process,
)

STATE_DIR = Path(".berth")
# Every local server on loopback only (KServe binds every interface), with gRPC reflection.
LOCAL_ENV = {
    role: {f"BERTH_{role}_LISTEN_HOST": LOOPBACK, f"BERTH_{role}_GRPC_REFLECTION": "true"}
    for role in ("PREDICTOR", "TRANSFORMER")
}
READY_TIMEOUT_S = 180.0
SHADOW_NICE = 10  # the shadow predictor's niceness in local mode


class LocalModeError(BerthError):
    """Local mode could not start (the message says what to do)."""


@dataclass(frozen=True)
class Endpoints:
    model: str
    version: str
    feature_service: str
    http: str
    grpc: str
    predictor_http: str
    predictor_grpc: str
    online_store: str
    canary: str | None = None  # the canary predictor's host:port (transformer protocol)
    shadow: str | None = None  # the shadow predictor's host:port


@dataclass
class LocalStack:
    """The processes of local mode, started in order and stopped in reverse."""

    artifact: Path
    repo: Path
    port: int
    grpc_port: int
    redis_url: str | None = None
    redis_cluster: str | None = None  # Feast's "host:port,host:port[,password=..,ssl=true]"
    online_store: str | None = None  # "sqlite" forces the embedded store
    predictor_protocol: str = "v2"
    data_args: list[str] = field(default_factory=list)
    canary: Path | None = None  # a second artifact (same FeatureService) for a canary
    canary_percent: float = 0.0
    canary_env: dict[str, str] = field(default_factory=dict)  # extra env of the canary only
    shadow: Path | None = None  # an artifact for the shadow predictor
    build: bool = False  # build a missing artifact that is not the default one
    logs: Path = STATE_DIR / "logs"
    echo: Callable[[str], None] = print
    _redis: RedisServer | None = None
    _procs: list[ServerProcess] = field(default_factory=list)

    def start(self) -> Endpoints:
        """Build (if needed), materialize, start predictor and transformer, wait for both."""
        for port in (self.port, self.grpc_port):
            _check_port_free(port)
        meta = self._ensure_artifact()
        self.logs.mkdir(parents=True, exist_ok=True)
        predictor_http, predictor_grpc = free_port(), free_port()
        predictor = self._spawn(
            predictor_process(
                meta.name,
                self.artifact,
                (predictor_http, predictor_grpc),
                env=LOCAL_ENV["PREDICTOR"],
                log_path=self.logs / "predictor.log",
            )
        )
        extra = self._extra_predictors(meta.name)
        yaml_file, store_env, store_label = self._online_store()
        self._materialize(yaml_file, store_env)
        predictor_host = predictor_grpc if self.predictor_protocol == "grpc-v2" else predictor_http
        env = {
            **LOCAL_ENV["TRANSFORMER"],
            **store_env,
            "BERTH_TRANSFORMER_FEATURE_REPO": str(self.repo),
            "BERTH_TRANSFORMER_FEATURE_STORE_YAML": str(yaml_file),
            "BERTH_TRANSFORMER_FEATURE_SERVICE": meta.feature_service,
            "BERTH_TRANSFORMER_MODEL_METADATA": str(self.artifact / "metadata.json"),
            **extra.env,
        }
        transformer = self._spawn(
            transformer_process(
                meta.name,
                f"{LOOPBACK}:{predictor_host}",
                (self.port, self.grpc_port),
                env=env,
                log_path=self.logs / "transformer.log",
                predictor_protocol=self.predictor_protocol,
            )
        )
        self.echo("waiting for predictor and transformer to be ready ...")
        for name, proc in (("predictor", predictor), *extra.procs, ("transformer", transformer)):
            self._wait(name, proc)
        return Endpoints(
            model=meta.name,
            version=meta.version,
            feature_service=meta.feature_service,
            http=f"http://{LOOPBACK}:{self.port}",
            grpc=f"{LOOPBACK}:{self.grpc_port}",
            predictor_http=f"http://{LOOPBACK}:{predictor_http}",
            predictor_grpc=f"{LOOPBACK}:{predictor_grpc}",
            online_store=store_label,
            canary=extra.env.get("BERTH_TRANSFORMER_CANARY_HOST"),
            shadow=extra.env.get("BERTH_TRANSFORMER_SHADOW_HOST"),
        )

    def _extra_predictors(self, model_name: str) -> _Extra:
        """Canary / shadow predictors (``--canary DIR``, ``--shadow DIR``) under the primary's
        model name, and the transformer settings pointing at them."""
        from berth.artifact import read_metadata

        extra = _Extra()
        roles = (("canary", self.canary), ("shadow", self.shadow))
        for role, artifact in roles:
            if artifact is None:
                continue
            if not (artifact / "metadata.json").exists():
                raise LocalModeError(f"--{role} {artifact}: no artifact there (`berth build`)")
            http, grpc = free_port(), free_port()
            # One machine: the shadow's CPU must not slow the primary.
            proc = self._spawn(
                predictor_process(
                    model_name,
                    artifact,
                    (http, grpc),
                    env={**LOCAL_ENV["PREDICTOR"], **(self.canary_env if role == "canary" else {})},
                    log_path=self.logs / f"{role}.log",
                    nice=SHADOW_NICE if role == "shadow" else 0,
                )
            )
            port = grpc if self.predictor_protocol == "grpc-v2" else http
            extra.env[f"BERTH_TRANSFORMER_{role.upper()}_HOST"] = f"{LOOPBACK}:{port}"
            extra.procs.append((role, proc))
            version = read_metadata(artifact).version
            self.echo(f"{role} predictor: {artifact} (version {version}) on {LOOPBACK}:{port}")
        if self.canary is not None:
            extra.env["BERTH_TRANSFORMER_CANARY_PERCENT"] = str(self.canary_percent)
        return extra

    def _ensure_artifact(self) -> Any:
        from berth.artifact import read_metadata

        if not (self.artifact / "metadata.json").exists():
            if not (self.build or self.artifact == DEFAULT_ARTIFACT.resolve()):
                raise LocalModeError(
                    f"no artifact at {self.artifact}: check the path, or pass --build to "
                    "build one there (takes a minute)"
                )
            self.echo(f"no artifact at {self.artifact}: running `berth build` (takes a minute)")
            cmd = [sys.executable, "-m", "berth.cli", "build", "--repo", str(self.repo)]
            cmd += ["--output", str(self.artifact), *self.data_args]
            if subprocess.run(cmd, check=False).returncode != 0:
                raise LocalModeError("`berth build` failed (see its output above)")
        return read_metadata(self.artifact)

    def _online_store(self) -> tuple[Path, dict[str, str], str]:
        from berth.featurerepo import (
            CLUSTER_YAML,
            REDIS_YAML,
            SQLITE_YAML,
            redis_connection_string,
        )

        if self.online_store == "sqlite":
            return self.repo / SQLITE_YAML, {}, "Feast SQLite (embedded)"
        if self.redis_cluster:
            nodes = ",".join(p for p in self.redis_cluster.split(",") if "=" not in p)
            env = {"REDIS_CONNECTION_STRING": self.redis_cluster}
            return self.repo / CLUSTER_YAML, env, f"Redis Cluster {nodes}"
        if self.redis_url:
            conn = redis_connection_string(self.redis_url)
            return self.repo / REDIS_YAML, {"REDIS_CONNECTION_STRING": conn}, self.redis_url
        if RedisServer.available():
            self._redis = RedisServer().start()
            label = f"{self._redis.url} (private redis-server)"
            env = {"REDIS_CONNECTION_STRING": self._redis.connection_string}
            return self.repo / REDIS_YAML, env, label
        self.echo(
            "redis-server not found: using Feast's SQLite online store (data/online_store.db)"
        )
        return self.repo / SQLITE_YAML, {}, "Feast SQLite (embedded; no redis-server found)"

    def _materialize(self, yaml_file: Path, env: dict[str, str]) -> None:
        """``feast apply`` + materialize every view's latest rows up to now (Feast's own
        output goes to ``<logs>/materialize.log``)."""
        os.environ.update(env)
        self.echo(f"applying {self.repo} and materializing features ({yaml_file.name}) ...")
        started = time.monotonic()
        log_path = self.logs / "materialize.log"
        with (
            log_path.open("w") as log,
            warnings.catch_warnings(),
            contextlib.redirect_stdout(log),
            contextlib.redirect_stderr(log),
        ):
            warnings.simplefilter("ignore")
            try:
                from berth.featurerepo import materialize_latest

                materialize_latest(self.repo, yaml_file)
            except Exception as exc:
                raise LocalModeError(
                    f"could not materialize into the online store: {type(exc).__name__}: "
                    f"{exc} (Feast's output: {log_path})"
                ) from exc
        self.echo(f"features online in {time.monotonic() - started:.1f}s")

    def _spawn(self, proc: ServerProcess) -> ServerProcess:
        """Start ``proc``; :meth:`stop` stops it with the others."""
        self._procs.append(proc.start())
        return proc

    def _wait(self, name: str, proc: ServerProcess) -> None:
        try:
            proc.wait_ready(READY_TIMEOUT_S)
        except (RuntimeError, TimeoutError):
            tail = "\n".join(proc.log().splitlines()[-15:])
            raise LocalModeError(
                f"{name} did not start; last lines of {proc.log_path}:\n{tail}"
            ) from None

    def process(self, name: str) -> ServerProcess | None:
        """The child named ``name`` (predictor, canary, shadow, transformer), if started."""
        return next((p for p in self._procs if Path(p.log_path).stem == name), None)

    def failed(self) -> str | None:
        """The name of a child that exited on its own, if any."""
        for proc in self._procs:
            if proc.proc is not None and proc.proc.poll() is not None:
                return Path(proc.log_path).stem
        return None

    def stop(self) -> None:
        for proc in reversed(self._procs):
            proc.stop()
        self._procs.clear()
        if self._redis is not None:
            self._redis.close()
            self._redis = None


@dataclass
class _Extra:
    env: dict[str, str] = field(default_factory=dict)
    procs: list[tuple[str, ServerProcess]] = field(default_factory=list)


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            raise LocalModeError(
                f"port {port} is in use: pass another --port / --grpc-port"
            ) from None


@contextlib.contextmanager
def _stopping_on_signals() -> Iterator[None]:
    """Turn SIGTERM (and SIGINT) into KeyboardInterrupt so ``finally`` blocks stop the stack."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stack(args: argparse.Namespace, port: int, grpc_port: int) -> LocalStack:
    from berth.featurerepo import REPO_DIR

    data_args: list[str] = []
    for name in ("drivers", "customers", "days", "rides"):
        if getattr(args, name) is not None:
            data_args += [f"--{name}", str(getattr(args, name))]
    return LocalStack(
        artifact=Path(args.artifact).resolve(),
        repo=Path(args.repo or REPO_DIR).resolve(),
        port=port,
        grpc_port=grpc_port,
        redis_url=args.redis,
        redis_cluster=args.redis_cluster,
        online_store=args.online_store,
        predictor_protocol=args.predictor_protocol,
        data_args=data_args,
        canary=Path(args.canary).resolve() if args.canary else None,
        canary_percent=args.canary_percent,
        shadow=Path(args.shadow).resolve() if args.shadow else None,
        build=args.build,
        logs=Path(args.logs).resolve(),
    )


# --- what the commands print ------------------------------------------------------------

EXAMPLE = [
    {"customer_id": 7, "driver_id": 1003, "trip_distance_km": 4.2, "pickup_hour": 18},
    {"customer_id": 7, "driver_id": 1004, "trip_distance_km": 4.2, "pickup_hour": 18},
    {"customer_id": 7, "driver_id": 1005, "trip_distance_km": 4.2, "pickup_hour": 18},
]


def usage(ep: Endpoints) -> str:
    v1 = json.dumps({"instances": EXAMPLE})
    v2 = json.dumps({"inputs": v2_inputs(EXAMPLE)})
    return f"""
Berth is up: model {ep.model} {ep.version} (FeatureService {ep.feature_service})
  transformer   REST {ep.http}   gRPC {ep.grpc}
  predictor     REST {ep.predictor_http}   gRPC {ep.predictor_grpc}
  online store  {ep.online_store}

KServe V1 (REST):
  curl -s {ep.http}/v1/models/{ep.model}:predict -H 'content-type: application/json' \\
    -d '{v1}'

Open Inference V2 (REST):
  curl -s {ep.http}/v2/models/{ep.model}/infer -H 'content-type: application/json' \\
    -d '{v2}'

Open Inference V2 (gRPC, with the kserve package's stubs):
  python - <<'EOF'
import grpc
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb, grpc_predict_v2_pb2_grpc as pbg
T, C = pb.ModelInferRequest.InferInputTensor, pb.InferTensorContents
stub = pbg.GRPCInferenceServiceStub(grpc.insecure_channel("{ep.grpc}"))
print(stub.ModelInfer(pb.ModelInferRequest(model_name="{ep.model}", inputs=[
    T(name="customer_id", datatype="INT64", shape=[3], contents=C(int64_contents=[7, 7, 7])),
    T(name="driver_id", datatype="INT64", shape=[3], contents=C(int64_contents=[1003, 1004, 1005])),
    T(name="trip_distance_km", datatype="FP32", shape=[3], contents=C(fp32_contents=[4.2] * 3)),
    T(name="pickup_hour", datatype="INT64", shape=[3], contents=C(int64_contents=[18] * 3)),
])).outputs[0].contents.fp32_contents)
EOF

Metrics: curl -s {ep.http}/metrics | grep berth_transformer
"""


def _post(url: str, body: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


def _grpc_scores(target: str, model: str, rows: list[dict[str, Any]]) -> list[float]:
    import grpc
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    with grpc.insecure_channel(target) as channel:
        response = GRPCInferenceServiceStub(channel).ModelInfer(
            grpc_request(rows, model), timeout=10
        )
    return list(response.outputs[0].contents.fp32_contents)


def _metric_totals(http: str) -> dict[str, float]:
    """``berth_transformer_features_{missing,stale}_total`` summed per (kind, view)."""
    with urllib.request.urlopen(f"{http}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        for kind in ("missing", "stale"):
            prefix = f"berth_transformer_features_{kind}_total{{"
            if line.startswith(prefix):
                labels, value = line[len(prefix) :].split("} ")
                view = dict(p.split("=") for p in labels.split(","))["view"].strip('"')
                totals[f"{kind} {view}"] = totals.get(f"{kind} {view}", 0) + float(value)
    return totals


def _demo_requests(ep: Endpoints, candidates: int, echo: Callable[[str], None]) -> None:
    first_driver = 1001
    scenarios = [
        ("customer 7, 4.2 km at 18:00 (rush hour)", 7, 4.2, 18),
        ("customer 42, 23.5 km at 08:00 (rush hour, long trip)", 42, 23.5, 8),
        ("customer 42, 23.5 km at 14:00", 42, 23.5, 14),
    ]
    for title, customer, km, hour in scenarios:
        rows = [
            {
                "customer_id": customer,
                "driver_id": first_driver + i,
                "trip_distance_km": km,
                "pickup_hour": hour,
            }
            for i in range(candidates)
        ]
        answer = _post(f"{ep.http}/v1/models/{ep.model}:predict", {"instances": rows})
        scores = answer["predictions"]
        ranked = sorted(zip(scores, (r["driver_id"] for r in rows), strict=True), reverse=True)
        echo(f"\n{title}: {candidates} candidates ranked by P(accept)")
        for rank, (score, driver) in enumerate(ranked, 1):
            echo(f"  {rank:2d}. driver {driver}  {score:.4f}  {'#' * round(score * 40)}")
    rows = [
        {
            "customer_id": 7,
            "driver_id": first_driver + i,
            "trip_distance_km": 4.2,
            "pickup_hour": 18,
        }
        for i in range(candidates)
    ]
    v1 = _post(f"{ep.http}/v1/models/{ep.model}:predict", {"instances": rows})["predictions"]
    v2 = _post(f"{ep.http}/v2/models/{ep.model}/infer", {"inputs": v2_inputs(rows)})
    v2_scores = next(o["data"] for o in v2["outputs"] if o["name"] == "score")
    grpc_scores = _grpc_scores(ep.grpc, ep.model, rows)
    same = _same(v1, v2_scores) and _same(v1, grpc_scores)
    echo(f"\nV1 REST, V2 REST and V2 gRPC agree on the scores: {'yes' if same else 'NO'}")
    latencies = []
    for _ in range(30):
        started = time.perf_counter()
        _post(f"{ep.http}/v1/models/{ep.model}:predict", {"instances": rows})
        latencies.append((time.perf_counter() - started) * 1000)
    echo(
        f"latency over 30 sequential V1 requests of {candidates} candidates: "
        f"p50 {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms"
    )
    totals = _metric_totals(ep.http)
    if totals:
        echo("values filled with the artifact's defaults (rows, per view):")
        for key, value in sorted(totals.items()):
            echo(f"  {key}: {value:.0f}")
        if any(k.startswith("stale") for k in totals):
            echo(
                "  (stale: the data is older than the view's TTL; `berth build --regenerate` "
                "makes fresh data)"
            )
    else:
        echo("every feature value was present and fresh (no defaults filled)")


def _same(a: list[float], b: list[float]) -> bool:
    import numpy as np

    return bool(np.array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32)))


# --- commands ---------------------------------------------------------------------------


def _up(args: argparse.Namespace) -> int:
    stack = _stack(args, args.port, args.grpc_port)
    with _stopping_on_signals():
        try:
            endpoints = stack.start()
            print(usage(endpoints), flush=True)
            print("Ctrl-C (or SIGTERM) stops everything.", flush=True)
            while (failed := stack.failed()) is None:
                time.sleep(0.5)
            print(
                f"berth up: {failed} exited; see {stack.logs / (failed + '.log')}", file=sys.stderr
            )
            return 1
        except KeyboardInterrupt:
            print("\nstopping ...", flush=True)
            return 0
        finally:
            stack.stop()


def _demo(args: argparse.Namespace) -> int:
    started = time.monotonic()
    stack = _stack(args, args.port or free_port(), args.grpc_port or free_port())
    with _stopping_on_signals():
        try:
            endpoints = stack.start()
            print(
                f"\nup in {time.monotonic() - started:.1f}s: transformer {endpoints.http} "
                f"(gRPC {endpoints.grpc}), model {endpoints.model} {endpoints.version}, "
                f"online store {endpoints.online_store}",
                flush=True,
            )
            _demo_requests(endpoints, args.candidates, print)
        except KeyboardInterrupt:
            return 130
        except (urllib.error.URLError, OSError) as exc:
            raise LocalModeError(f"demo request failed: {exc}; logs in {stack.logs}") from exc
        finally:
            stack.stop()
    print(f"\ndemo finished in {time.monotonic() - started:.1f}s; everything stopped.")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--artifact",
        default=str(DEFAULT_ARTIFACT),
        help=f"artifact directory (default: {DEFAULT_ARTIFACT}, built when absent; another "
        "path is built only with --build)",
    )
    parser.add_argument("--repo", help="Feast repo (default: the project's feature_repo/)")
    store = parser.add_mutually_exclusive_group()
    store.add_argument(
        "--redis",
        metavar="URL",
        help="materialize into this Redis "
        "(redis://host:port[/db]); default: a private redis-server",
    )
    store.add_argument(
        "--redis-cluster",
        metavar="NODES",
        help="materialize into this Redis Cluster, Feast's connection string "
        "(host:port[,host:port...][,username=..,password=..,ssl=true,ssl_ca_certs=..])",
    )
    store.add_argument("--online-store", choices=["sqlite"], help="use Feast's SQLite store")
    parser.add_argument(
        "--predictor-protocol",
        choices=["grpc-v2", "v2"],
        default="v2",
        help="transformer -> predictor protocol",
    )
    parser.add_argument("--logs", default=str(STATE_DIR / "logs"), help="child process logs")
    parser.add_argument(
        "--canary", metavar="DIR", help="artifact of a canary predictor (same FeatureService)"
    )
    parser.add_argument(
        "--canary-percent",
        type=float,
        default=10.0,
        metavar="N",
        help="share of customers (0..100) routed to --canary (sticky per customer)",
    )
    parser.add_argument(
        "--shadow", metavar="DIR", help="artifact of a shadow predictor (gets copies)"
    )
    parser.add_argument(
        "--build",
        action="store_true",
        help="build the artifact when --artifact has none (always done for the default path)",
    )
    add_data_arguments(parser, " (when it is built)")


def add_local_commands(subparsers: Any) -> None:
    """Register ``berth up`` and ``berth demo`` on the ``berth`` CLI's subparsers."""
    up = subparsers.add_parser("up", help="run predictor + transformer locally (Ctrl-C stops)")
    _common(up)
    up.add_argument("--port", type=int, default=8080, help="transformer HTTP port")
    up.add_argument("--grpc-port", type=int, default=8081, help="transformer gRPC port")
    up.set_defaults(func=_up)

    demo = subparsers.add_parser("demo", help="berth up, send ranking requests, print, exit")
    _common(demo)
    demo.add_argument("--port", type=int, default=0, help="transformer HTTP port (0: free)")
    demo.add_argument("--grpc-port", type=int, default=0, help="transformer gRPC port (0: free)")
    demo.add_argument("--candidates", type=int, default=8, help="drivers per ranking request")
    demo.set_defaults(func=_demo)
