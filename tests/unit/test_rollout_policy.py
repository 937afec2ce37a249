"""The rollout policy file: the example parses, unknown keys and bad values are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.rollout.errors import RolloutError
from berth.rollout.policy import RolloutPolicy, load_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "berth" / "rollout" / "policy.example.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_example_documents_every_key() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.max_p99_ms == 250 and policy.max_shadow_delta_p99 == 0.05
    text = EXAMPLE.read_text()
    for key in [
        *RolloutPolicy.model_fields,
        *RolloutPolicy.model_fields["metrics"].default.model_fields,
    ]:
        assert f"{key}:" in text, key


def test_defaults(tmp_path: Path) -> None:
    assert load_policy(None) == RolloutPolicy()
    assert load_policy(write(tmp_path, "")) == RolloutPolicy()
    policy = load_policy(write(tmp_path, "min_samples: 5\nmetrics: {version_label: v}\n"))
    assert policy.min_samples == 5 and policy.metrics.version_label == "v"
    defaults = RolloutPolicy()
    assert (defaults.alpha, defaults.min_samples, defaults.min_effect_ms) == (0.01, 200, 2.0)
    assert (defaults.fail_looks, defaults.pass_looks) == (2, 3)
    assert policy.metrics.request_histogram == "berth_transformer_model_request_seconds"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_error_rate: 0.1\n", "max_error_rate: Extra inputs are not permitted"),
        ("metrics: {request_histgram: x}\n", "metrics.request_histgram: Extra inputs"),
        ("max_error_rate_delta: 1.5\n", "max_error_rate_delta"),
        ("max_p99_ratio: 0.9\n", "max_p99_ratio"),
        ("max_p99_ms: 0\n", "max_p99_ms"),
        ("max_shadow_delta_p99: -0.1\n", "max_shadow_delta_p99"),
        ("min_samples: 0\n", "min_samples"),
        ("min_requests: 100\n", "min_requests: Extra inputs"),
        ("alpha: 0.5\n", "alpha"),
        ("alpha: 0\n", "alpha"),
        ("min_effect_ms: -1\n", "min_effect_ms"),
        ("fail_looks: 0\n", "fail_looks"),
        ("pass_looks: 0\n", "pass_looks"),
        ("window: 10 minutes\n", "window"),
        ("metrics: {error_outcomes: '5..('}\n", "not a regular expression"),
        ("- a list\n", "must be a mapping"),
        ("key: [unclosed\n", "cannot read policy"),
    ],
)
def test_rejects(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(RolloutError, match=message.replace("(", r"\(")):
        load_policy(write(tmp_path, text))
