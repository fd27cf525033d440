"""Nearest-prototype distance of every patch to every class, as one exportable tensor op.

d_c(e) = min_k ||e - P[c, k]||_2 over the raw-space prototypes of class c (docs/method.md §4.7,
§5.6a). Classes have different prototype counts after pruning; they are padded to a common Kmax by
repeating one of the class's own prototypes, which leaves every minimum unchanged and needs no
+inf mask. The distance is the MatMul expansion |e|^2 + |P|^2 - 2 e.P (fp32), clipped at 0 before
the square root. Both sides are first shifted by the prototypes' mean (distances are translation
invariant), which keeps the norms small and the cancellation error of the expansion low.

Cost: the [N, C*Kmax] matrix |P|^2 - 2 e.P is one matrix product with the |P|^2 term as its bias
(ONNX ``Gemm`` with alpha = -2), so it is written once and read once by the per-class minimum over
Kmax; |e|^2 does not depend on the prototype and is added after the minimum, on [N, C]. Only the
classes asked for are computed (``classes``): the end-to-end module's three contract outputs need
the semantic class and the eval labels, not all C.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def pad_prototypes(prototypes: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """List of [K_c, D] -> (padded [C, Kmax, D] float32, counts [C] long).

    Padding repeats the class's first prototype. A class without prototypes (no training data)
    gets the all-zero vector, so its distance is finite; the decision strategy scores such a class
    0 everywhere anyway.
    """
    if not prototypes:
        raise ValueError("need at least one class")
    dim = prototypes[0].shape[-1]
    kmax = max(1, max(p.shape[0] for p in prototypes))
    padded = torch.zeros(len(prototypes), kmax, dim, dtype=torch.float32)
    counts = torch.zeros(len(prototypes), dtype=torch.long)
    for c, protos in enumerate(prototypes):
        if protos.dim() != 2 or protos.shape[1] != dim:
            shape = tuple(protos.shape)
            raise ValueError(f"class {c}: prototypes must be [K_c, {dim}], got {shape}")
        k = protos.shape[0]
        counts[c] = k
        if k:
            padded[c, :k] = protos.float()
            padded[c, k:] = protos[0].float()
    return padded, counts


class PrototypeDistance(nn.Module):
    """forward(e [N, D]) -> [N, C] nearest-prototype Euclidean distances (float32).

    ``chunk_rows`` (eager mode only) bounds the [rows, C*Kmax] intermediate for large N; graphs
    being exported run unchunked.
    """

    def __init__(self, prototypes: torch.Tensor, chunk_rows: int | None = None):
        super().__init__()
        if prototypes.dim() != 3:
            shape = tuple(prototypes.shape)
            raise ValueError(f"prototypes must be padded [C, Kmax, D], got {shape}")
        num_classes, kmax, dim = prototypes.shape
        self.num_classes, self.kmax, self.dim = num_classes, kmax, dim
        self.chunk_rows = chunk_rows
        self.register_buffer("prototypes", prototypes.float().clone())
        self.register_buffer("center", torch.zeros(dim))
        self.register_buffer("flat", torch.zeros(num_classes * kmax, dim))
        self.register_buffer("sq_norms", torch.zeros(num_classes * kmax))
        self.refresh()

    @torch.no_grad()
    def refresh(self) -> None:
        """Recompute the derived buffers from ``prototypes`` (after loading new prototypes)."""
        flat = self.prototypes.reshape(-1, self.dim).double()
        center = flat.mean(dim=0)
        shifted = flat - center
        self.center.copy_(center.float())
        self.flat.copy_(shifted.float())
        self.sq_norms.copy_((shifted * shifted).sum(dim=1).float())

    def _distances(self, e: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        """[N, D] -> [N, C] (or [N, len(classes)] for the listed class ids, in that order)."""
        e = e.float() - self.center
        flat, sq_norms, count = self.flat, self.sq_norms, self.num_classes
        if classes is not None:
            columns = (
                classes[:, None] * self.kmax + torch.arange(self.kmax, device=e.device)
            ).reshape(-1)
            flat, sq_norms, count = flat[columns], sq_norms[columns], classes.shape[0]
        partial = torch.addmm(sq_norms, e, flat.t(), alpha=-2.0)  # |P|^2 - 2 e.P
        nearest = partial.reshape(e.shape[0], count, self.kmax).amin(dim=2)
        return (nearest + (e * e).sum(dim=1, keepdim=True)).clamp_min(0.0).sqrt()

    def _chunked(self, e: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        chunk = self.chunk_rows
        if chunk is None or _exporting() or e.shape[0] <= chunk:
            return self._distances(e, classes)
        return torch.cat([self._distances(part, classes) for part in e.split(chunk)])

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return self._chunked(e)

    def at(self, e: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """e [N, D], classes [N, M] int64 -> [N, M]: entry (n, m) is the distance of patch n to
        class classes[n, m]. Same values as ``forward(e).gather(1, classes)``, but in eager mode
        only the classes that occur in ``classes`` are computed (a graph being exported has no
        data-dependent sizes, so it computes all C and gathers)."""
        if _exporting():
            return self._chunked(e).gather(1, classes)
        present = torch.unique(classes)
        return self._chunked(e, present).gather(
            1, torch.searchsorted(present, classes.contiguous())
        )


def _exporting() -> bool:
    return torch.compiler.is_exporting() or torch.compiler.is_compiling()
