"""``berth rollout``: canary, promotion, rollback and shadow of the InferenceService.

Three traffic layers are handled: KServe's Knative ``canaryTrafficPercent``, KServe's Standard
(RawDeployment) ``spec.canary[]``, and the Berth transformer's own weighted canary and shadow
(``BERTH_TRANSFORMER_*`` env of the transformer container), which works in every mode.

Pure parts (``modes``, ``isvc``, ``patches``, ``policy``, ``analyze``, ``metrics`` math) need
no server; ``client`` talks to the API server through the ``kubernetes`` package, imported
only when a command runs. See ``docs/rollouts.md``.
"""

from berth.rollout.errors import RolloutError

__all__ = ["RolloutError"]
