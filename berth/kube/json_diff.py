"""An overlay's difference to the base as RFC 6902 operations, named list items tested."""

from __future__ import annotations

import copy
from typing import Any


def json_patch(old: Any, new: Any) -> list[dict[str, Any]]:
    """RFC 6902 operations turning ``old`` into ``new`` (``jsonpatch.make_patch``), each change
    inside a named list item (env var, container, port) preceded by a ``test`` of that name:
    readable, and kustomize refuses the patch if the base's list order ever changes under it."""
    import jsonpatch

    doc = copy.deepcopy(old)
    out: list[dict[str, Any]] = []
    named: list[tuple[str, Any]] = []  # the named items the previous operation was inside
    for op in jsonpatch.make_patch(old, new).patch:
        items = _named_items(doc, op["path"], op["op"] != "add")
        out += [
            {"op": "test", "path": path, "value": name}
            for path, name in items
            if (path, name) not in named
        ]
        named = items
        out.append(op)
        doc = jsonpatch.apply_patch(doc, [op], in_place=True)
    return out


def _named_items(doc: Any, path: str, itself: bool) -> list[tuple[str, Any]]:
    """(pointer, name) of each list item with a ``name`` that holds ``path`` (or, with
    ``itself``, is at ``path``), outermost first."""
    from jsonpointer import JsonPointer

    parts = JsonPointer(path).parts
    found: list[tuple[str, Any]] = []
    node = doc
    for depth, part in enumerate(parts if itself else parts[:-1]):
        in_list = isinstance(node, list)
        node = node[int(part)] if in_list else node[part]
        if in_list and isinstance(node, dict) and "name" in node:
            found.append((JsonPointer.from_parts([*parts[: depth + 1], "name"]).path, node["name"]))
    return found
