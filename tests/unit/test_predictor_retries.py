"""The one bounded retry policy of predictor calls (berth_transformer.predictor_client)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from berth.errors import BerthError, DeadlineExceededError, DependencyUnavailableError
from berth_transformer.predictor_client import with_retries


def failing(errors: list[BerthError]) -> tuple[list[float], object]:
    calls: list[float] = []

    async def call(left_s: float, retry: bool) -> str:
        calls.append(left_s)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "answer"

    return calls, call


def test_an_unanswered_call_is_sent_again_up_to_the_bound() -> None:
    calls, call = failing([DependencyUnavailableError("predictor", "UNAVAILABLE")] * 2)
    assert asyncio.run(with_retries(call, 2, 5.0)) == "answer"  # type: ignore[arg-type]
    assert len(calls) == 3
    calls, call = failing([DependencyUnavailableError("predictor", "UNAVAILABLE")] * 3)
    with pytest.raises(DependencyUnavailableError):
        asyncio.run(with_retries(call, 2, 5.0))  # type: ignore[arg-type]
    assert len(calls) == 3


@pytest.mark.parametrize("error", [DeadlineExceededError("predictor"), BerthError("500")])
def test_a_timeout_or_an_answer_is_never_retried(error: BerthError) -> None:
    calls, call = failing([error])
    with pytest.raises(type(error)):
        asyncio.run(with_retries(call, 3, 5.0))  # type: ignore[arg-type]
    assert len(calls) == 1


def test_each_attempt_gets_what_is_left_of_the_timeout() -> None:
    calls, call = failing([DependencyUnavailableError("predictor", "UNAVAILABLE")] * 3)
    assert asyncio.run(with_retries(call, 3, 1.0)) == "answer"  # type: ignore[arg-type]
    assert calls[0] <= 1.0 and all(b < a for a, b in itertools.pairwise(calls))
    assert calls[-1] <= 1.0 - 0.05 - 0.1 - 0.2  # the three backoffs came out of the timeout
    calls, call = failing([DependencyUnavailableError("predictor", "UNAVAILABLE")] * 3)
    with pytest.raises(DependencyUnavailableError):  # no time left for the third retry
        asyncio.run(with_retries(call, 3, 0.2))  # type: ignore[arg-type]
    assert len(calls) == 3


def test_zero_retries_sends_once() -> None:
    calls, call = failing([DependencyUnavailableError("predictor", "refused")])
    with pytest.raises(DependencyUnavailableError):
        asyncio.run(with_retries(call, 0, 5.0))  # type: ignore[arg-type]
    assert len(calls) == 1


def test_only_the_attempts_after_the_first_are_marked_retries() -> None:
    flags: list[bool] = []

    async def call(left_s: float, retry: bool) -> str:
        flags.append(retry)
        if len(flags) < 3:
            raise DependencyUnavailableError("predictor", "UNAVAILABLE")
        return "answer"

    assert asyncio.run(with_retries(call, 2, 5.0)) == "answer"
    assert flags == [False, True, True]
