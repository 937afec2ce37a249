"""Berth predictor container: ONNX Runtime behind KServe (V1, Open Inference V2)."""
