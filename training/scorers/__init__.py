"""Anomaly scorers behind one interface (see ``base.Scorer``)."""

from .base import Scorer

__all__ = ["Scorer"]
