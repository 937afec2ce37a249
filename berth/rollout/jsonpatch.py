"""JSON Patch (RFC 6902, by the ``jsonpatch`` package) and JSON Merge Patch (RFC 7386).

``berth rollout`` sends JSON Patches; applying them here lets tests (and ``--dry-run`` users)
see the object the API server would store and validate it against KServe's CRD schema.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
from jsonpointer import JsonPointer, JsonPointerException

JsonPatch = list[dict[str, Any]]


class PatchConflict(ValueError):
    """A patch does not apply: a ``test`` failed, a path is missing or an op is malformed."""


def pointer(*parts: str | int) -> str:
    """The JSON Pointer (RFC 6901) of ``parts``: ``pointer("a", "b/c", 0) == "/a/b~1c/0"``."""
    path: str = JsonPointer.from_parts(parts).path
    return path


def apply_json_patch(doc: Any, patch: JsonPatch) -> Any:
    """Apply ``patch`` to a copy of ``doc`` atomically; raise :class:`PatchConflict` if it fails."""
    out = copy.deepcopy(doc)
    for op in patch:
        try:
            out = jsonpatch.apply_patch(out, [copy.deepcopy(op)], in_place=True)
        except jsonpatch.JsonPatchTestFailed as exc:  # in the API server's words
            raise PatchConflict(f"testing value {op['path']} failed: test failed ({exc})") from exc
        except (jsonpatch.JsonPatchException, JsonPointerException, KeyError) as exc:
            raise PatchConflict(f"{op.get('op')} {op.get('path')!r}: {exc}") from exc
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
