"""The chart's alert rules, checked by Prometheus's own tools and a real Prometheus.

The PrometheusRule is rendered by the Helm SDK (``berth.kube.chart``); its ``spec`` is a
Prometheus rule file. ``promtool check rules`` parses it; ``promtool test rules`` runs, for
EVERY alert, a firing case (series that must raise it, with its labels and annotations) and
a quiet case (series near it that must not), at an evaluation time past the rule's ``for``.
A new alert without cases fails :func:`test_every_alert_has_a_firing_and_a_quiet_case`.

The live test loads the same rules into Debian's ``prometheus`` scraping a real stack
(``serving_stack``: redis-server, predictor, transformer) every second: every rule evaluates
without error, and with Redis hung (SIGSTOP) the transformer's feature reads time out and
BerthOnlineStoreErrors fires (a copy of the rules with ``for`` removed shows the firing
without a five-minute wait; the rendered rule's own ``for`` is what the promtool cases test).
"""

from __future__ import annotations

import asyncio
import copy
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.kube.chart import NAMESPACE, render_objects

NS = f'namespace="{NAMESPACE}"'
EVAL = "60m"  # past every rule's `for` (at most 30m) plus its range (at most 15m)

# alert -> (firing series, quiet series); each series "metric{labels}": "promtool values".
Series = dict[str, str]
CASES: dict[str, tuple[Series, Series | list[Series]]] = {
    "BerthHighErrorRate": (
        {
            f'berth_transformer_request_seconds_count{{{NS},outcome="200"}}': "0+100x70",
            f'berth_transformer_request_seconds_count{{{NS},outcome="503"}}': "0+5x70",
        },
        {  # 0.5% errors: under the 1% threshold
            f'berth_transformer_request_seconds_count{{{NS},outcome="200"}}': "0+100x70",
            f'berth_transformer_request_seconds_count{{{NS},outcome="503"}}': "0+0.5x70",
        },
    ),
    "BerthHighLatency": (
        {
            f'berth_transformer_request_seconds_bucket{{{NS},le="0.1"}}': "0+0x70",
            f'berth_transformer_request_seconds_bucket{{{NS},le="0.5"}}': "0+90x70",
            f'berth_transformer_request_seconds_bucket{{{NS},le="1"}}': "0+100x70",
            f'berth_transformer_request_seconds_bucket{{{NS},le="+Inf"}}': "0+100x70",
        },
        {  # 95% under 0.1 s, the rest under 0.5 s: p99 below 0.5 s
            f'berth_transformer_request_seconds_bucket{{{NS},le="0.1"}}': "0+95x70",
            f'berth_transformer_request_seconds_bucket{{{NS},le="0.5"}}': "0+100x70",
            f'berth_transformer_request_seconds_bucket{{{NS},le="1"}}': "0+100x70",
            f'berth_transformer_request_seconds_bucket{{{NS},le="+Inf"}}': "0+100x70",
        },
    ),
    "BerthOverloaded": (
        {  # the predictor sheds while the transformer has refused nothing for overload yet
            f'berth_transformer_rejected_total{{{NS},reason="draining"}}': "0+0x70",
            f"berth_predictor_rejected_total{{{NS}}}": "0+5x70",
        },
        {  # refusals while draining are not overload
            f'berth_transformer_rejected_total{{{NS},reason="overload"}}': "0+0x70",
            f'berth_transformer_rejected_total{{{NS},reason="draining"}}': "0+5x70",
            f"berth_predictor_rejected_total{{{NS}}}": "0+0x70",
        },
    ),
    "BerthStaleFeatures": (
        {
            f'berth_transformer_features_stale_total{{{NS},view="driver_hourly_stats",action="filled"}}': "0+10x70",  # noqa: E501
            f"berth_transformer_candidates_sum{{{NS}}}": "0+100x70",
        },
        {
            f'berth_transformer_features_stale_total{{{NS},view="driver_hourly_stats",action="filled"}}': "0+2x70",  # noqa: E501
            f"berth_transformer_candidates_sum{{{NS}}}": "0+100x70",
        },
    ),
    "BerthMissingFeatures": (
        {
            f'berth_transformer_features_missing_total{{{NS},view="customer_profile",action="filled"}}': "0+10x70",  # noqa: E501
            f"berth_transformer_candidates_sum{{{NS}}}": "0+100x70",
        },
        {
            f'berth_transformer_features_missing_total{{{NS},view="customer_profile",action="filled"}}': "0+2x70",  # noqa: E501
            f"berth_transformer_candidates_sum{{{NS}}}": "0+100x70",
        },
    ),
    "BerthContractViolations": (
        {
            f'berth_transformer_contract_violations_total{{{NS},feature="rating",rule="range"}}': "0+5x70",  # noqa: E501
            f"berth_transformer_candidates_sum{{{NS}}}": "0+100x70",
        },
        {  # 0.5% of rows: under the 1% threshold
            f'berth_transformer_contract_violations_total{{{NS},feature="rating",rule="range"}}': "0+0.5x70",  # noqa: E501
            f"berth_transformer_candidates_sum{{{NS}}}": "0+100x70",
        },
    ),
    "BerthOnlineStoreErrors": (
        {
            f'berth_transformer_feature_read_seconds_count{{{NS},outcome="ok"}}': "0+100x70",
            f'berth_transformer_feature_read_seconds_count{{{NS},outcome="timeout"}}': "0+1x70",
        },
        {
            f'berth_transformer_feature_read_seconds_count{{{NS},outcome="ok"}}': "0+100x70",
            f'berth_transformer_feature_read_seconds_count{{{NS},outcome="timeout"}}': "0+0x70",
        },
    ),
    "BerthFeatureDrift": (
        {
            f'berth_transformer_feature_psi{{{NS},feature="trip_distance_km"}}': "0.4x70",
            f"berth_transformer_drift_window_rows{{{NS}}}": "800x70",
            f"berth_transformer_drift_min_rows{{{NS}}}": "500x70",
        },
        [
            {  # a watched feature under the threshold; an unwatched hourly aggregate above it
                f'berth_transformer_feature_psi{{{NS},feature="trip_distance_km"}}': "0.1x70",
                f'berth_transformer_feature_psi{{{NS},feature="conv_rate"}}': "0.9x70",
                f"berth_transformer_drift_window_rows{{{NS}}}": "800x70",
                f"berth_transformer_drift_min_rows{{{NS}}}": "500x70",
            },
            {  # above the threshold, but the window holds fewer rows than its minimum
                f'berth_transformer_feature_psi{{{NS},feature="trip_distance_km"}}': "0.9x70",
                f"berth_transformer_drift_window_rows{{{NS}}}": "120x70",
                f"berth_transformer_drift_min_rows{{{NS}}}": "500x70",
            },
        ],
    ),
    "BerthShadowDisagrees": (
        {
            f'berth_transformer_shadow_delta_bucket{{{NS},le="0.01"}}': "0+10x70",
            f'berth_transformer_shadow_delta_bucket{{{NS},le="0.1"}}': "0+20x70",
            f'berth_transformer_shadow_delta_bucket{{{NS},le="0.5"}}': "0+100x70",
            f'berth_transformer_shadow_delta_bucket{{{NS},le="+Inf"}}': "0+100x70",
        },
        {
            f'berth_transformer_shadow_delta_bucket{{{NS},le="0.01"}}': "0+95x70",
            f'berth_transformer_shadow_delta_bucket{{{NS},le="0.1"}}': "0+100x70",
            f'berth_transformer_shadow_delta_bucket{{{NS},le="0.5"}}': "0+100x70",
            f'berth_transformer_shadow_delta_bucket{{{NS},le="+Inf"}}': "0+100x70",
        },
    ),
}
FIRING_LABELS = {"BerthFeatureDrift": {"feature": "trip_distance_km"}}


