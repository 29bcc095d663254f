"""Concepts: from "what pattern" to "what it means". Test whether a human concept (stripes, your own images)
moves a target (TCAV: ``tcav.py`` on concept activation vectors from ``cav.py``), over image sets that say where
they come from (``image_sets.py``), with probe concepts ConvVis draws itself (``probes.py``); discover a target's
concepts (CRAFT: ``craft.py``, ``sobol.py``, ``crops.py``) and one image's neuron groups (``groups.py``), both on
the NMF of ``factorization.py``."""
