"""Procedural road-scene data set (pixood-synth)."""
