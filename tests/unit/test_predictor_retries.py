"""The one bounded retry policy of predictor calls (berth_transformer.predictor_client)."""

from __future__ import annotations

import asyncio

import pytest

from berth.errors import BerthError, DeadlineExceededError, DependencyUnavailableError
from berth_transformer.predictor_client import with_retries


def failing(errors: list[BerthError]) -> tuple[list[int], object]:
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "answer"

    return calls, call


def test_an_unanswered_call_is_sent_again_up_to_the_bound() -> None:
    calls, call = failing([DependencyUnavailableError("predictor", "UNAVAILABLE")] * 2)
    assert asyncio.run(with_retries(call, 2)) == "answer"  # type: ignore[arg-type]
    assert len(calls) == 3
    calls, call = failing([DependencyUnavailableError("predictor", "UNAVAILABLE")] * 3)
    with pytest.raises(DependencyUnavailableError):
        asyncio.run(with_retries(call, 2))  # type: ignore[arg-type]
    assert len(calls) == 3


@pytest.mark.parametrize("error", [DeadlineExceededError("predictor"), BerthError("500")])
def test_a_timeout_or_an_answer_is_never_retried(error: BerthError) -> None:
    calls, call = failing([error])
    with pytest.raises(type(error)):
        asyncio.run(with_retries(call, 3))  # type: ignore[arg-type]
    assert len(calls) == 1


def test_no_retries_by_default() -> None:
    calls, call = failing([DependencyUnavailableError("predictor", "refused")])
    with pytest.raises(DependencyUnavailableError):
        asyncio.run(with_retries(call, 0))  # type: ignore[arg-type]
    assert len(calls) == 1
