"""The features' data contract (``feature_repo/data_contract.yaml``) and its check on a
training set with pandera.

The FeatureService gives names, order and dtypes; the contract file adds each feature's range
or allowed set and its largest null share. :func:`load_contract` joins the two (a feature of
the service without a rule is an error); :func:`validate_frame` runs one lazy pandera
validation over the whole frame and raises :class:`DataContractError` naming, for every
broken rule, the feature, the rule and how many rows broke it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from berth.artifact import DataContract, FeatureRule
from berth.errors import BerthError
from berth.featurerepo import ContractFeature

CONTRACT_FILE = "data_contract.yaml"


class DataContractError(BerthError):
    """The training set (or the contract file) breaks the data contract: nothing is built."""


def load_contract(repo: Path, features: list[ContractFeature]) -> DataContract:
    """The rules of ``features`` (the FeatureService's, in order) from the repo's contract."""
    path = Path(repo) / CONTRACT_FILE
    try:
        raw: dict[str, Any] = yaml.safe_load(path.read_text())["features"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise DataContractError(f"{path}: not a readable data contract ({exc})") from exc
    missing = [f.name for f in features if f.name not in raw]
    if missing:
        raise DataContractError(f"{path}: no rule for feature(s) {', '.join(missing)}")
    rules = []
    for feature in features:
        spec = dict(raw[feature.name] or {})
        try:
            rule = FeatureRule(name=feature.name, dtype=feature.dtype, **spec)
        except ValueError as exc:
            raise DataContractError(f"{path}: rule of {feature.name}: {exc}") from exc
        if rule.allowed is None and rule.min is None and rule.max is None:
            raise DataContractError(f"{path}: rule of {feature.name} has no range or set")
        rules.append(rule)
    return DataContract(source=f"feature_repo/{CONTRACT_FILE}", features=rules)


def _checks(rule: FeatureRule) -> list[Any]:
    import pandera.pandas as pa

    checks = []
    if rule.dtype == "int64":
        checks.append(pa.Check(lambda s: s % 1 == 0, name="dtype int64"))
    if rule.allowed is not None:
        checks.append(pa.Check.isin(rule.allowed))
    elif rule.min is not None or rule.max is not None:
        lo = float("-inf") if rule.min is None else rule.min
        hi = float("inf") if rule.max is None else rule.max
        checks.append(pa.Check.in_range(lo, hi))
    share = rule.max_null_share
    checks.append(
        pa.Check(
            lambda s, share=share: bool(s.isna().mean() <= share),
            name=f"max_null_share {share:g}",
            ignore_na=False,
        )
    )
    return checks


def schema(contract: DataContract) -> Any:
    """The pandera DataFrameSchema of the contract (numeric columns, nulls counted apart)."""
    import pandera.pandas as pa

    return pa.DataFrameSchema(
        {
            rule.name: pa.Column(checks=_checks(rule), nullable=True, required=True, coerce=False)
            for rule in contract.features
        },
        strict=False,
    )


def validate_frame(frame: pd.DataFrame, contract: DataContract, what: str) -> None:
    """Raise :class:`DataContractError` listing every broken rule of ``frame``."""
    import pandera.errors

    names = [r.name for r in contract.features]
    non_numeric = [n for n in names if n in frame and not pd.api.types.is_numeric_dtype(frame[n])]
    if non_numeric:
        raise DataContractError(
            f"{what} breaks the data contract: {', '.join(non_numeric)} not numeric"
        )
    try:
        schema(contract).validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        raise DataContractError(
            f"{what} breaks the data contract ({len(frame)} rows): "
            + "; ".join(_violations(exc.failure_cases, frame, contract))
            + ": refusing to package"
        ) from None


def _violations(cases: pd.DataFrame, frame: pd.DataFrame, contract: DataContract) -> list[str]:
    """One line per (feature, rule): how many rows broke it."""
    rules = {r.name: r for r in contract.features}
    out = []
    for (column, check), group in cases.groupby(["column", "check"], sort=True, dropna=False):
        if str(check).startswith(("isin", "in_range")):  # pandera's names for set and range
            check = rules[column].describe()
        if str(check).startswith("max_null_share"):
            rows = int(frame[column].isna().sum())
            out.append(f"feature {column} breaks rule {check}: {rows} null rows")
        elif str(check) == "column_in_dataframe":
            out.append(f"feature {group['failure_case'].iloc[0]} missing from the data")
        else:
            rows = int(group["index"].nunique())
            out.append(f"feature {column} breaks rule {check}: {rows} rows")
    return out
