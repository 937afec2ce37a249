"""``analyze --emit-template argo|flagger``: Berth's checks for teams on Argo Rollouts or Flagger.

The policy's thresholds become PromQL with the allowance in the query's condition: an Argo
Rollouts ``AnalysisTemplate`` (``successCondition``/``failureCondition``, a measurement with
too few requests returns no sample, which is neither: Inconclusive) or Flagger
``MetricTemplate``s with the Canary ``analysis`` block that uses them (``thresholdRange``;
``threshold`` = ``fail_looks``; Flagger promotes when its weight steps are done, so
``pass_looks`` has no counterpart there). Argo counts failed measurements in total, not in a row:
``failureLimit`` = ``fail_looks`` - 1 is the nearest it has. What PromQL cannot express (the
confidence bounds of the error-rate difference, the Mann-Whitney U test on the histograms,
the binomial bound on tail shares) is left out and said so in a comment of the output: these
templates compare point estimates, as the controllers do.
"""

from __future__ import annotations

from typing import Any

from berth.rollout.policy import RolloutPolicy

LEFT_OUT = (
    "# Left out (PromQL cannot express them; `berth rollout analyze` applies them): the\n"
    "# one-sided confidence bounds on the error-rate difference (Newcombe score interval),\n"
    "# the Mann-Whitney U test on the two latency histograms, and the binomial bounds on the\n"
    "# share of requests / shadow rows above a limit. These metrics compare point estimates,\n"
    "# gated on min_samples requests per side (too few: no sample, an inconclusive look).\n"
)


def _selectors(policy: RolloutPolicy, version: str) -> tuple[str, str]:
    m = policy.metrics
    every = f'{m.version_label}="{version}"'
    return every, f'{every},{m.outcome_label}=~"{m.error_outcomes}"'


def _count(policy: RolloutPolicy, selector: str) -> str:
    m = policy.metrics
    return f"sum(increase({m.request_histogram}_count{{{selector}}}[{policy.window}]))"


def _quantile(policy: RolloutPolicy, q: float, selector: str) -> str:
    m = policy.metrics
    rate = f"sum by (le) (rate({m.request_histogram}_bucket{{{selector}}}[{policy.window}]))"
    return f"histogram_quantile({q}, {rate})"


def queries(policy: RolloutPolicy, primary: str, canary: str) -> dict[str, tuple[str, float]]:
    """Metric name -> (PromQL, the largest value that passes). No sample below min_samples."""
    p_all, p_err = _selectors(policy, primary)
    c_all, c_err = _selectors(policy, canary)
    enough = (
        f"on() ({_count(policy, c_all)} >= {policy.min_samples}) "
        f"and on() ({_count(policy, p_all)} >= {policy.min_samples})"
    )
    error_rate = (
        f"((({_count(policy, c_err)} or vector(0)) / {_count(policy, c_all)})\n"
        f" - (({_count(policy, p_err)} or vector(0)) / {_count(policy, p_all)}))\n"
        f"and {enough}"
    )
    out = {"berth-error-rate-delta": (error_rate, policy.max_error_rate_delta)}
    ratios = []
    for q in (0.5, 0.99):
        cq, pq = _quantile(policy, q, c_all), _quantile(policy, q, p_all)
        # The ratio counts only with an effect of min_effect_ms too; else 1 (no regression).
        ratios.append(
            f"((({cq}) / ({pq})) and on() ((({cq}) - ({pq})) * 1000 > {policy.min_effect_ms:g}))"
        )
    latency = f"(max(\n  {ratios[0]}\n  or\n  {ratios[1]}\n) or vector(1))\nand {enough}"
    out["berth-latency-ratio"] = (latency, policy.max_p99_ratio)
    if policy.max_p99_ms is not None:
        p99 = f"1000 * {_quantile(policy, 0.99, c_all)}\nand {enough}"
        out["berth-canary-p99-ms"] = (p99, policy.max_p99_ms)
    if policy.max_shadow_delta_p99 is not None:
        m = policy.metrics
        shadow = (
            f"histogram_quantile(0.99, sum by (le) (rate({m.shadow_delta_histogram}_bucket"
            f"[{policy.window}])))\nand on() (sum(increase({m.shadow_delta_histogram}_count"
            f"[{policy.window}])) >= {policy.min_samples})"
        )
        out["berth-shadow-delta-p99"] = (shadow, policy.max_shadow_delta_p99)
    return out


def argo(policy: RolloutPolicy, primary: str, canary: str, prometheus: str) -> list[Any]:
    """One AnalysisTemplate; a measurement per ``window``, ``pass_looks`` + slack of them."""
    metrics = [
        {
            "name": name,
            "interval": policy.window,
            "count": policy.pass_looks + policy.fail_looks,
            "failureLimit": policy.fail_looks - 1,
            "inconclusiveLimit": policy.pass_looks + policy.fail_looks,
            "consecutiveErrorLimit": policy.fail_looks,
            "successCondition": f"len(result) > 0 && result[0] <= {limit:g}",
            "failureCondition": f"len(result) > 0 && result[0] > {limit:g}",
            "provider": {"prometheus": {"address": "{{args.prometheus-address}}", "query": q}},
        }
        for name, (q, limit) in queries(policy, primary, canary).items()
    ]
    return [
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "berth-canary"},
            "spec": {
                "args": [{"name": "prometheus-address", "value": prometheus}],
                "metrics": metrics,
            },
        }
    ]


def flagger(policy: RolloutPolicy, primary: str, canary: str, prometheus: str) -> list[Any]:
    """A MetricTemplate per check, then the Canary ``analysis`` block referring to them."""
    found = queries(policy, primary, canary)
    docs: list[Any] = [
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": name},
            "spec": {"provider": {"type": "prometheus", "address": prometheus}, "query": q},
        }
        for name, (q, _) in found.items()
    ]
    analysis = {
        "interval": policy.window,
        "threshold": policy.fail_looks,
        "metrics": [
            {
                "name": name,
                "templateRef": {"name": name},
                "thresholdRange": {"max": limit},
                "interval": policy.window,
            }
            for name, (_, limit) in found.items()
        ],
    }
    return [*docs, {"analysis": analysis}]


def render(kind: str, policy: RolloutPolicy, primary: str, canary: str, prometheus: str) -> str:
    """The YAML documents, with the comment on what was left out."""
    import yaml

    docs = (argo if kind == "argo" else flagger)(policy, primary, canary, prometheus)
    head = (
        f"# Berth rollout checks for {'Argo Rollouts' if kind == 'argo' else 'Flagger'}: "
        f"canary {canary} vs primary {primary}, window {policy.window}.\n"
        f"# Fail after {policy.fail_looks} failing looks, promote after {policy.pass_looks} "
        "passing looks (Argo's failureLimit counts failures in total, not in a row).\n" + LEFT_OUT
    )
    parts = []
    for doc in docs:
        if kind == "flagger" and "analysis" in doc:
            snippet = yaml.safe_dump({"spec": doc}, sort_keys=False, width=1000)
            parts.append(
                "# Put this in your Canary (spec.analysis):\n"
                + "".join(f"# {line}\n" for line in snippet.splitlines())
            )
        else:
            parts.append(yaml.safe_dump(doc, sort_keys=False, width=1000))
    return head + "---\n" + "---\n".join(parts)
