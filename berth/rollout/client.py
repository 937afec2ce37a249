"""Get and patch ``serving.kserve.io/v1beta1`` InferenceServices with the ``kubernetes`` client.

Objects stay plain dicts end to end (``CustomObjectsApi`` returns and takes dicts), so the
client's pydantic models and their snake_case serialization never touch a KServe object.
``kubernetes`` is imported here, when a command runs, never at ``berth`` start.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

from berth.rollout.errors import RolloutError
from berth.rollout.isvc import GROUP, PLURAL, VERSION
from berth.rollout.patches import CONTENT_TYPE, Patch

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def connect(kubeconfig: str | None = None, context: str | None = None) -> tuple[Any, str]:
    """(ApiClient, default namespace) from the kubeconfig (``--kubeconfig``, ``$KUBECONFIG``,
    ``~/.kube/config``) and its current or given context, else from in-cluster config.

    ``$KUBECONFIG`` is read here, at call time: the ``kubernetes`` package reads it once, at
    its import."""
    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
    try:
        from kubernetes import config
        from kubernetes.config.config_exception import ConfigException
    except ImportError as exc:
        raise RolloutError(
            "berth rollout needs the kubernetes client: pip install 'berth[k8s]'"
        ) from exc
    try:
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, persist_config=False
        )
        return api, _context_namespace(kubeconfig, context)
    except (ConfigException, FileNotFoundError) as exc:
        if kubeconfig or context:
            where = kubeconfig or "the default kubeconfig"
            raise RolloutError(
                f"{where}{f' (context {context})' if context else ''}: {exc}"
            ) from exc
        kube_error = exc
    try:
        from kubernetes import client

        configuration = client.Configuration()
        load = config.load_incluster_config
        load(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        raise RolloutError(
            f"no usable kubeconfig ({kube_error}) and not inside a cluster ({exc})"
        ) from exc
    namespace = IN_CLUSTER_NAMESPACE.read_text().strip() if IN_CLUSTER_NAMESPACE.exists() else ""
    return client.ApiClient(configuration), namespace or "default"


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    from kubernetes import config

    contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
        config_file=kubeconfig
    )
    chosen = next((c for c in contexts if c["name"] == context), None) if context else active
    return str(((chosen or {}).get("context") or {}).get("namespace") or "default")


class InferenceServices:
    """``get`` and ``patch`` of InferenceServices in one namespace."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        from kubernetes import client

        self._api = client.CustomObjectsApi(api_client)
        self._host = api_client.configuration.host
        self.namespace = namespace

    def get(self, name: str) -> dict[str, Any]:
        try:
            obj = self._api.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except Exception as exc:
            raise self._error(exc, f"get inferenceservice {self.namespace}/{name}") from exc
        return cast(dict[str, Any], obj)

    def patch(self, name: str, patch: Patch) -> dict[str, Any]:
        """Send ``patch`` (a JSON Patch); the stored object comes back."""
        try:
            obj = self._api.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                name,
                patch.ops,
                field_manager="berth-rollout",
                field_validation="Strict",  # refuse, not silently prune, unknown fields
                _content_type=CONTENT_TYPE,
            )
        except Exception as exc:
            raise self._error(exc, f"patch inferenceservice {self.namespace}/{name}") from exc
        return cast(dict[str, Any], obj)

    def _error(self, exc: Exception, what: str) -> RolloutError:
        from kubernetes.client.exceptions import ApiException

        if not isinstance(exc, ApiException):
            cause = getattr(exc, "reason", None) or exc  # urllib3's MaxRetryError: the last error
            return RolloutError(f"{what}: cannot reach the API server at {self._host}: {cause}")
        message = _message(exc.body) or exc.reason
        if exc.status == 404:
            return RolloutError(f"{what}: not found")
        if exc.status in (401, 403):
            return RolloutError(
                f"{what}: {message} (needs get and patch on inferenceservices.serving.kserve.io)"
            )
        if exc.status in (409, 422) and "test failed" in str(message).lower():
            return RolloutError(f"{what}: the object changed since it was read; run it again")
        return RolloutError(f"{what}: HTTP {exc.status}: {message}")


def _message(body: Any) -> str | None:
    if not body:
        return None
    try:
        return str(json.loads(body).get("message"))
    except (ValueError, AttributeError):
        return str(body)[:300]
