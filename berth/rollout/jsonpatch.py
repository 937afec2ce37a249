"""JSON Patch (RFC 6902: add, remove, replace, test) and JSON Merge Patch (RFC 7386).

``berth rollout`` sends JSON Patches; applying them here lets tests (and ``--dry-run`` users)
see the object the API server would store and validate it against KServe's CRD schema.
"""

from __future__ import annotations

import copy
from typing import Any

JsonPatch = list[dict[str, Any]]


class PatchConflict(ValueError):
    """A patch does not apply: a ``test`` failed or a path is missing."""


def pointer(*parts: str | int) -> str:
    """The JSON Pointer (RFC 6901) of ``parts``: ``pointer("a", "b/c", 0) == "/a/b~1c/0"``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _split(path: str) -> list[str]:
    if not path.startswith("/"):
        raise PatchConflict(f"bad JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, path: str) -> tuple[Any, str]:
    parts = _split(path)
    node = doc
    for part in parts[:-1]:
        node = _child(node, part, path)
    return node, parts[-1]


def _child(node: Any, key: str, path: str) -> Any:
    if isinstance(node, dict) and key in node:
        return node[key]
    if isinstance(node, list) and key.isdigit() and int(key) < len(node):
        return node[int(key)]
    raise PatchConflict(f"path {path!r} does not exist")


def _get(doc: Any, path: str) -> Any:
    node = doc
    for part in _split(path) if path else []:
        node = _child(node, part, path)
    return node


def apply_json_patch(doc: Any, patch: JsonPatch) -> Any:
    """Apply ``patch`` to a copy of ``doc`` atomically; raise :class:`PatchConflict` if it fails."""
    out = copy.deepcopy(doc)
    for op in patch:
        kind, path = op["op"], op["path"]
        if kind == "test":
            if _get(out, path) != op["value"]:
                raise PatchConflict(
                    f"testing value {path} failed: test failed"
                )  # as the API server
            continue
        parent, key = _parent(out, path)
        if isinstance(parent, list):
            index = len(parent) if key == "-" else int(key) if key.isdigit() else -1
            limit = len(parent) if kind == "add" else len(parent) - 1
            if not 0 <= index <= limit:
                raise PatchConflict(f"index out of range at {path!r}")
            if kind == "add":
                parent.insert(index, copy.deepcopy(op["value"]))
            elif kind == "remove":
                del parent[index]
            elif kind == "replace":
                parent[index] = copy.deepcopy(op["value"])
            else:
                raise PatchConflict(f"unsupported op {kind!r}")
        elif isinstance(parent, dict):
            if kind in ("remove", "replace") and key not in parent:
                raise PatchConflict(f"path {path!r} does not exist")
            if kind in ("add", "replace"):
                parent[key] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del parent[key]
            else:
                raise PatchConflict(f"unsupported op {kind!r}")
        else:
            raise PatchConflict(f"path {path!r} does not exist")
    return out


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge_patch(out.get(key), value)
    return out
