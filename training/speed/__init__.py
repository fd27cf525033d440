"""Speed benchmarks: per-stage PyTorch timings, PyTorch vs ONNX Runtime, decision stage vs scipy."""
