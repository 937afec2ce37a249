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
        {"op": "move", "from": "/missing", "path": "/bar"},
        {"op": "remove", "path": "/foo/01"},  # RFC 6901: no leading zeros in an index
        {"op": "test", "path": "/foo/0", "value": 1},
        {"op": "add", "path": "foo", "value": 1},  # a pointer starts with "/"
        {"op": "frobnicate", "path": "/foo"},
    ],
)
def test_failures(op: dict[str, object]) -> None:
    with pytest.raises(PatchConflict):
        apply_json_patch({"foo": ["bar"]}, [op])


def test_rfc6902_edge_cases_where_the_old_implementation_differed() -> None:
    """The RFC's own answers (issue 16): the root pointer "", no leading zeros in an index,
    move and copy, and ``test`` comparing JSON values (1 is not true)."""
    doc = {"foo": ["bar", "baz"], "n": 1}
    assert apply_json_patch(doc, [{"op": "replace", "path": "", "value": {"x": 1}}]) == {"x": 1}
    assert apply_json_patch(doc, [{"op": "test", "path": "", "value": doc}]) == doc
    with pytest.raises(PatchConflict):
        apply_json_patch(doc, [{"op": "replace", "path": "/foo/01", "value": "qux"}])
    assert apply_json_patch(doc, [{"op": "replace", "path": "/foo/1", "value": "q"}])["foo"] == [
        "bar",
        "q",
    ]
    moved = apply_json_patch(doc, [{"op": "move", "from": "/foo/0", "path": "/first"}])
    assert moved == {"foo": ["baz"], "n": 1, "first": "bar"}
    copied = apply_json_patch(doc, [{"op": "copy", "from": "/foo", "path": "/bar"}])
    assert copied == {"foo": ["bar", "baz"], "n": 1, "bar": ["bar", "baz"]}
    with pytest.raises(PatchConflict, match="test failed"):
        apply_json_patch(doc, [{"op": "test", "path": "/n", "value": True}])
    assert apply_json_patch(doc, [{"op": "test", "path": "/n", "value": 1}]) == doc
    assert doc == {"foo": ["bar", "baz"], "n": 1}


def test_a_failed_patch_changes_nothing_and_names_the_path() -> None:
    doc = {"spec": {"a": 1}}
    patch = [
        {"op": "replace", "path": "/spec/a", "value": 2},
        {"op": "test", "path": "/spec/b", "value": 3},
    ]
    with pytest.raises(PatchConflict, match="/spec/b"):
        apply_json_patch(doc, patch)
    assert doc == {"spec": {"a": 1}}


def test_added_values_are_copies() -> None:
    value = {"k": [1]}
    out = apply_json_patch({}, [{"op": "add", "path": "/v", "value": value}])
    out["v"]["k"].append(2)
    assert value == {"k": [1]}


def test_rfc7386_example() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    patch = {"a": "z", "c": {"f": None}}
    assert apply_merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}}
    assert pointer("metadata", "annotations", "a/b~c") == "/metadata/annotations/a~1b~0c"
