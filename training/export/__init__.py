"""Checkpoint ▶ ONNX model file (docs/architecture.md §3), checked against PyTorch (parity)."""

from .metadata import FORMAT_VERSION, config_hash, model_metadata
from .onnx_export import export_model, export_onnx
from .parity import ParityResult, check_parity, format_parity_table

__all__ = [
    "FORMAT_VERSION",
    "ParityResult",
    "check_parity",
    "config_hash",
    "export_model",
    "export_onnx",
    "format_parity_table",
    "model_metadata",
]
