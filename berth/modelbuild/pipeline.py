"""``berth build``: the release steps in order, each runnable alone over a work directory."""

from __future__ import annotations

import time
from collections.abc import Callable

from berth.modelbuild.config import BuildConfig

STEPS = ("data", "dataset", "train", "export", "quantize", "evaluate", "package")


def _data(cfg: BuildConfig) -> object:
    from berth.datagen import DataSpec, generate

    data_dir = cfg.repo / "data"
    if (data_dir / "rides.parquet").exists() and not cfg.regenerate and not cfg.data:
        return {"reused": str(data_dir)}
    return generate(data_dir, DataSpec(**cfg.data))


def _dataset(cfg: BuildConfig) -> object:
    from berth.modelbuild.dataset import build_training_set

    return build_training_set(cfg.repo, cfg.feature_service, cfg.workdir)


def _train(cfg: BuildConfig) -> object:
    from berth.modelbuild.train import train_model

    return train_model(cfg.workdir)


def _export(cfg: BuildConfig) -> object:
    from berth.modelbuild.export import export_onnx

    return export_onnx(cfg.workdir)


def _quantize(cfg: BuildConfig) -> object:
    from berth.modelbuild.quantize import quantize

    return quantize(cfg.workdir, mode=cfg.quantization)  # type: ignore[arg-type]


def _evaluate(cfg: BuildConfig) -> object:
    from berth.modelbuild.evaluate import evaluate

    return evaluate(cfg.workdir)


def _package(cfg: BuildConfig) -> object:
    from berth.modelbuild.package import package

    meta = package(cfg.workdir, cfg.output, cfg.name, cfg.quantization, cfg.version)
    result = {"artifact": str(cfg.output), "version": meta.version}
    if cfg.sign_key is not None:
        from berth.signing import sign_artifact

        result["signature"] = str(sign_artifact(cfg.output, cfg.sign_key))
    return result


_RUNNERS: dict[str, Callable[[BuildConfig], object]] = {
    "data": _data,
    "dataset": _dataset,
    "train": _train,
    "export": _export,
    "quantize": _quantize,
    "evaluate": _evaluate,
    "package": _package,
}


def run_build(
    cfg: BuildConfig, steps: tuple[str, ...] = STEPS, echo: Callable[[str], None] = print
) -> dict[str, object]:
    results: dict[str, object] = {}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    for i, step in enumerate(steps, 1):
        t0 = time.perf_counter()
        echo(f"[{i}/{len(steps)}] {step} ...")
        results[step] = _RUNNERS[step](cfg)
        seconds[step] = round(time.perf_counter() - t0, 3)
        echo(f"[{i}/{len(steps)}] {step} done in {seconds[step]:.1f}s: {results[step]}")
    echo(f"build finished in {time.perf_counter() - started:.1f}s")
    if cfg.track:
        from berth.modelbuild.tracking import track

        results["tracking"] = track(cfg, results, seconds)
        echo(f"tracked: {results['tracking']}")
    return results
