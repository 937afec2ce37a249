"""The InferenceService a rollout command acts on, and how a patch is sent to it.

Shared by the rollout commands (``berth.rollout.cli``) and ``analyze --apply``
(``berth.rollout.analyze_cli``), so neither imports the other.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, TextIO

from berth.registry import resolve_storage_uri
from berth.rollout import isvc as iv
from berth.rollout import patches
from berth.rollout.client import InferenceServices, connect
from berth.rollout.errors import RolloutError
from berth.rollout.modes import Mode, rollout_mode
from berth.rollout.patches import Patch

if TYPE_CHECKING:
    from berth.rollout.analyze import Action


class Target:
    """The InferenceService a command acts on, read once."""

    def __init__(self, args: argparse.Namespace) -> None:
        api, default_ns = connect(args.kubeconfig, args.context)
        self.api = api
        self.services = InferenceServices(api, args.namespace or default_ns)
        self.name = args.isvc
        self.obj = self.services.get(self.name)

    def other(self, namespace: str) -> InferenceServices:
        return InferenceServices(self.api, namespace)


def send(target: Target, patch: Patch, dry_run: bool, out: TextIO | None = None) -> None:
    """Send ``patch`` and say what it did, or (dry run) print it and say it was not sent."""
    out = out or sys.stdout
    where = f"{target.services.namespace}/{target.name} ({patch.mode.value})"
    if not patch.changes:
        print(f"{where}: {patch.summary}: nothing to change", file=out)
        return
    if dry_run:
        print(f"# dry run, not sent: {where}: {patch.summary}", file=sys.stderr)
        print(json.dumps(patch.ops, indent=2), file=out)
        return
    target.services.patch(target.name, patch)
    print(f"{where}: {patch.summary}", file=out)


def mode_of(target: Target, args: argparse.Namespace, host_given: bool = False) -> Mode:
    return rollout_mode(
        target.obj,
        args.via,
        host_given=host_given,
        deployment_override=args.deployment_mode,
    )


def canary_model_uri(target: Target) -> str:
    """The model behind the transformer's canary host, when that host is a KServe predictor:
    ``<isvc>-predictor[.<ns>...]`` (another InferenceService) or ``<isvc>-<name>-predictor``
    (a Standard canary entry of this one)."""
    host = iv.transformer_env(target.obj, iv.CANARY_HOST) or ""
    labels = host.split(":")[0].split(".")
    first = labels[0]
    namespace = labels[1] if len(labels) > 1 and labels[1] != "svc" else target.services.namespace
    hint = "pass --storage-uri (the model the canary host serves)"
    if not first.endswith("-predictor"):
        raise RolloutError(f"cannot tell the model behind canary host {host!r}: {hint}")
    stem = first.removesuffix("-predictor")
    for entry in iv.canaries(target.obj):
        if f"{target.name}-{entry['predictor'].get('name')}" == stem:
            return iv.model_uri_slot(entry["predictor"]).value
    try:
        other = target.other(namespace).get(stem)
    except RolloutError as exc:
        raise RolloutError(f"canary host {host!r}: {exc}; {hint}") from exc
    return iv.model_uri_slot(iv.spec(other)["predictor"]).value


def promote_patch(target: Target, args: argparse.Namespace) -> Patch:
    mode = mode_of(target, args)
    uri = resolve_storage_uri(args.storage_uri)
    if mode is Mode.TRANSFORMER and not uri and iv.transformer_env(target.obj, iv.CANARY_HOST):
        uri = canary_model_uri(target)
    return patches.promote(target.obj, mode, storage_uri=uri, name=args.name)


def decision_patch(args: argparse.Namespace, action: Action) -> tuple[Target, Patch]:
    target = Target(args)
    if action == "rollback":
        return target, patches.rollback(target.obj, mode_of(target, args), name=args.name)
    return target, promote_patch(target, args)
