"""``berth batch-score``: point-in-time features from Feast's offline store, the int8 model in
ONNX Runtime in large batches, on this machine or on Ray Data.

:mod:`berth.batch.entities` checks the entity table, :mod:`berth.batch.join` joins the
FeatureService's features as of each row's timestamp and builds the model input,
:mod:`berth.batch.engines` scores chunks (in process, or on Ray actors), :mod:`berth.batch.run`
runs the chunks and writes the output (temporary name, renamed at the end).
"""
