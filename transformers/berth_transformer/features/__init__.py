"""Online features for the transformer: one batched read per request, the TTL check, the
missing/stale policy, the store-fault screen.

Modules, each importing only those above it:

- :mod:`.feast_compat` -- every Feast internal Berth calls, fenced (and tested) in one place;
- :mod:`.columns` -- the model's columns (:class:`ServedFeature`, :class:`ColumnPlan`);
- :mod:`.policies` -- each view's missing/stale policy and the TTL check;
- :mod:`.store_faults` -- unreadable stored values, all-missing reads, unknown entities;
- :mod:`.interface` -- :class:`FeatureSource`, what every source implements;
- :mod:`.feast_source` -- Feast's SDK as a source (any online store);
- :mod:`.redis_codec` -- ``HMGET`` as RESP, the decode of its replies and the decode cache;
- :mod:`.redis_plan` -- which FeatureServices the direct Redis source reads, and how;
- :mod:`.redis_transport` -- one Redis server, or the masters of a Redis Cluster;
- :mod:`.redis_source` -- Feast's Redis layout read directly;
- :mod:`.reader` -- :class:`FeatureReader` and :func:`open_reader`, which picks the source.

``feast`` is imported lazily: it is slow to import and pulls torch in when torch is installed.
"""

from berth_transformer.features.columns import ColumnPlan, ServedFeature, served_features
from berth_transformer.features.feast_source import FeastSource, decode
from berth_transformer.features.interface import FeatureSource
from berth_transformer.features.policies import ReadReport, ViewPolicy, apply_policies
from berth_transformer.features.reader import FeatureReader, open_reader

__all__ = [
    "ColumnPlan",
    "FeastSource",
    "FeatureReader",
    "FeatureSource",
    "ReadReport",
    "ServedFeature",
    "ViewPolicy",
    "apply_policies",
    "decode",
    "open_reader",
    "served_features",
]
