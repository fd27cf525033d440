"""Exceptions of the inference engine, in a module of their own so every engine helper can raise
them without import cycles. Users import them from `pixood_ros.engine`."""

from __future__ import annotations

from pixood_ros.cli import UserError


class ModelError(UserError, RuntimeError):
    """The model file cannot be used: missing, not ONNX, not a PixOOD model, bad metadata, no
    usable execution provider, or a runtime failure inside the model. The message is one line a
    user can act on.

    A UserError, so the commands end with that line and exit code 2; a RuntimeError as well, so
    callers that catch runtime failures keep catching it."""


class InputError(ModelError, ValueError):
    """The image given to the engine does not match what the model takes (dtype, shape).

    A ValueError as well, so callers that treat bad frames as bad values catch it naturally."""
