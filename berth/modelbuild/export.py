"""ONNX export: input ``features`` FP32 [batch, n], output ``score`` FP32 [batch]."""

from __future__ import annotations

from pathlib import Path

import onnx
import torch

from berth.artifact import FP32_MODEL_FILE
from berth.modelbuild.train import load_model
from berth.wire import INPUT_NAME as INPUT_NAME
from berth.wire import OUTPUT_NAME as OUTPUT_NAME


def export_onnx(workdir: Path) -> dict[str, object]:
    model = load_model(workdir)
    n = model.mean.shape[0]
    example = torch.zeros(4, n)
    path = workdir / FP32_MODEL_FILE
    # torch 2.13's dynamo exporter fixes the batch size unless it is declared dynamic.
    program = torch.onnx.export(
        model,
        (example,),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamo=True,
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        optimize=True,
    )
    if program is None:  # only the legacy (dynamo=False) exporter returns nothing
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(path), external_data=False)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    shape = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    return {"path": str(path), "input_shape": shape, "opset": proto.opset_import[0].version}
