"""The YAML of ``manifests/``: block style in the objects' own key order, multi-line strings as
literal blocks; one file per object, named for its kind and name."""

from __future__ import annotations

from functools import cache
from typing import Any

from berth.kube.chart import Obj, key


@cache
def _dumper() -> Any:
    """A SafeDumper writing multi-line strings (scripts, configs) as literal blocks."""
    import yaml

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        literal = "\n" in value and all(line == line.rstrip() for line in value.split("\n"))
        return dumper.represent_scalar(
            "tag:yaml.org,2002:str", value, style="|" if literal else None
        )

    dumper: Any = type("LiteralDumper", (yaml.SafeDumper,), {})
    dumper.add_representer(str, text)
    return dumper


def dump(data: Any) -> str:
    """Block-style YAML in the objects' own key order."""
    import yaml

    out: str = yaml.dump(
        data, Dumper=_dumper(), sort_keys=False, default_flow_style=False, width=4096
    )
    return out


def file_name(obj: Obj) -> str:
    _, kind, _, name = key(obj)
    return f"{kind.lower()}-{name}.yaml"
