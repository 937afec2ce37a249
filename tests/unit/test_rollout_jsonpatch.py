"""JSON Patch (RFC 6902) and Merge Patch (RFC 7386), on the RFCs' own examples."""

from __future__ import annotations

import pytest

from berth.rollout.jsonpatch import PatchConflict, apply_json_patch, apply_merge_patch, pointer


def test_rfc6902_examples() -> None:
    doc = {"foo": ["bar", "baz"], "a/b": 1}
    assert apply_json_patch(doc, [{"op": "add", "path": "/foo/1", "value": "qux"}]) == {
        "foo": ["bar", "qux", "baz"],
        "a/b": 1,
    }
    assert apply_json_patch(doc, [{"op": "remove", "path": "/foo/0"}])["foo"] == ["baz"]
    assert apply_json_patch(doc, [{"op": "add", "path": "/foo/-", "value": 1}])["foo"][-1] == 1
    assert (
        apply_json_patch(doc, [{"op": "replace", "path": pointer("a/b"), "value": 2}])["a/b"] == 2
    )
    assert doc == {"foo": ["bar", "baz"], "a/b": 1}  # never modified in place


@pytest.mark.parametrize(
    "op",
    [
        {"op": "test", "path": "/foo/0", "value": "nope"},
        {"op": "remove", "path": "/missing"},
        {"op": "replace", "path": "/foo/5", "value": 1},
        {"op": "add", "path": "/missing/deeper", "value": 1},
        {"op": "move", "from": "/foo", "path": "/bar"},
    ],
)
def test_failures(op: dict[str, object]) -> None:
    with pytest.raises(PatchConflict):
        apply_json_patch({"foo": ["bar"]}, [op])


def test_rfc7386_example() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    patch = {"a": "z", "c": {"f": None}}
    assert apply_merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}}
    assert pointer("metadata", "annotations", "a/b~c") == "/metadata/annotations/a~1b~0c"
