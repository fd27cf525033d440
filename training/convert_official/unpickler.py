"""Restricted unpickling of the official PixOOD checkpoints (docs/method.md §7), no official code.

The official ``.pth`` files are full pickles: besides tensors they hold instances of the project's
own classes (``helpers.kmeans.OnlineKMeans``, ``DiffKMeansMultiClassv2``), a ``SimpleNamespace``,
scipy ``interp1d`` objects and numpy arrays. A plain ``torch.load(weights_only=False)`` would
import and run whatever a downloaded file names, so instead the archive reader (``archive.py``)
and, for torch's legacy format, ``torch.load`` use this module's ``Unpickler``: every global the
file refers to is looked up in an allowlist, the official classes become inert attribute
containers (``OfficialObject``), and anything else is refused with an ``UnsafePickleError`` naming
the ``module.name``. The allowlist only holds constructors of
plain data (tensors, storages, numpy arrays/dtypes/scalars, containers); none of them can run code
named by the file.

Python 2-protocol pickles refer to nested attributes as ``getattr(cls, name)`` (interp1d stores its
``_call`` method that way), so ``getattr`` is mapped to a version that only answers for the inert
containers.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import pickle
import types
from typing import Any

import numpy as np
import torch

__all__ = [
    "OfficialObject",
    "UnsafePickleError",
    "Unpickler",
    "load",
]


class UnsafePickleError(pickle.UnpicklingError):
    """The file refers to a global that is not on the allowlist (it is never imported)."""


class _OfficialMeta(type):
    """Class attributes of an official class (``interp1d._call_linear_np``) resolve to a marker."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return OfficialAttribute(f"{cls.official_name}.{name}")


class OfficialObject(metaclass=_OfficialMeta):
    """An inert stand-in for an instance of an official class: its pickled state, as attributes.

    ``official_name`` is the ``module.Class`` named in the file. Nothing of the original class
    (methods, ``__setstate__``, ``nn.Module`` machinery) runs.
    """

    official_name = "OfficialObject"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_args"] = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}  # (dict state, slot state)
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def __repr__(self) -> str:
        return f"<official {self.official_name}: {sorted(self.__dict__)}>"


class OfficialAttribute:
    """Marker for a pickled reference to an attribute of an official class (e.g. a method)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<official attribute {self.name}>"


def _official_class(module: str, name: str) -> type[OfficialObject]:
    return _OfficialMeta(name, (OfficialObject,), {"official_name": f"{module}.{name}"})


# Official classes -> inert containers (all instances hold state only).
OFFICIAL_CLASSES: dict[tuple[str, str], type[OfficialObject]] = {
    key: _official_class(*key)
    for key in (
        ("helpers.kmeans", "OnlineKMeans"),
        ("helpers.kmeans", "DiffKMeansMultiClassv2"),
        ("scipy.interpolate._interpolate", "interp1d"),
        ("scipy.interpolate.interpolate", "interp1d"),  # scipy < 1.8 module name
    )
}


def _safe_getattr(obj: Any, name: str, *default: Any) -> Any:
    """``getattr`` restricted to the inert official containers (protocol-2 nested names)."""
    if isinstance(obj, (_OfficialMeta, OfficialObject)):
        return getattr(obj, name, *default)
    raise UnsafePickleError(
        f"refusing getattr({type(obj).__name__}, {name!r}) in the pickle: only attributes of "
        "the official PixOOD classes may be referenced"
    )


def _safe_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """``copyreg._reconstructor`` (protocol 0/1 objects), for the official containers only."""
    if isinstance(cls, _OfficialMeta):
        obj = cls.__new__(cls)
        if state is not None:
            obj.__setstate__(state)
        return obj
    raise UnsafePickleError(f"refusing copyreg._reconstructor for {cls!r}")


def _numpy_core(name: str) -> Any:
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    return getattr(multiarray, name)


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
    """numpy's protocol-5 array rebuild, without trusting anything but the bytes."""
    return np.frombuffer(buffer, dtype=np.dtype(dtype)).reshape(shape, order=order)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = dict(OFFICIAL_CLASSES)
    allowed.update(
        {
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("collections", "Counter"): collections.Counter,
            ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset,
            ("builtins", "complex"): complex,
            ("builtins", "bytearray"): bytearray,
            ("builtins", "slice"): slice,
            ("builtins", "getattr"): _safe_getattr,
            ("copyreg", "_reconstructor"): _safe_reconstructor,
            ("_codecs", "encode"): codecs.encode,  # protocol-2 bytes
            ("types", "SimpleNamespace"): types.SimpleNamespace,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("torch", "Size"): torch.Size,
            ("torch", "device"): torch.device,
            ("torch", "Tensor"): torch.Tensor,
            ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
            ("torch._tensor", "_rebuild_from_type_v2"): torch._tensor._rebuild_from_type_v2,
        }
    )
    for core in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(core, "_reconstruct")] = _numpy_core("_reconstruct")
        allowed[(core, "scalar")] = _numpy_core("scalar")
    for core in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(core, "_frombuffer")] = _frombuffer
    for scalar in (
        "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
        "uint32", "uint64", "bool_", "complex64", "complex128",
    ):  # fmt: skip
        allowed[("numpy", scalar)] = getattr(np, scalar)
    for dtype_name in (
        "float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8",
        "bool", "complex64", "complex128",
    ):  # fmt: skip
        allowed[("torch", dtype_name)] = getattr(torch, dtype_name)
    for rebuild in (
        "_rebuild_tensor",
        "_rebuild_tensor_v2",
        "_rebuild_tensor_v3",
        "_rebuild_parameter",
        "_rebuild_parameter_with_state",
        "_rebuild_device_tensor_from_numpy",
        "_rebuild_device_tensor_from_cpu_tensor",
    ):
        allowed[("torch._utils", rebuild)] = getattr(torch._utils, rebuild)
    return allowed


ALLOWED_GLOBALS = _allowed_globals()


class Unpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves globals only from ``ALLOWED_GLOBALS``.

    torch.load subclasses this (its wrapper turns ``*Storage`` names into storage types itself
    and hands everything else to this ``find_class``).
    """

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names written by protocol <= 2 pickles (``__builtin__``, ``copy_reg``).
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = ALLOWED_GLOBALS.get((module, name))
        if found is not None:
            return found
        head, _, attribute = name.partition(".")
        official = ALLOWED_GLOBALS.get((module, head))
        if attribute and isinstance(official, _OfficialMeta):  # protocol >= 4 nested names
            return OfficialAttribute(f"{module}.{name}")
        raise UnsafePickleError(
            f"refusing to unpickle {module}.{name}: not a class an official PixOOD checkpoint "
            "contains (the file may be damaged or malicious)"
        )


def load(file: Any, **kwargs: Any) -> Any:
    """``pickle.load`` with the restricted ``Unpickler`` (used by torch's legacy format)."""
    return Unpickler(file, **kwargs).load()