def rule_spec() -> dict[str, Any]:
    """The rendered PrometheusRule's ``spec`` (a Prometheus rule file's content)."""
    values = {"metrics": {"prometheusRule": {"enabled": True}}}
    rules = [o for o in render_objects(values) if o["kind"] == "PrometheusRule"]
    assert len(rules) == 1, "metrics.prometheusRule.enabled renders no PrometheusRule"
    spec: dict[str, Any] = rules[0]["spec"]
    return spec


def alerts(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in spec["groups"] for r in g["rules"] if "alert" in r}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.skip("promtool not found (apt-get install prometheus)")
    return found


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "berth-rules.yaml"
    path.write_text(yaml.safe_dump(rule_spec(), sort_keys=False))
    return path


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)


def test_promtool_check_rules(promtool: str, rules_file: Path) -> None:
    done = run(promtool, "check", "rules", str(rules_file))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alerts(rule_spec()))} rules found" in done.stdout


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    assert set(alerts(rule_spec())) == set(CASES)


def expected(rule: dict[str, Any], name: str) -> dict[str, Any]:
    labels = {**rule.get("labels", {}), **FIRING_LABELS.get(name, {})}
    annotations = {
        k: v.replace("{{ $labels.feature }}", labels.get("feature", ""))
        for k, v in rule.get("annotations", {}).items()
    }
    return {"exp_labels": labels, "exp_annotations": annotations}


