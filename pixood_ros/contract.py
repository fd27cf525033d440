"""Names both halves of the project and its users rely on (docs/architecture.md, "Contracts"):
the model file's input and outputs, the node's name and the outputs it publishes.

One place, so the exporter, the engine, the node, the bag tools and the demo cannot drift apart."""

from __future__ import annotations

# The model file (ONNX): one uint8 RGB image in, three maps at input size out.
MODEL_INPUT = "image"
MODEL_OUTPUTS = ("anomaly_score", "semantic", "confidence")
# Optional fourth output (files exported since the anomaly modes): 1 - max over ALL classes of the
# calibrated class scores, [1, H, W]; the `unknown` anomaly modes need it.
UNKNOWN_SCORE_OUTPUT = "unknown_score"

# The node: its default name, the namespace of its private (~/) topics, the topics it publishes.
NODE_NAME = "pixood_node"
NODE_NAMESPACE = f"/{NODE_NAME}"
NODE_OUTPUTS = ("anomaly_score", "anomaly_mask", "semantic", "confidence", "overlay")
