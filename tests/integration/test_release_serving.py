"""Issue 15 on a real stack (redis-server, Feast, predictor, transformer): ``POST
/v1/models/driver-ranking:explain`` (additive attributions, exact Shapley values on a candidate
that differs from the baseline in 4 features, its in-flight bound that leaves ``:predict``
admitted) and served values checked against the artifact's data contract."""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from berth.artifact import read_metadata
from berth.scrape import scrape
from berth.stack import LOOPBACK, free_port, transformer_process
from tests.support.env import patched_env
from tests.support.serving import ServingStack

pytestmark = pytest.mark.integration

MODEL = "driver-ranking"
PROBE_ID = 9001  # a driver and a customer written online by the test
EXPLAIN_ENV = {
    "BERTH_TRANSFORMER_EXPLAIN_MAX_INFLIGHT": "1",
    "BERTH_TRANSFORMER_EXPLAIN_DEADLINE_MS": "120000",
    # Small predictor calls: an explanation of 40 candidates takes ~1000 calls, long enough
    # to hold the bound while the test sends more.
    "BERTH_TRANSFORMER_EXPLAIN_BATCH_ROWS": "16",
}


@pytest.fixture(scope="module")
def stack(serving_stack: Any) -> Iterator[ServingStack]:
    with serving_stack("explain", transformer_env=EXPLAIN_ENV) as s:
        yield s


def _post(url: str, body: dict[str, Any], timeout: float = 60) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _explain(stack: ServingStack, instances: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    return _post(f"{stack.url}/v1/models/{MODEL}:explain", {"instances": instances})


def _candidates(n: int, customer: int = 7) -> list[dict[str, Any]]:
    return [
        {"customer_id": customer, "driver_id": 1001 + i, "trip_distance_km": 4.2 + i,
         "pickup_hour": 18}
        for i in range(n)
    ]  # fmt: skip


def test_explanations_are_additive_and_score_as_predict(stack: ServingStack) -> None:
    instances = _candidates(6)
    status, body = _explain(stack, instances)
    assert status == 200, body
    meta = read_metadata(stack.artifact)
    assert body["model_version"] == meta.version
    _, predicted = _post(stack.infer_url, {"instances": instances})
    assert len(body["explanations"]) == len(instances)
    for explanation, score in zip(body["explanations"], predicted["predictions"], strict=True):
        assert list(explanation["attributions"]) == meta.feature_names
        assert explanation["score"] == pytest.approx(score, abs=1e-5)
        total = sum(explanation["attributions"].values())
        assert abs(total - (explanation["score"] - explanation["baseline_score"])) < 0.01
        assert 0 < explanation["predictor_rows"] <= 512


def _write_probe(stack: ServingStack, values: dict[str, float], entity: int = PROBE_ID) -> None:
    """Driver and customer ``entity`` online with exactly ``values`` (fresh timestamps)."""
    from berth.featurerepo import open_store

    with patched_env(REDIS_CONNECTION_STRING=stack.redis.connection_string):
        store = open_store(stack.repo)
        now = pd.Timestamp.now(tz="UTC")
        for view, key in (
            ("driver_hourly_stats", "driver_id"),
            ("driver_profile", "driver_id"),
            ("customer_profile", "customer_id"),
        ):
            frame = pd.DataFrame({key: [entity]})
            for feature in store.get_feature_view(view).features:
                dtype = "int64" if "Int" in str(feature.dtype) else "float32"
                frame[feature.name] = np.array([values.get(feature.name, 0)], dtype=dtype)
            store.write_to_online_store(view, frame.assign(event_timestamp=now, created=now))


def _infer_rows(stack: ServingStack, rows: np.ndarray) -> np.ndarray:
    body = {
        "inputs": [
            {"name": "features", "shape": list(rows.shape), "datatype": "FP32",
             "data": rows.ravel().tolist()}
        ]
    }  # fmt: skip
    status, answer = _post(f"{stack.predictor_url}/v2/models/{MODEL}/infer", body)
    assert status == 200, answer
    return np.asarray(answer["outputs"][0]["data"], np.float64)


def _exact_shapley(stack: ServingStack, x: np.ndarray, base: np.ndarray, idx: list[int]) -> dict:  # type: ignore[type-arg]
    """All 2^k coalitions of ``idx`` scored by the real predictor, Shapley by the formula."""
    idx = sorted(idx)
    k = len(idx)
    coalitions = [c for s in range(k + 1) for c in itertools.combinations(idx, s)]
    rows = np.repeat(base[None, :], len(coalitions), axis=0)
    for r, coalition in enumerate(coalitions):
        rows[r, list(coalition)] = x[list(coalition)]
    value = dict(zip(coalitions, _infer_rows(stack, rows), strict=True))
    phi = {}
    for i in idx:
        total = 0.0
        for s in range(k):
            for others in itertools.combinations([j for j in idx if j != i], s):
                joined = tuple(sorted((*others, i)))
                weight = math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k)
                total += weight * (value[joined] - value[others])
        phi[i] = total
    return phi


