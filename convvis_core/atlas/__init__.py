"""Atlas: every chosen filter of a model precomputed once, into the cache the pages read.

For a model, layers, a feature-visualization preset and optionally a dataset, an atlas job computes
each filter's picture exactly as the Filters page does and each layer's top-k index exactly as the
Top k page does, under the same keys, so the pages afterwards answer from the cache. The dataset is
read once for all layers. Work is cut into units (:mod:`plan`) that an engine runs: ``local`` in this
process (:mod:`local`) or ``ray`` on a Ray cluster (:mod:`ray_engine`, imported only when chosen);
the driver (:mod:`job`) stores, records (:mod:`manifest`) and resumes.
"""

from convvis_core.atlas.job import Summary, run_atlas
from convvis_core.atlas.local import LocalEngine
from convvis_core.atlas.plan import AtlasRequest

__all__ = ["AtlasRequest", "LocalEngine", "Summary", "run_atlas"]
