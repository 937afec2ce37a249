"""``python -m benchmarks interleave``: its options and its summary (pure parts)."""

from __future__ import annotations

import pytest

from benchmarks.interleave import Stack, order, stacks, summarize


def test_stacks_and_their_pids_by_name() -> None:
    got = stacks(
        ["before=http://127.0.0.1:1", "after=http://127.0.0.1:2"],
        ["after=7", "before=5", "after=8"],
    )
    assert got == [
        Stack("before", "http://127.0.0.1:1", (5,)),
        Stack("after", "http://127.0.0.1:2", (7, 8)),
    ]


@pytest.mark.parametrize(
    ("targets", "pids", "message"),
    [
        (["a=http://127.0.0.1:1"], [], "two or more"),
        (["a=x", "a=y"], [], "each NAME once"),
        (["a=x", "http://127.0.0.1:2"], [], "NAME=VALUE"),
        (["a=x", "b=y"], ["c=1"], "no --stack named 'c'"),
        (["a=x", "b=y"], ["a=one"], "not a process id"),
    ],
)
def test_bad_options_are_named(targets: list[str], pids: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stacks(targets, pids)


def test_rounds_alternate_the_order() -> None:
    assert order(["a", "b"], 4) == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert order(["a", "b", "c"], 2) == ["a", "b", "c", "c", "b", "a"]


def test_summary_is_the_median_per_stack_and_the_ratio_to_the_first() -> None:
    def p(stack: str, cpu: float | None, p99: float, errors: int = 0) -> dict[str, object]:
        return {
            "stack": stack,
            "cpu_ms_per_request": cpu,
            "p50_ms": 1.0,
            "p99_ms": p99,
            "errors": {"503": errors} if errors else {},
        }

    points = [p("a", 4.0, 9), p("b", 3.0, 8), p("b", 3.2, 30, 2), p("a", 4.4, 12), p("a", 9.0, 10)]
    summary = summarize(points, ["a", "b"])
    assert summary["a"]["cpu_ms_per_request"] == 4.4 and summary["a"]["p99_ms"] == 10
    assert summary["b"]["cpu_ms_per_request"] == 3.1 and summary["b"]["errors"] == 2
    assert summary["b"]["cpu_over_first"] == round(3.1 / 4.4, 3)
    no_pids = summarize([p("a", None, 1), p("b", 2.0, 1)], ["a", "b"])
    assert no_pids["a"]["cpu_ms_per_request"] is None and no_pids["b"]["cpu_over_first"] is None
