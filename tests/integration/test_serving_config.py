"""Every accepted flag and setting does what it says, or start-up refuses it (issue 13): one
JSON log line naming the flag or variable, the reason and the fix, exit code 2; TLS to the
predictor with a certificate made here; bounded retries of a predictor call."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from berth.loadtest import MODEL
from berth.stack import LOOPBACK, ServerProcess, free_port, predictor_process, transformer_process
from tests.support.tls import self_signed_tls

pytestmark = pytest.mark.integration

ROWS = [{"customer_id": 7, "driver_id": 1003, "trip_distance_km": 4.2, "pickup_hour": 18}]


def refusal(module: str, args: list[str], env: dict[str, str]) -> dict[str, str]:
    """Run the container's entrypoint; it must exit 2 with one JSON refusal line, no traceback."""
    clean = {k: v for k, v in __import__("os").environ.items() if not k.startswith("BERTH_")}
    done = subprocess.run(
        [sys.executable, "-m", module, "--model_name", MODEL, *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    refusals = [line for line in lines if line["event"].startswith("refusing to start")]
    assert len(refusals) == 1, output
    assert {"setting", "reason", "fix", "level"} <= refusals[0].keys()
    return refusals[0]


PREDICTOR = ["--model_dir", "/nonexistent"]
TRANSFORMER = ["--predictor_host", f"{LOOPBACK}:1"]


def test_a_misspelt_variable_is_refused_with_the_closest_name() -> None:
    """Found: BERTH_PREDICTOR_MAX_BATCH_ROW=5 was silently ignored."""
    line = refusal("berth_predictor", PREDICTOR, {"BERTH_PREDICTOR_MAX_BATCH_ROW": "5"})
    assert line["setting"] == "BERTH_PREDICTOR_MAX_BATCH_ROW"
    assert "BERTH_PREDICTOR_MAX_BATCH_ROWS" in line["fix"]
    line = refusal("berth_transformer", TRANSFORMER, {"BERTH_TRANSFORMER_DRIFT_WINDOWS": "9"})
    assert "BERTH_TRANSFORMER_DRIFT_WINDOW" in line["fix"]


@pytest.mark.parametrize(
    ("module", "args", "variable", "value"),
    [
        ("berth_predictor", PREDICTOR, "BERTH_PREDICTOR_MAX_BATCH_ROWS", "many"),
        ("berth_predictor", PREDICTOR, "BERTH_PREDICTOR_GRAPH_OPTIMIZATION", "max"),
        ("berth_transformer", TRANSFORMER, "BERTH_TRANSFORMER_MAX_CANDIDATES", "0"),
        ("berth_transformer", TRANSFORMER, "BERTH_TRANSFORMER_MISSING_POLICY", "{not json"),
    ],
)
def test_a_bad_value_names_the_variable_not_the_field(
    module: str, args: list[str], variable: str, value: str
) -> None:
    """Found: the predictor died with a raw pydantic traceback naming `max_batch_rows`."""
    line = refusal(module, args, {variable: value})
    assert line["setting"] == variable
    assert repr(value) in line["reason"]
    assert variable in line["fix"]


@pytest.mark.parametrize(
    ("module", "flags", "env"),
    [
        ("berth_transformer", ["--enable_predictor_health_check"], {}),
        ("berth_transformer", ["--log_config_file", "/tmp/log.yaml"], {}),
        ("berth_transformer", ["--configure_logging", "false"], {}),
        ("berth_transformer", ["--protocol", "v2"], {}),
        ("berth_transformer", ["--predictor_request_retries", "9"], {}),
        (
            "berth_transformer",
            ["--predictor_request_timeout_seconds", "2"],
            {"BERTH_TRANSFORMER_PREDICTOR_TIMEOUT_MS": "500"},
        ),
        ("berth_predictor", ["--predictor_use_ssl", "true"], {}),
        ("berth_predictor", ["--predictor_request_timeout_seconds", "5"], {}),
        ("berth_predictor", ["--log_config_file", "/tmp/log.yaml"], {}),
    ],
)
def test_a_flag_that_would_be_ignored_is_refused(
    module: str, flags: list[str], env: dict[str, str]
) -> None:
    """Found: these KServe flags were accepted and did nothing."""
    args = (PREDICTOR if module == "berth_predictor" else TRANSFORMER) + flags
    line = refusal(module, args, env)
    assert line["setting"] == flags[0]


def test_a_ca_bundle_without_tls_is_refused() -> None:
    env = {"BERTH_TRANSFORMER_PREDICTOR_CA_BUNDLE": "/etc/hostname"}
    line = refusal("berth_transformer", TRANSFORMER, env)
    assert line["setting"] == "BERTH_TRANSFORMER_PREDICTOR_CA_BUNDLE"
    assert "TLS" in line["fix"]


def predict(http: int) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://{LOOPBACK}:{http}/v1/models/{MODEL}:predict",
        data=json.dumps({"instances": ROWS}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def tls_transformer(
    built: tuple[Path, Path],
    redis_url: str,
    predictor: tuple[int, int],
    protocol: str,
    env: dict[str, str],
    log: Path,
) -> ServerProcess:
    port = predictor[1] if protocol == "grpc-v2" else predictor[0]
    base = {
        "REDIS_CONNECTION_STRING": redis_url,
        "BERTH_TRANSFORMER_FEATURE_REPO": str(built[0]),
        "BERTH_TRANSFORMER_MODEL_METADATA": str(built[1] / "metadata.json"),
        "BERTH_TRANSFORMER_STARTUP_TIMEOUT_S": "60",
    }
    proc = transformer_process(
        MODEL,
        f"{LOOPBACK}:{port}",
        (free_port(), free_port()),
        env={**base, **env},
        log_path=log,
        predictor_protocol=protocol,
    )
    proc.args += ["--predictor_use_ssl", "true"]
    return proc


@pytest.mark.parametrize("protocol", ["grpc-v2", "v2"])
def test_tls_to_the_predictor_with_a_ca_bundle(
    built: tuple[Path, Path], redis_server: object, tmp_path: Path, protocol: str
) -> None:
    """Found: --predictor_use_ssl was ignored (the gRPC channel was always plain text). The
    predictor serves TLS on both ports (KServe's --ssl_certfile/--ssl_keyfile); the transformer
    trusts it through BERTH_TRANSFORMER_PREDICTOR_CA_BUNDLE, and without the bundle the
    certificate is refused (the start-up contract check cannot reach the predictor)."""
    from berth.featurerepo import materialize_latest
    from tests.support.env import patched_env

    tls = self_signed_tls(tmp_path)
    cert, key = tls.cert, tls.key
    redis_url = redis_server.connection_string  # type: ignore[attr-defined]
    with patched_env(REDIS_CONNECTION_STRING=redis_url):
        materialize_latest(built[0])
    ports = (free_port(), free_port())
    predictor = predictor_process(MODEL, built[1], ports, log_path=tmp_path / "p.log")
    predictor.args += ["--ssl_certfile", str(cert), "--ssl_keyfile", str(key)]
    predictor.start()
    trusting = tls_transformer(
        built,
        redis_url,
        ports,
        protocol,
        {"BERTH_TRANSFORMER_PREDICTOR_CA_BUNDLE": str(cert)},
        tmp_path / "t.log",
    )
    untrusting = tls_transformer(
        built,
        redis_url,
        ports,
        protocol,
        {"BERTH_TRANSFORMER_STARTUP_TIMEOUT_S": "3"},
        tmp_path / "u.log",
    )
    try:
        trusting.start().wait_ready(120)
        http = int(trusting.ready_url.split(":")[2].split("/")[0])
        assert len(predict(http)["predictions"]) == 1  # type: ignore[arg-type]
        untrusting.start()
        assert untrusting.proc is not None and untrusting.proc.wait(90) == 1
        assert "certificate" in untrusting.log().lower() or "ssl" in untrusting.log().lower()
    finally:
        for proc in (untrusting, trusting, predictor):
            proc.stop()
