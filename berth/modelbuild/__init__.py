"""The release path: training set → PyTorch → ONNX → int8 → verified artifact.

torch is imported only inside this package (``train`` and ``export``), and this package is
imported only by the CLI, lazily.
"""
