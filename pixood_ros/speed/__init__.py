"""Speed measurements of the runtime (no PyTorch): the node against the bare engine. The PyTorch
side (`pixood-bench`: stages, eager vs ONNX Runtime) lives in `pixood_training.speed`."""