def unit_tests(spec: dict[str, Any], rules_name: str) -> dict[str, Any]:
    tests = []
    for name, rule in alerts(spec).items():
        firing, quiet = CASES[name]  # quiet: one case, or a list of them
        quiets = quiet if isinstance(quiet, list) else [quiet]
        for series, exp in ((firing, [expected(rule, name)]), *((q, []) for q in quiets)):
            tests.append(
                {
                    "name": f"{name} {'fires' if exp else 'stays quiet'}",
                    "interval": "1m",
                    "input_series": [{"series": s, "values": v} for s, v in series.items()],
                    "alert_rule_test": [{"eval_time": EVAL, "alertname": name, "exp_alerts": exp}],
                }
            )
    return {"rule_files": [rules_name], "evaluation_interval": "1m", "tests": tests}


def test_promtool_test_rules_fires_and_stays_quiet_for_every_alert(
    promtool: str, rules_file: Path
) -> None:
    spec = rule_spec()
    cases = rules_file.with_name("berth-rules.test.yaml")
    cases.write_text(yaml.safe_dump(unit_tests(spec, rules_file.name), sort_keys=False))
    done = run(promtool, "test", "rules", cases.name, cwd=rules_file.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_a_quiet_case_that_fires_fails_promtool(promtool: str, rules_file: Path) -> None:
    """The harness can fail: expecting silence where the series fire is reported."""
    spec = rule_spec()
    doc = unit_tests(spec, rules_file.name)
    firing = doc["tests"][0]
    firing["alert_rule_test"][0]["exp_alerts"] = []
    doc["tests"] = [firing]
    cases = rules_file.with_name("broken.test.yaml")
    cases.write_text(yaml.safe_dump(doc, sort_keys=False))
    done = run(promtool, "test", "rules", cases.name, cwd=rules_file.parent)
    assert done.returncode != 0 and "BerthHighErrorRate" in done.stdout + done.stderr


# -- live: a real Prometheus over a real stack ----------------------------------------------


def without_for(spec: dict[str, Any]) -> dict[str, Any]:
    instant = copy.deepcopy(spec)
    for group in instant["groups"]:
        group["name"] += ".instant"
        for rule in group["rules"]:
            rule.pop("for", None)
    return instant


def rules_state(url: str) -> dict[tuple[str, str], dict[str, Any]]:
    import json

    with urllib.request.urlopen(f"{url}/api/v1/rules", timeout=10) as resp:
        groups = json.loads(resp.read())["data"]["groups"]
    return {(g["name"], r["name"]): r for g in groups for r in g["rules"]}


@pytest.mark.integration
@pytest.mark.slow
def test_rules_evaluate_on_a_live_stack_and_fire_on_an_online_store_hang(
    serving_stack: Callable[..., AbstractContextManager[Any]], tmp_path: Path
) -> None:
    from berth.loadtest import instances, open_loop
    from berth.stack import PrometheusServer

    if not PrometheusServer.available():
        pytest.skip("prometheus binary not found (apt-get install prometheus)")
    spec = rule_spec()
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "instant.yaml").write_text(yaml.safe_dump(without_for(spec)))
    with serving_stack("alerts") as stack:
        target = stack.url.removeprefix("http://")
        prometheus = PrometheusServer(
            [target],
            rule_files=[tmp_path / "rules.yaml", tmp_path / "instant.yaml"],
            labels={"namespace": NAMESPACE},
        ).start()
        try:
            prometheus.wait_scraped()
            asyncio.run(open_loop(stack.infer_url, instances(), 20, 4))  # healthy traffic
            time.sleep(3)
            healthy = rules_state(prometheus.url)
            stack.redis.pause()
            try:
                hung = asyncio.run(open_loop(stack.infer_url, instances(), 20, 4))
                time.sleep(4)
                state = rules_state(prometheus.url)
            finally:
                stack.redis.resume()
        finally:
            prometheus.close()
    assert len(healthy) == 2 * len(CASES)
    assert {r["health"] for r in healthy.values()} == {"ok"}, healthy  # every rule evaluates
    assert healthy[("berth.driver-ranking.instant", "BerthOnlineStoreErrors")]["state"] == (
        "inactive"
    )
    assert hung.count(504) > 0, hung.statuses()  # reads timed out while Redis hung
    assert {r["health"] for r in state.values()} == {"ok"}
    assert state[("berth.driver-ranking.instant", "BerthOnlineStoreErrors")]["state"] == "firing"
    # The rendered rule waits its `for: 5m` before firing: pending now.
    assert state[("berth.driver-ranking", "BerthOnlineStoreErrors")]["state"] == "pending"
