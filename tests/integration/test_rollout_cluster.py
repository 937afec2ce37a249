"""``berth rollout`` end to end through the real ``kubernetes`` client -- against FAKES.

No real cluster is used. A small fake Kubernetes API server (``http.server`` in a thread on a
free 127.0.0.1 port) serves GET and PATCH (``application/json-patch+json`` and
``application/merge-patch+json``) of ``/apis/serving.kserve.io/v1beta1/namespaces/{ns}/
inferenceservices/{name}``, keeps the objects in memory, checks the bearer token, bumps
``resourceVersion`` and, with ``fieldValidation=Strict``, refuses fields KServe's CRD does not
know and any result that breaks the CRD schema (when ``../shared/kserve/`` is present). A
kubeconfig in tmp points the client at it. Metrics come from a fake Prometheus
(``/api/v1/query`` answering canned vectors) or from real ``prometheus_client`` registries
served as ``/metrics`` text.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import MetricsHandler

from berth.errors import BerthError
from berth.rollout import crd
from berth.rollout import isvc as iv
from berth.rollout.cli import add_rollout_commands
from berth.rollout.jsonpatch import PatchConflict, apply_json_patch, apply_merge_patch

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "fake-token"
NS = "serving"
V1, V2 = "s3://models/driver-ranking/v1", "s3://models/driver-ranking/v2"
ISVC_PATH = "/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices/{name}"


# -- fake API server ------------------------------------------------------------------------------


@dataclass
class FakeApiServer:
    """In-memory InferenceServices behind the Kubernetes REST paths the client uses."""

    schema: dict[str, Any] | None
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, type
    on_get: Callable[[dict[str, Any]], None] | None = None  # a concurrent writer, say

    def put(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        meta.setdefault("resourceVersion", "1")
        self.objects[(meta["namespace"], meta["name"])] = copy.deepcopy(obj)

    def get(self, name: str, ns: str = NS) -> dict[str, Any]:
        return copy.deepcopy(self.objects[(ns, name)])

    @property
    def patches(self) -> list[tuple[str, str, str]]:
        return [r for r in self.requests if r[0] == "PATCH"]

    def handle(self, method: str, url: str, ctype: str, body: bytes) -> tuple[int, Any]:
        parsed = urllib.parse.urlsplit(url)
        self.requests.append((method, url, ctype))
        parts = parsed.path.strip("/").split("/")
        if len(parts) != 7 or parts[:3] != ["apis", "serving.kserve.io", "v1beta1"]:
            return 404, status(404, "NotFound", f"no route {parsed.path}")
        ns, name = parts[4], parts[6]
        if (ns, name) not in self.objects:
            return 404, status(404, "NotFound", f'inferenceservices "{name}" not found')
        obj = self.objects[(ns, name)]
        if method == "GET":
            answer = copy.deepcopy(obj)
            if self.on_get:  # changes the stored object after the client has read it
                self.on_get(obj)
            return 200, answer
        patch = json.loads(body)
        try:
            if ctype == "application/json-patch+json":
                new = apply_json_patch(obj, patch)
            elif ctype == "application/merge-patch+json":
                new = apply_merge_patch(obj, patch)
            else:
                return 415, status(415, "UnsupportedMediaType", f"{ctype} is not supported")
        except PatchConflict as exc:
            return 422, status(422, "", str(exc))  # the API server's words for a failed test
        strict = "Strict" in urllib.parse.parse_qs(parsed.query).get("fieldValidation", [])
        if self.schema is not None:
            problems = crd.problems(new, self.schema)
            unknown = [p for p in problems if "unknown field" in p]
            invalid = [p for p in problems if "unknown field" not in p]
            if invalid or (strict and unknown):
                return 422, status(422, "Invalid", "; ".join(invalid or unknown))
        new["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
        self.objects[(ns, name)] = new
        return 200, new


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "reason": reason, "code": code}  # fmt: skip


def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def json_handler(answer: Callable[[str, str, str, bytes, dict[str, str]], tuple[int, Any]]) -> type:
    class Handler(BaseHTTPRequestHandler):
        def _do(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            ctype = (self.headers.get("Content-Type") or "").split(";")[0]
            headers = {k.lower(): v for k, v in self.headers.items()}
            code, doc = answer(self.command, self.path, ctype, body, headers)
            data = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PATCH = _do

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def schema() -> dict[str, Any] | None:
    env = os.environ.get("BERTH_KSERVE_CRDS")
    path = Path(env) if env else ROOT.parent / "shared" / "kserve"
    return crd.isvc_schema(path) if (path / crd.ISVC_CRD).exists() else None


@pytest.fixture
def api(schema: dict[str, Any] | None) -> Iterator[FakeApiServer]:
    fake = FakeApiServer(schema)

    def answer(method: str, path: str, ctype: str, body: bytes, headers: dict[str, str]) -> Any:
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, status(401, "Unauthorized", "Unauthorized")
        return fake.handle(method, path, ctype, body)

    for url in serve(json_handler(answer)):
        fake.url = url  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
def kubeconfig(api: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current kubeconfig ($KUBECONFIG), its context's namespace ``serving``."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": api.url}}],  # type: ignore[attr-defined]
                "users": [{"name": "fake", "user": {"token": TOKEN}}],
                "contexts": [
                    {
                        "name": "fake",
                        "context": {"cluster": "fake", "user": "fake", "namespace": NS},
                    }
                ],
                "current-context": "fake",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


def berth(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``berth rollout ...`` in process, errors handled as ``berth.cli.main`` does."""
    parser = argparse.ArgumentParser(prog="berth")
    add_rollout_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["rollout", *argv])
    try:
        code = int(args.func(args))
    except BerthError as exc:
        print(f"berth rollout: {exc}", file=__import__("sys").stderr)
        code = 1
    out = capsys.readouterr()
    return code, out.out, out.err


