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
        # The allowed sets as one NaN-padded table (NaN equals nothing): one comparison
        # checks every set column of every row.
        sets = {j: r.allowed for j, r in enumerate(self.rules) if r.allowed is not None}
        self.set_columns = np.array(list(sets), dtype=np.intp)
        width = max(map(len, sets.values()), default=0)
        self.allowed = np.full((len(sets), width), np.nan, dtype=np.float32)
        for k, allowed in enumerate(sets.values()):
            self.allowed[k, : len(allowed)] = allowed
        self.labels = [r.describe().split(" ", 1)[0] for r in self.rules]  # "range" | "allowed"

    def check(self, matrix: np.ndarray) -> int:
        """Out-of-contract values of ``matrix`` filled in place (how many: the answer's
        filled values count them) or, under ``reject``, a 503."""
        values = matrix[:, self.columns]
        bad = (values < self.low) | (values > self.high)
        if len(self.set_columns):
            in_set = values[:, self.set_columns, None] == self.allowed
            bad[:, self.set_columns] = ~in_set.any(axis=2)
        if not bad.any():
            return 0
        filled = 0
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
            filled += int(rows.sum())
        return filled


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
