"""Comparing a loaded state dict with the one a module expects, for one-line error messages.

A checkpoint or weights file that does not fit the configured model must say what is wrong
(missing, unexpected and wrongly shaped tensors, with a few names each) instead of letting
`load_state_dict` print a wall of keys.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def state_dict_mismatch(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]
) -> list[str]:
    """Short descriptions of how `state` differs from `expected`; empty when they fit."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensors (e.g. {missing[:3]})")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} tensors (e.g. {unexpected[:3]})")
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} shape mismatches (e.g. {wrong_shape[:2]})")
    return problems
