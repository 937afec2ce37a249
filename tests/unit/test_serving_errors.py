"""The one mapping from whatever a model call raised to what goes on the wire."""

from __future__ import annotations

from typing import Any

import pytest
from kserve.errors import InvalidInput

from berth.errors import DependencyUnavailableError, InvalidInputError, OverloadedError
from berth.serving.errors import WireError, to_wire


def _mapped(exc: Exception) -> tuple[str, Exception]:
    try:
        raise exc
    except Exception as caught:
        return to_wire(caught, "req-1")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInputError("driver_id: must be an integer", field="driver_id"), "400"),
        (OverloadedError(), "429"),
        (DependencyUnavailableError("online store"), "503"),
    ],
)
def test_berth_errors_go_out_as_themselves(error: Exception, status: str) -> None:
    outcome, wire = _mapped(error)
    assert outcome == status
    assert isinstance(wire, WireError) and wire.error is error and wire.request_id == "req-1"


def test_kserve_invalid_input_stays_a_400_for_kserve() -> None:
    error = InvalidInput("bad tensor")
    assert _mapped(error) == ("400", error)


def test_anything_else_is_a_500_without_internals() -> None:
    outcome, wire = _mapped(RuntimeError("secret path /srv/model.onnx"))
    assert outcome == "500" and isinstance(wire, WireError)
    assert wire.error.status == 500 and "secret" not in str(wire)


def test_served_binds_the_request_id_and_maps_what_the_call_raised() -> None:
    from berth.observability import REQUEST_ID_HEADER, request_id_var
    from berth.serving.errors import Served, served

    headers: dict[str, str] = {}
    call = Served.of(headers)
    assert headers[REQUEST_ID_HEADER] == call.request_id  # KServe echoes it in the response
    assert Served.of({REQUEST_ID_HEADER: "from-client"}).request_id == "from-client"
    with served(call):
        assert request_id_var.get() == call.request_id
    assert call.outcome == "200" and request_id_var.get() != call.request_id

    refused = Served("r-2")
    with pytest.raises(WireError) as wire, served(refused):
        raise OverloadedError()
    assert refused.outcome == "429" and wire.value.request_id == "r-2"
    kserve_own = Served("r-3")
    with pytest.raises(InvalidInput), served(kserve_own):
        raise InvalidInput("bad tensor")
    assert kserve_own.outcome == "400"


def test_request_ids_are_short_printable_ascii() -> None:
    from berth.serving.errors import valid_request_id

    assert valid_request_id("abc-123_X.y") == "abc-123_X.y"
    for bad in (None, "", "café", "a b", "a\nb", "x" * 129):
        assert valid_request_id(bad) is None, bad


def test_log_rate_keeps_the_first_lines_and_counts_the_rest(monkeypatch: Any) -> None:
    import berth.serving.lograte as lograte

    now = [100.0]
    monkeypatch.setattr(lograte.time, "monotonic", lambda: now[0])
    rate = lograte.LogRate(limit=2, window_s=10.0)
    assert [rate.allow("e") for _ in range(5)] == [0, 0, None, None, None]
    assert rate.allow("other") == 0
    now[0] += 10.0
    assert rate.allow("e") == 3  # the next line says how many were left out
    assert rate.allow("e") == 0
