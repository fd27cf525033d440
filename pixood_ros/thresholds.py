"""The default anomaly threshold of masks (node, pixood-infer, pixood-bag-eval, demo, BRAVO rule).

PixOOD's scores are calibrated per class: S_c is the fraction of class c's training mass whose
likelihood ratio lies below the pixel's, so for in-distribution pixels S_c is roughly uniform in
[0, 1] and `anomaly = 1 - max_c S_c` exceeds 0.5 for a large share of them: 0.5 would mask a good
part of the road. The threshold is instead read as a per-class false-rejection rate:
anomaly >= 0.995 means every evaluated class finds the pixel less typical than 99.5 % of its
training mass. 0.995 is also the official PixOOD visualisation threshold (plot.py --thr 0.995).
Models exported with another scorer (msp, maxlogit, energy, kmeans) are calibrated differently:
choose their threshold on validation data.
"""

from __future__ import annotations

DEFAULT_ANOMALY_THRESHOLD = 0.995
