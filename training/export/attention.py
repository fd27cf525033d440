"""How the backbone's attention is written into the model file (`pixood-export --attention`).

``standard``: the exporter's own ONNX ops (MatMul, Softmax, MatMul). Portable, and the pattern
TensorRT fuses itself; ONNX Runtime's CPU kernels write out every [tokens x tokens] score matrix.
``ort``: ONNX Runtime's fused ``com.microsoft.MultiHeadAttention`` (one kernel per block, the scores
never leave it). Measured on ViT-S/14 at 518x1036, one thread: 1.04x PyTorch eager vs 0.97x for
``standard``. Runtimes without ONNX Runtime's contrib ops cannot run such a file, and TensorRT
hands those nodes back to ONNX Runtime's CUDA kernels, so it is an option, not the default.
"""

from __future__ import annotations

from typing import Any

# No heavy imports at module level: pixood-export's argument parsing imports the choices.
ATTENTION_FORMS = ("standard", "ort")
CONTRIB_DOMAIN = "com.microsoft"
_NAME = "MultiHeadAttention"


def _register_schema() -> None:
    """onnx does not know ONNX Runtime's contrib ops; the exporter needs a schema to emit one.
    Only the part used here: query, key, value in, one output, ``num_heads``."""
    import onnx
    from onnx.defs import OpSchema

    if onnx.defs.has(_NAME, CONTRIB_DOMAIN):
        return
    tensor = ["tensor(float)", "tensor(float16)"]
    onnx.defs.register_schema(
        OpSchema(
            _NAME,
            CONTRIB_DOMAIN,
            1,
            inputs=[OpSchema.FormalParameter(n, "T") for n in ("query", "key", "value")],
            outputs=[OpSchema.FormalParameter("output", "T")],
            type_constraints=[("T", tensor, "")],
            attributes=[OpSchema.Attribute("num_heads", OpSchema.AttrType.INT, "heads")],
        )
    )


def _multihead_attention(
    query: Any,
    key: Any,
    value: Any,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Any:
    """aten SDPA (q, k, v [B, heads, N, head_dim], default scale) -> contrib MultiHeadAttention
    (query [B, N, heads*head_dim], key / value as given) -> back to [B, heads, N, head_dim]."""
    if attn_mask is not None or is_causal or scale is not None or dropout_p or enable_gqa:
        raise NotImplementedError("--attention ort: only plain scaled dot-product attention")
    from onnxscript import opset18 as op
    from onnxscript import values

    contrib = values.Opset(domain=CONTRIB_DOMAIN, version=1)
    heads = query.shape[1]
    flat_query = op.Reshape(
        op.Transpose(query, perm=[0, 2, 1, 3]), op.Constant(value_ints=[0, 0, -1])
    )
    out = getattr(contrib, _NAME)(flat_query, key, value, num_heads=heads)
    out = op.Reshape(out, op.Constant(value_ints=[0, 0, heads, -1]))
    return op.Transpose(out, perm=[0, 2, 1, 3])


def translation_table(attention: str) -> dict[Any, Any] | None:
    """``custom_translation_table`` for ``torch.onnx.export`` (None = the exporter's own)."""
    if attention not in ATTENTION_FORMS:
        raise ValueError(f"attention must be one of {ATTENTION_FORMS}, got {attention!r}")
    if attention == "standard":
        return None
    import torch

    _register_schema()
    return {torch.ops.aten.scaled_dot_product_attention.default: _multihead_attention}
