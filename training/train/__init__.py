"""The three PixOOD training stages behind ``pixood-train`` (decoder, condensation, decision)."""
