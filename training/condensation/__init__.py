"""Stage 2 of PixOOD: each class's patch features condensed into prototypes (docs/method.md §4).

Patch labels for stage 2 come from ``pixood_training.data.patch_labels.majority_patch_labels``
(re-exported here); inference-time nearest-prototype distances live in ``distance``.
"""

from ..data.patch_labels import majority_patch_labels
from .config import CondensationConfig
from .distance import PrototypeDistance, pad_prototypes
from .prototypes import PrototypeModel
from .trainer import CondensationResult, CondensationTrainer

__all__ = [
    "CondensationConfig",
    "CondensationResult",
    "CondensationTrainer",
    "PrototypeDistance",
    "PrototypeModel",
    "majority_patch_labels",
    "pad_prototypes",
]
