"""Import of the official PixOOD checkpoints (docs/method.md §7) into our checkpoint format.

Submodules: ``archive`` (opening a ``.pth``: TorchScript refused, never ``torch.jit``),
``unpickler`` (restricted loading of the official pickles), ``official`` (readers),
``build`` (our end-to-end model from them), ``cli`` (``pixood-convert-official``). Nothing heavy
is imported here, so ``pixood-convert-official --help`` answers at once.
"""

from __future__ import annotations
