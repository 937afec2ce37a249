"""Start-up configuration checks both containers share: every accepted flag and
``BERTH_<ROLE>_*`` variable does what it says, or the process refuses to start.

A refusal is one JSON log line naming the flag or variable, the reason and the fix, and exit
code 2 (configuration errors exit 2; an artifact that fails verification keeps exit 1).
Unknown variables under the component's own prefix are refused with the closest valid name;
other ``BERTH_*`` names (build, test and CI settings) are left alone.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from collections.abc import Mapping
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError

from berth.errors import BerthError
from berth.observability import configure_logging, get_logger

log = get_logger(__name__)
CONFIG_EXIT = 2
S = TypeVar("S", bound=BaseSettings)


class ConfigError(BerthError):
    """A flag or variable that cannot be honoured: ``name``, why (``reason``), what to do."""

    def __init__(self, name: str, reason: str, fix: str) -> None:
        super().__init__(f"{name}: {reason}; {fix}")
        self.name, self.reason, self.fix = name, reason, fix


def refuse(component: str, error: ConfigError) -> int:
    """Log the refusal (one JSON line) and return the exit code."""
    configure_logging(component)
    log.error(
        "refusing to start: configuration error",
        setting=error.name,
        reason=error.reason,
        fix=error.fix,
    )
    return CONFIG_EXIT


def load_settings(cls: type[S], environ: Mapping[str, str] | None = None) -> S:
    """``cls()`` from the environment, or a :class:`ConfigError` naming the variable."""
    environ = os.environ if environ is None else environ
    prefix = str(cls.model_config.get("env_prefix", ""))
    valid = [prefix + name.upper() for name in cls.model_fields]
    for name in sorted(environ):
        if name.startswith(prefix) and name not in valid:
            close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
            fix = f"did you mean {close[0]}?" if close else "remove it"
            raise ConfigError(
                name, f"not a setting of this container ({prefix}*)", f"{fix} (see docs)"
            )
    try:
        return cls()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        var = prefix + field.upper()
        got = environ.get(var, first.get("input"))
        raise ConfigError(
            var,
            f"invalid value {got!r}: {first['msg']}",
            f"set {var} to a valid value or unset it{_default_of(cls, field)}",
        ) from None
    except SettingsError as exc:  # a JSON map that does not parse
        match = re.search(r'field "(\w+)"', str(exc))
        var = prefix + (match.group(1).upper() if match else "")
        raise ConfigError(
            var,
            f"invalid value {environ.get(var)!r}: not valid JSON",
            f'set {var} to a JSON object such as {{"view": "reject"}} or unset it',
        ) from None


def _default_of(cls: type[BaseSettings], field: str) -> str:
    info = cls.model_fields.get(field)
    if info is None or info.is_required():
        return ""
    default = info.get_default(call_default_factory=True)
    return f" (default {default!r})"


def refuse_flags(
    parser: argparse.ArgumentParser, args: argparse.Namespace, refused: Mapping[str, str]
) -> None:
    """A :class:`ConfigError` for the first flag of ``refused`` (dest -> reason and fix) set
    to anything but its default: KServe's parser accepts it, this container does not use it."""
    for dest, why in refused.items():
        if getattr(args, dest) != parser.get_default(dest):
            reason, _, fix = why.partition("; ")
            raise ConfigError(f"--{dest}", reason, fix or "remove the flag")


# KServe flags that neither container honours (kserve/python/kserve/kserve/model_server.py).
COMMON_REFUSED: dict[str, str] = {
    "log_config_file": "Berth logs JSON lines through its own configuration; "
    "remove the flag and set BERTH_<ROLE>_LOG_LEVEL",
    "configure_logging": "Berth always configures its JSON logging; remove the flag",
}
