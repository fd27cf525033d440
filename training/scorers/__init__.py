"""Anomaly scorers behind one interface (see ``base.Scorer``) and the registry that rebuilds them
from the ``scorer`` entry of a checkpoint's model_config.json."""

from __future__ import annotations

from typing import Any

from .base import Scorer
from .baselines import EnergyScorer, MaxLogitScorer, MSPScorer
from .kmeans import KMeansScorer

SCORERS: dict[str, type[Scorer]] = {
    "msp": MSPScorer,
    "maxlogit": MaxLogitScorer,
    "energy": EnergyScorer,
    "kmeans": KMeansScorer,
}


def register_scorer(cls: type[Scorer]) -> type[Scorer]:
    """Add a scorer class under its ``name`` (usable as a decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    SCORERS[cls.name] = cls
    return cls


# --- more scorers register here (one line each) -------------------------------------------
# pixood (condensation prototypes + Neyman-Pearson decision, training/scorers/pixood.py):
from .pixood import PixOODScorer  # noqa: E402 - registered below its dependencies

register_scorer(PixOODScorer)
# -------------------------------------------------------------------------------------------


def build_scorer(config: dict[str, Any]) -> Scorer:
    """Empty scorer of the configured kind (buffers sized by config; load_state_dict fills them)."""
    name = config.get("name")
    if name not in SCORERS:
        raise ValueError(f"unknown scorer {name!r}; known: {sorted(SCORERS)}")
    return SCORERS[name].from_config(config)


__all__ = [
    "SCORERS",
    "EnergyScorer",
    "KMeansScorer",
    "MSPScorer",
    "MaxLogitScorer",
    "Scorer",
    "build_scorer",
    "register_scorer",
]
