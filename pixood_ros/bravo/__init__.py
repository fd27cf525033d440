"""pixood-bravo: BRAVO-challenge submissions and local BRAVO-style evaluation.

`predict` runs a PixOOD ONNX model over a BRAVO data set (or a pixood-synth root) and writes the
per-image `_pred.png` / `_conf.png` files the BRAVO toolkit encodes; `evaluate` scores such a
submission with the toolkit's formulas (`pixood_ros.metrics.bravo`), so our numbers predict the
leaderboard's. The metric code itself lives in `pixood_ros.metrics`; this package only knows
folder layouts, confidence rules and reporting.
"""

from __future__ import annotations
