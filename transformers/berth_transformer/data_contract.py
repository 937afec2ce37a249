"""Served feature values against the artifact's data contract (``metadata.json``
``data_contract``, the rules ``berth build`` checked the training set with).

A value read from the online store outside its feature's range or allowed set is counted
(``berth_transformer_contract_violations_total{feature,rule}``) and handled by its view's
``CONTRACT_POLICY``: ``default`` puts the training default in its place, ``reject`` answers
503 naming the feature (the online store holds bad data, not the client). Request-time
features are the client's and are validated as the request (400). The check is vectorised:
one comparison over the request's matrix when every value is in contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from berth.artifact import ArtifactMetadata
from berth.errors import ContractMismatchError, DependencyUnavailableError
from berth.featurerepo import ContractFeature
from berth_transformer import metrics


class ServedContract:
    """The checks of the online-store columns, in the model's column order."""

    def __init__(
        self,
        artifact: ArtifactMetadata,
        features: Sequence[ContractFeature],
        policy: Mapping[str, str],
    ) -> None:
        assert artifact.data_contract is not None
        rules = {r.name: r for r in artifact.data_contract.features}
        defaults = {f.name: f.default for f in artifact.features}
        stored = [i for i, f in enumerate(features) if f.ttl is not None and f.name in rules]
        self.columns = np.array(stored, dtype=np.intp)
        self.names = [features[i].name for i in stored]
        self.rules = [rules[n] for n in self.names]
        self.reject = [policy.get(features[i].view, "default") == "reject" for i in stored]
        self.defaults = np.array([defaults[n] for n in self.names], np.float32)
        inf = np.float32(np.inf)
        self.low = np.array([-inf if r.min is None else r.min for r in self.rules], np.float32)
        self.high = np.array([inf if r.max is None else r.max for r in self.rules], np.float32)
        self.sets = {
            j: np.array(r.allowed, np.float32)
            for j, r in enumerate(self.rules)
            if r.allowed is not None
        }
        self.labels = [r.describe().split(" ", 1)[0] for r in self.rules]  # "range" | "allowed"

    def check(self, matrix: np.ndarray) -> np.ndarray:
        """``matrix`` with out-of-contract values handled (filled in place) or a 503."""
        values = matrix[:, self.columns]
        bad = (values < self.low) | (values > self.high)
        for j, allowed in self.sets.items():
            bad[:, j] = ~np.isin(values[:, j], allowed)
        if not bad.any():
            return matrix
        for j in np.flatnonzero(bad.any(axis=0)).tolist():
            rows = bad[:, j]
            metrics.CONTRACT_VIOLATIONS.labels(self.names[j], self.labels[j]).inc(int(rows.sum()))
            if self.reject[j]:
                raise DependencyUnavailableError(
                    f"in-contract values of {self.names[j]}",
                    f"{int(rows.sum())} rows of {self.names[j]} break its data contract "
                    f"({self.rules[j].describe()})",
                )
            matrix[rows, self.columns[j]] = self.defaults[j]
        return matrix


def open_contract(
    artifact: ArtifactMetadata | None,
    features: Sequence[ContractFeature],
    policy: Mapping[str, str],
) -> ServedContract | None:
    """The served check, or None for an artifact without a contract (schema version 1).
    A policy for a view the FeatureService does not use refuses to start."""
    views = list(dict.fromkeys(f.view for f in features))
    unknown = sorted(set(policy) - set(views))
    if unknown:
        raise ContractMismatchError(
            f"BERTH_TRANSFORMER_CONTRACT_POLICY names views {unknown} that are not served "
            f"(served: {views})"
        )
    if artifact is None or artifact.data_contract is None:
        return None
    return ServedContract(artifact, features, policy)