# -- objects --------------------------------------------------------------------------------------


def isvc(mode: str, name: str = "driver-ranking", uri: str = V1, **env: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": NS, "annotations": {iv.MODE_ANNOTATION: mode}},
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "containers": [
                    {
                        "name": "kserve-container",
                        "image": "berth/predictor:0.1.0",
                        "env": [{"name": "STORAGE_URI", "value": uri}],
                    }
                ],
            },
            "transformer": {
                "containers": [
                    {
                        "name": "kserve-container",
                        "image": "berth/transformer:0.1.0",
                        "env": [{"name": k, "value": v} for k, v in env.items()],
                    }
                ]
            },
        },
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def model_uri(obj: dict[str, Any]) -> str:
    return iv.model_uri_slot(obj["spec"]["predictor"]).value


def tenv(obj: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in obj["spec"]["transformer"]["containers"][0]["env"]}


# -- operations -----------------------------------------------------------------------------------


def test_knative_status_canary_promote_rollback(
    api: FakeApiServer, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.put(isvc("Serverless"))
    code, out, err = berth(capsys, "status")
    assert code == 0 and "serving/driver-ranking  (knative, ready=True)" in out, err
    assert f"primary            (default)  {V1}" in out and "canary             none" in out

    code, out, _ = berth(capsys, "canary", "--percent", "20", "--storage-uri", V2)
    assert code == 0 and "canaryTrafficPercent=20" in out
    obj = api.get("driver-ranking")
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 20 and model_uri(obj) == V2
    _, url, ctype = api.patches[-1]
    assert ctype == "application/json-patch+json"
    assert "fieldValidation=Strict" in url and "fieldManager=berth-rollout" in url

    code, out, _ = berth(capsys, "status", "-o", "json")
    assert json.loads(out)["canary"]["percent"] == 20

    assert berth(capsys, "rollback")[0] == 0
    assert api.get("driver-ranking")["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert berth(capsys, "canary", "--percent", "50")[0] == 0
    assert berth(capsys, "promote")[0] == 0
    obj = api.get("driver-ranking")
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"] and model_uri(obj) == V2
    assert obj["metadata"]["resourceVersion"] == "5"


def test_standard_canary_promote_rollback(
    api: FakeApiServer, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.put(isvc("RawDeployment"))
    code, out, err = berth(capsys, "canary", "--percent", "20")
    assert code == 1 and "pass --storage-uri" in err
    code, out, _ = berth(capsys, "canary", "--percent", "20", "--storage-uri", V2, "--name", "v2")
    assert code == 0, out
    (entry,) = api.get("driver-ranking")["spec"]["canary"]
    assert entry["trafficPercent"] == 20 and entry["predictor"]["name"] == "v2"
    code, out, _ = berth(capsys, "status")
    assert f"canary             v2 20%  {V2}" in out
    assert berth(capsys, "rollback")[0] == 0
    assert "canary" not in api.get("driver-ranking")["spec"]
    assert berth(capsys, "canary", "--percent", "10", "--storage-uri", V2, "--name", "v2")[0] == 0
    assert berth(capsys, "promote")[0] == 0
    obj = api.get("driver-ranking")
    assert "canary" not in obj["spec"] and obj["spec"]["predictor"]["name"] == "v2"
    assert model_uri(obj) == V2


def test_transformer_canary_and_shadow(
    api: FakeApiServer, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.put(isvc("RawDeployment", BERTH_TRANSFORMER_FEATURE_SERVICE="driver_ranking_v1"))
    api.put(isvc("RawDeployment", name="driver-ranking-v2", uri=V2))  # the canary predictor
    host = f"driver-ranking-v2-predictor.{NS}.svc.cluster.local"

    assert berth(capsys, "canary", "--percent", "20", "--host", host)[0] == 0
    assert tenv(api.get("driver-ranking"))[iv.CANARY_PERCENT] == "20"
    assert berth(capsys, "canary", "--percent", "30")[0] == 0  # auto: the transformer's canary
    env = tenv(api.get("driver-ranking"))
    assert env[iv.CANARY_HOST] == host and env[iv.CANARY_PERCENT] == "30"
    code, out, _ = berth(capsys, "status")
    assert f"transformer canary {host} 30%" in out

    assert berth(capsys, "shadow", "--enable", "--host", "shadow-predictor:80")[0] == 0
    assert tenv(api.get("driver-ranking"))[iv.SHADOW_HOST] == "shadow-predictor:80"
    assert "shadow             shadow-predictor:80" in berth(capsys, "status")[1]
    assert berth(capsys, "shadow", "--disable")[0] == 0
    assert iv.SHADOW_HOST not in tenv(api.get("driver-ranking"))
    code, out, _ = berth(capsys, "shadow", "--disable")
    assert code == 0 and "nothing to change" in out
    code, _, err = berth(capsys, "shadow", "--enable")
    assert code == 1 and "needs --host" in err

    # promote: the canary host is InferenceService driver-ranking-v2; its model becomes primary.
    code, out, _ = berth(capsys, "promote")
    assert code == 0 and f"={V2}" in out
    obj = api.get("driver-ranking")
    assert model_uri(obj) == V2 and iv.CANARY_HOST not in tenv(obj)
    assert tenv(obj)["BERTH_TRANSFORMER_FEATURE_SERVICE"] == "driver_ranking_v1"

    assert berth(capsys, "canary", "--percent", "5", "--host", "elsewhere:8080")[0] == 0
    code, _, err = berth(capsys, "promote")
    assert code == 1 and "pass --storage-uri" in err
    assert berth(capsys, "rollback")[0] == 0
    assert iv.CANARY_HOST not in tenv(api.get("driver-ranking"))


def test_dry_run_changes_nothing(
    api: FakeApiServer, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.put(isvc("Serverless"))
    before = api.get("driver-ranking")
    code, out, err = berth(capsys, "canary", "--percent", "20", "--storage-uri", V2, "--dry-run")
    assert code == 0 and "dry run, not sent" in err
    ops = json.loads(out)
    assert ops[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "1"}
    assert apply_json_patch(before, ops)["spec"]["predictor"]["canaryTrafficPercent"] == 20
    for argv in (
        ["shadow", "--enable", "--host", "s:80"],
        ["canary", "--percent", "1", "--host", "h"],
    ):
        assert berth(capsys, *argv, "--dry-run")[0] == 0
    assert api.patches == [] and api.get("driver-ranking") == before


def test_errors(api: FakeApiServer, kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api.put(isvc("Serverless"))
    code, _, err = berth(capsys, "status", "missing")
    assert code == 1 and "serving/missing: not found" in err
    code, _, err = berth(capsys, "status", "-n", "other")
    assert code == 1 and "other/driver-ranking: not found" in err
    api.on_get = lambda obj: obj["metadata"].update(resourceVersion="99")  # a concurrent writer
    code, _, err = berth(capsys, "canary", "--percent", "20")
    assert code == 1 and "changed since it was read" in err
    api.on_get = None
    cfg = json.loads(kubeconfig.read_text())
    cfg["users"][0]["user"]["token"] = "wrong"
    kubeconfig.write_text(json.dumps(cfg))
    code, _, err = berth(capsys, "status")
    assert code == 1 and "needs get and patch" in err


# -- analyze --------------------------------------------------------------------------------------


def vector(rows: list[tuple[dict[str, str], float]]) -> dict[str, Any]:
    result = [{"metric": m, "value": [1_760_000_000.0, str(v)]} for m, v in rows]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def request_buckets(version: str, ok: int, errors: int, slow: int = 0) -> list[Any]:
    """Rows of ``sum by (model_version, outcome, le) (increase(..._bucket[w]))``."""
    rows = []
    for outcome, n in (("200", ok), ("503", errors)):
        fast = n - slow if outcome == "200" else n
        for le, count in (("0.025", fast), ("0.05", fast), ("0.5", n), ("+Inf", n)):
            rows.append(({"model_version": version, "outcome": outcome, "le": le}, float(count)))
    return rows


@pytest.fixture
def prometheus() -> Iterator[tuple[str, dict[str, Any], list[str]]]:
    """A fake Prometheus: ``answers`` maps a metric name found in the query to a vector."""
    answers: dict[str, Any] = {}
    queries: list[str] = []

    def answer(method: str, path: str, ctype: str, body: bytes, headers: dict[str, str]) -> Any:
        parsed = urllib.parse.urlsplit(path)
        if parsed.path != "/api/v1/query":
            return 404, {"status": "error", "error": "not found"}
        query = urllib.parse.parse_qs(parsed.query)["query"][0]
        queries.append(query)
        for metric, doc in answers.items():
            if metric in query:
                return 200, doc
        return 200, vector([])

    for url in serve(json_handler(answer)):
        yield url, answers, queries


POLICY = """\
primary_version: v1
canary_version: v2
window: 5m
min_samples: 150
max_error_rate_delta: 0.01
max_p99_ratio: 1.5
max_shadow_delta_p99: 0.05
fail_looks: 1
pass_looks: 1
"""


def test_analyze_rolls_back_a_failing_canary(
    api: FakeApiServer,
    kubeconfig: Path,
    prometheus: tuple[str, dict[str, Any], list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, answers, queries = prometheus
    (tmp_path / "policy.yaml").write_text(POLICY)
    api.put(isvc("Serverless"))
    assert berth(capsys, "canary", "--percent", "20", "--storage-uri", V2)[0] == 0
    answers["request_seconds"] = vector(
        request_buckets("v1", 995, 5) + request_buckets("v2", 180, 20)
    )
    argv = ["analyze", "--prometheus", url, "--policy", str(tmp_path / "policy.yaml")]

    code, out, _ = berth(capsys, *argv)  # no --apply: prints only
    assert code == 4 and "-> ROLLBACK" in out and "canary 10.00% vs primary 0.50%" in out
    assert len(api.patches) == 1
    assert "increase(berth_transformer_model_request_seconds_bucket[5m])" in queries[0]

    code, out, err = berth(capsys, *argv, "--dry-run")  # prints the rollback patch only
    assert code == 4 and '"value": 0' in out and "dry run, not sent" in err
    assert len(api.patches) == 1

    code, out, _ = berth(capsys, *argv, "--apply")
    assert code == 4 and "canaryTrafficPercent=0" in out
    assert api.get("driver-ranking")["spec"]["predictor"]["canaryTrafficPercent"] == 0


def test_analyze_promotes_a_healthy_canary_and_holds_a_quiet_one(
    api: FakeApiServer,
    kubeconfig: Path,
    prometheus: tuple[str, dict[str, Any], list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, answers, _ = prometheus
    (tmp_path / "policy.yaml").write_text(POLICY)
    api.put(isvc("RawDeployment"))
    assert berth(capsys, "canary", "--percent", "10", "--storage-uri", V2, "--name", "v2")[0] == 0
    argv = ["analyze", "--prometheus", url, "--policy", str(tmp_path / "policy.yaml"), "--apply"]

    answers["request_seconds"] = vector(
        request_buckets("v1", 1000, 3) + request_buckets("v2", 20, 0)
    )
    code, out, _ = berth(capsys, *argv)
    assert code == 3 and "too few requests to vote" in out and len(api.patches) == 1

    answers["request_seconds"] = vector(
        request_buckets("v1", 3000, 3) + request_buckets("v2", 1000, 1)
    )
    answers["shadow_delta"] = vector([({"le": "0.05"}, 999.0), ({"le": "+Inf"}, 1000.0)])
    code, out, _ = berth(capsys, *argv, "-o", "json")
    doc = json.loads(out)
    assert code == 0 and doc["action"] == "promote" and doc["applied"] is True
    assert doc["measurements"]["shadow"]["rows"] == 1000
    obj = api.get("driver-ranking")
    assert "canary" not in obj["spec"] and model_uri(obj) == V2


def test_analyze_scrapes_pods_and_rolls_back_a_slow_canary(
    api: FakeApiServer, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two transformer pods' real /metrics (prometheus_client registries); the canary is slow."""
    api.put(isvc("Serverless", **{iv.CANARY_HOST: "v2-predictor:80", iv.CANARY_PERCENT: "50"}))
    urls = []
    servers = []
    for pod in range(2):
        registry = CollectorRegistry()
        h = Histogram("berth_transformer_model_request_seconds", "latency",
                      ["model_version", "outcome"],
                      buckets=(0.01, 0.05, 0.1, 0.5, 1.0), registry=registry)  # fmt: skip
        for _ in range(100):
            h.labels("v1", "200").observe(0.02)
            h.labels("v2", "200").observe(0.02 if pod == 0 else 0.3)
        servers.append(serve(MetricsHandler.factory(registry)))
        urls.append(next(servers[-1]) + "/metrics")
    try:
        argv = ["analyze", "--primary-version", "v1", "--canary-version", "v2", "--apply"]
        argv += ["--watch", "--interval", "0.1s", "--looks", "3"]  # two failing looks roll back
        code, out, _ = berth(capsys, *argv, *(a for u in urls for a in ("--scrape", u)))
    finally:
        for server in servers:
            server.close()
    assert code == 4 and "2 scrape(s)" in out
    assert "look 1 FAIL" in out and "failing looks 2/2, passing looks 0/3 -> ROLLBACK" in out
    assert "fail         latency: p50" in out
    assert iv.CANARY_HOST not in tenv(api.get("driver-ranking"))  # transformer canary removed


def test_analyze_names_the_versions_it_saw(
    prometheus: tuple[str, dict[str, Any], list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, answers, _ = prometheus
    answers["request_seconds"] = vector(request_buckets("v1", 10, 0) + request_buckets("v9", 5, 0))
    code, _, err = berth(capsys, "analyze", "--prometheus", url)  # no cluster needed to print
    assert code == 1 and "versions in the metrics: v1, v9" in err