def test_four_differing_features_get_their_exact_shapley_values(stack: ServingStack) -> None:
    meta = read_metadata(stack.artifact)
    names, defaults = meta.feature_names, {f.name: f.default for f in meta.features}
    ints = {f.name for f in meta.features if f.dtype == "int64"}
    # Integer features whose median is not an integer cannot equal the baseline online.
    forced = [n for n in names if n in ints and defaults[n] != round(defaults[n])]
    assert len(forced) <= 4, forced
    preferred = ["trip_distance_km", "rating", "conv_rate", "cust_cancel_rate"]
    chosen = forced + [n for n in preferred if n not in forced][: 4 - len(forced)]
    shifts = {"trip_distance_km": 9.0, "rating": -0.6, "conv_rate": 0.3, "cust_cancel_rate": 0.2}
    values = {n: round(defaults[n]) if n in ints else defaults[n] for n in names}
    for n in chosen:
        values[n] = values[n] + shifts.get(n, 0.0)
    _write_probe(stack, values)
    instance = {
        "customer_id": PROBE_ID,
        "driver_id": PROBE_ID,
        "trip_distance_km": float(np.float32(values["trip_distance_km"])),
        "pickup_hour": int(values["pickup_hour"]),
    }
    status, body = _explain(stack, [instance])
    assert status == 200, body
    explanation = body["explanations"][0]
    assert explanation["method"] == "exact" and explanation["predictor_rows"] == 16
    x = np.array([values[n] for n in names], np.float32)
    base = np.array([defaults[n] for n in names], np.float32)
    idx = [names.index(n) for n in chosen]
    assert sorted(np.flatnonzero(x != base).tolist()) == sorted(idx)
    expected = _exact_shapley(stack, x, base, idx)
    attributions = explanation["attributions"]
    for i in idx:
        assert attributions[names[i]] == pytest.approx(expected[i], abs=0.02), names[i]
    for n in names:
        if n not in chosen:
            assert abs(attributions[n]) < 0.01, n
    assert explanation["baseline_score"] == pytest.approx(
        _infer_rows(stack, base[None])[0], abs=1e-4
    )


def test_explain_bound_full_is_429_while_predict_is_admitted(stack: ServingStack) -> None:
    """EXPLAIN_MAX_INFLIGHT=1: a long explanation holds the bound (sampled permutations over
    many candidates), another is refused at once, a prediction still answers."""
    long_body = {"instances": _candidates(40)}
    results: list[tuple[int, dict[str, Any]]] = []
    worker = threading.Thread(
        target=lambda: results.append(
            _post(f"{stack.url}/v1/models/{MODEL}:explain", long_body, timeout=180)
        )
    )
    worker.start()
    try:
        refused: tuple[int, dict[str, Any]] | None = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and worker.is_alive():
            time.sleep(0.2)
            status, body = _explain(stack, _candidates(1))
            if status == 429:
                refused = (status, body)
                break
        assert refused is not None, "the long explanation never held the bound"
        assert "BERTH_TRANSFORMER_EXPLAIN_MAX_INFLIGHT" in json.dumps(refused[1])
        status, predicted = _post(stack.infer_url, {"instances": _candidates(3)})
        assert status == 200 and len(predicted["predictions"]) == 3
        assert worker.is_alive()  # the prediction was answered while the explanation ran
    finally:
        worker.join(180)
    assert results and results[0][0] == 200


def _baseline_values(stack: ServingStack) -> dict[str, float]:
    meta = read_metadata(stack.artifact)
    return {f.name: round(f.default) if f.dtype == "int64" else f.default for f in meta.features}


def _violations(url: str, feature: str, rule: str) -> float:
    metrics = scrape(url, timeout_s=10)
    return metrics.total("berth_transformer_contract_violations_total", feature=feature, rule=rule)


def test_out_of_contract_rating_is_counted_and_filled_with_the_default(
    stack: ServingStack,
) -> None:
    values = _baseline_values(stack)
    _write_probe(stack, {**values, "rating": -1.0}, entity=9002)
    _write_probe(stack, values, entity=9003)
    before = _violations(stack.url, "rating", "range")
    ride = {"customer_id": 7, "trip_distance_km": 6.0, "pickup_hour": 9}
    status, body = _post(
        stack.infer_url,
        {"instances": [{**ride, "driver_id": 9002}, {**ride, "driver_id": 9003}]},
    )
    assert status == 200, body
    bad, clean = body["predictions"]
    assert bad == pytest.approx(clean, abs=1e-6)  # -1 was replaced by the training default
    assert _violations(stack.url, "rating", "range") == before + 1


def test_reject_policy_answers_503_naming_the_feature(stack: ServingStack, tmp_path: Any) -> None:
    _write_probe(stack, {**_baseline_values(stack), "rating": 7.5}, entity=9004)
    http = free_port()
    env = {
        "REDIS_CONNECTION_STRING": stack.redis.connection_string,
        "BERTH_TRANSFORMER_FEATURE_REPO": str(stack.repo),
        "BERTH_TRANSFORMER_MODEL_METADATA": str(stack.artifact / "metadata.json"),
        "BERTH_TRANSFORMER_CONTRACT_POLICY": '{"driver_profile": "reject"}',
    }
    server = transformer_process(
        MODEL, f"{LOOPBACK}:{stack.predictor_ports[1]}", (http, free_port()), env=env,
        log_path=tmp_path / "reject.log",
    )  # fmt: skip
    server.start()
    try:
        server.wait_ready(120)
        url = f"http://{LOOPBACK}:{http}/v1/models/{MODEL}:predict"
        ride = {"customer_id": 7, "trip_distance_km": 6.0, "pickup_hour": 9}
        status, body = _post(url, {"instances": [{**ride, "driver_id": 9004}]})
        assert status == 503 and "rating" in body["error"], body
        status, body = _post(url, {"instances": [{**ride, "driver_id": 1002}]})
        assert status == 200, body  # in-contract drivers are served
        assert _violations(f"http://{LOOPBACK}:{http}", "rating", "range") == 1
    finally:
        server.stop()
