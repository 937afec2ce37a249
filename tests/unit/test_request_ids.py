"""Request, trace and span ids (berth.observability): W3C-shaped, unique, and different in a
forked child (the servers' workers fork) from the parent's."""

from __future__ import annotations

import os
import re

from berth.observability import (
    TRACEPARENT_HEADER,
    new_request_id,
    outgoing_headers,
    traceparent_of,
    traceparent_var,
)

TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


def test_ids_have_the_w3c_shapes() -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", new_request_id())
    new = traceparent_of({})
    assert TRACEPARENT.fullmatch(new) and new.endswith("-00")
    token = traceparent_var.set(new)
    try:
        child = outgoing_headers("rid")[TRACEPARENT_HEADER]
    finally:
        traceparent_var.reset(token)
    assert TRACEPARENT.fullmatch(child)
    assert child.split("-")[1] == new.split("-")[1] and child.split("-")[2] != new.split("-")[2]


def test_ids_do_not_repeat() -> None:
    ids = [new_request_id() for _ in range(20_000)]
    spans = [traceparent_of({}).split("-")[2] for _ in range(20_000)]
    assert len(set(ids)) == len(ids) and len(set(spans)) == len(spans)


def test_a_forked_child_makes_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32 and child != new_request_id()
