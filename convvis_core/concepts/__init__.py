"""Concepts: what a layer's activations mean in human terms (TCAV, CRAFT, neuron groups)."""
