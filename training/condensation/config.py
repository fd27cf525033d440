"""Stage 2 (condensation) hyper-parameters; defaults = the published run (docs/method.md §4, §12).

Field names are the keys of the ``condense`` section of the training config
(training/train/config.py), which checks them against these fields' types.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class CondensationConfig:
    num_classes: int = 19
    K: int = 1000  # prototypes per class before pruning
    init_per_class: int = 10000  # rows per class in the initialisation buffers
    epochs: int = 100
    lr: float = 0.1  # AdamW, weight decay 0, cosine schedule over ``epochs``
    init_tau: float = 10.0  # initial exponential scale, 0 < init_tau < 100
    temperature_start: float = 0.5  # inverse temperature of the soft assignment ...
    temperature_end: float = 2.0  # ... raised by a cosine schedule over the epochs
    ewa_decay: float = 0.001  # q0 of the bias-corrected running assignment statistics
    reset_threshold: float = 0.5  # rho: a prototype is valid while RA > rho * RB / K
    reinit: bool = True  # re-seed weak prototypes during training
    reinit_first_epoch: int = 1
    # first epoch without re-seeding; None = 0.9 x epochs as published (90 of 100)
    reinit_stop_epoch: int | None = None
    reinit_every: int | None = None  # iterations between re-seeds; None = floor(batches / 2)
    reinit_noise: float = 1e-6 / 32
    init_noise: float = 0.1  # jitter of prototypes drawn with replacement
    distance_scale: float | None = None  # None = 100 / sqrt(D) (3.125 for D = 1024)
    chunk_rows: int = 4096  # rows per distance block (memory bound: chunk_rows x K)
    ignore_index: int = 255
    shuffle: bool = True  # shuffle the batch order of sequence sources every epoch
    seed: int = 0
    dtype: str = "float32"  # "float64" only for tests that compare runs bit-for-bit

    def __post_init__(self) -> None:
        if self.num_classes < 1 or self.K < 1 or self.init_per_class < 1:
            raise ValueError("num_classes, K and init_per_class must be >= 1")
        if self.epochs < 1:
            raise ValueError("epochs must be >= 1")
        if not 0.0 < self.init_tau < 100.0:
            raise ValueError(f"init_tau must be in (0, 100), got {self.init_tau}")
        if not 0.0 < self.ewa_decay <= 1.0:
            raise ValueError(f"ewa_decay must be in (0, 1], got {self.ewa_decay}")
        if self.chunk_rows < 1:
            raise ValueError("chunk_rows must be >= 1")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")

    @property
    def reseed_stop_epoch(self) -> int:
        """Re-seeding runs in epochs [reinit_first_epoch, this): the published 0.9 x epochs
        (docs/method.md §4.5) unless ``reinit_stop_epoch`` is set; a fixed 90 would re-seed to the
        end of any run shorter than 100 epochs."""
        if self.reinit_stop_epoch is not None:
            return self.reinit_stop_epoch
        return (9 * self.epochs) // 10

    def scale_for(self, dim: int) -> float:
        return self.distance_scale if self.distance_scale is not None else 100.0 / math.sqrt(dim)

    def temperature(self, epoch: int) -> float:
        """Inverse temperature for ``epoch`` (0.5 -> ~2.0 by half a cosine)."""
        ramp = 0.5 * (1.0 - math.cos(math.pi * epoch / self.epochs))
        return self.temperature_start + (self.temperature_end - self.temperature_start) * ramp

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
