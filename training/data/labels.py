"""Cityscapes label definitions: the 19 train classes, their colours and the labelId -> trainId map.

The map follows docs/method.md §3 (the published ``encode_segmap``): 19 valid labelIds become train
ids 0..18, every other id of the Cityscapes label set becomes 255 (void). A value that is not a
Cityscapes label id at all is a data error, reported by the caller with the file name.
"""

from __future__ import annotations

import numpy as np

from pixood_ros.cityscapes import CLASS_NAMES, IGNORE_INDEX, PALETTE

# The one Cityscapes label space of the project (pixood_ros.cityscapes), as lists.
CITYSCAPES_CLASS_NAMES: list[str] = list(CLASS_NAMES)
CITYSCAPES_PALETTE: list[list[int]] = [list(colour) for colour in PALETTE]


# labelIds of the 19 evaluated classes, in train-id order.
VALID_LABEL_IDS = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
# Remaining Cityscapes labelIds (void); -1 (license plate) is stored as 255 in uint8 PNGs.
VOID_LABEL_IDS = [0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30, 255]

# 256-entry lookup table; -1 marks values that are not Cityscapes label ids.
_LABELID_LUT = np.full(256, -1, dtype=np.int64)
_LABELID_LUT[VOID_LABEL_IDS] = IGNORE_INDEX
_LABELID_LUT[VALID_LABEL_IDS] = np.arange(len(VALID_LABEL_IDS))


def labelids_to_trainids(label_ids: np.ndarray) -> np.ndarray:
    """Map a Cityscapes labelIds array to train ids (0..18, 255 void).

    Raises ValueError naming the offending values when the array holds ids that do not exist in
    the Cityscapes label set (e.g. a train-id file passed as a labelIds file would still pass, but
    a colour image or a 16-bit instance map would not).
    """
    values = np.asarray(label_ids)
    if values.min(initial=0) < 0 or values.max(initial=0) > 255:
        raise ValueError(f"label ids outside 0..255 (min {values.min()}, max {values.max()})")
    mapped = _LABELID_LUT[values.astype(np.int64)]
    if (mapped < 0).any():
        bad = sorted(int(v) for v in np.unique(values[mapped < 0]))[:10]
        raise ValueError(f"values {bad} are not Cityscapes label ids")
    return mapped
