"""Speed of a model (`pixood-bench`): per-stage PyTorch timings, PyTorch vs ONNX Runtime, decision
stage vs scipy. Anomaly QUALITY comparisons are pixood_ros/comparison (`pixood-benchmark`)."""
