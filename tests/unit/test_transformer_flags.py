"""KServe's predictor flags on the transformer set Berth's settings (or are refused)."""

from __future__ import annotations

import pytest

from berth.serving.config import ConfigError
from berth_transformer.__main__ import build_parser, configure

BASE = ["--model_name", "m", "--predictor_host", "127.0.0.1:1"]


def settings_for(flags: list[str]) -> object:
    parser = build_parser()
    return configure(parser, parser.parse_args([*BASE, *flags]))


def test_flags_set_tls_timeout_and_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("BERTH_TRANSFORMER_"):
            monkeypatch.delenv(name)
    s = settings_for(
        [
            *("--predictor_use_ssl", "true"),
            *("--predictor_request_timeout_seconds", "2"),
            *("--predictor_request_retries", "2"),
        ]
    )
    assert (s.predictor_tls, s.predictor_timeout_ms, s.predictor_retries) == (True, 2000, 2)  # type: ignore[attr-defined]
    plain = settings_for([])
    assert (plain.predictor_tls, plain.predictor_timeout_ms, plain.predictor_retries) == (  # type: ignore[attr-defined]
        False,
        1000,
        1,
    )


def test_a_flag_and_its_variable_together_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_TRANSFORMER_PREDICTOR_RETRIES", "1")
    with pytest.raises(ConfigError) as refused:
        settings_for(["--predictor_request_retries", "2"])
    assert refused.value.name == "--predictor_request_retries"
    assert "BERTH_TRANSFORMER_PREDICTOR_RETRIES" in refused.value.reason
