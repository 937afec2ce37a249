"""The baseline: KServe's Feast transformer sample's design, rebuilt on purpose.

``transformer.py`` reads features per request with the Feast SDK inside a *synchronous*
``preprocess`` (on the event loop) and lets KServe's own ``Model.predict`` call the predictor
over REST V1 (KServe's httpx client). ``predictor.py`` is a plain fp32 ONNX Runtime model in a
synchronous ``predict``, one request per run (no batching). KServe's defaults are kept (its
per-request trace log included). This is what Berth is measured against; do not copy it.
"""
