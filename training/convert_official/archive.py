"""Opening a downloaded ``.pth`` without ``torch.load``'s dispatch: no file is ever run as code.

``torch.load(weights_only=False)`` hands any zip archive holding ``constants.pkl`` to
``torch.jit.load``, which runs the TorchScript code inside it (a scripted ``__setstate__``) before
any unpickler is consulted. So the file is opened once and inspected first: a zip archive must list
only the entries ``torch.save`` writes (``<name>/data.pkl``, ``<name>/data/<n>``, ``version``,
``byteorder``, ...); TorchScript code (``code/``, ``*.py``, ``constants.pkl``, ``bytecode.pkl``)
or any other entry is refused. Its ``data.pkl`` is then read here with the restricted unpickler,
tensors rebuilt from the ``data/<n>`` bytes, so ``torch.jit`` is never reached. A file that is
not a zip archive (torch's legacy format) goes to ``torch.load`` with the restricted unpickler:
torch only dispatches zip archives to TorchScript.
"""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import torch

from .unpickler import Unpickler, UnsafePickleError

ZIP_MAGIC = b"PK\x03\x04"  # how torch.load tells a zip archive from the legacy format
TORCHSCRIPT_ENTRIES = re.compile(r"code/|.*constants\.pkl$|.*bytecode\.pkl$|.*\.py$")
SAVE_ENTRIES = re.compile(
    r"data\.pkl|data/\d+|version|byteorder|\.format_version|\.storage_alignment"
    r"|\.data/serialization_id|\.data/version"
)
STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128, "UntypedStorage": torch.uint8,
}  # fmt: skip


class _StorageType:
    """What a pickled ``torch.FloatStorage`` (etc.) stands for here: only its dtype."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


class _ArchiveUnpickler(Unpickler):
    """The restricted unpickler plus the storage references of a ``torch.save`` zip archive."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str):
        super().__init__(archive.open(f"{prefix}data.pkl"), encoding="utf-8")
        self.archive, self.prefix = archive, prefix
        self.storages: dict[str, torch.storage.TypedStorage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> torch.storage.TypedStorage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise UnsafePickleError(f"refusing persistent reference {pid!r} in the pickle")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType) or not str(key).isdigit():
            raise UnsafePickleError(f"refusing storage reference {pid!r} in the pickle")
        if key not in self.storages:
            data = self.archive.read(f"{self.prefix}data/{key}")
            if len(data) != int(numel) * storage_type.dtype.itemsize:
                raise ValueError(f"storage {key} holds {len(data)} bytes, not {numel} elements")
            untyped = torch.UntypedStorage.from_buffer(data, dtype=torch.uint8)
            self.storages[key] = torch.storage.TypedStorage(
                wrap_storage=untyped, dtype=storage_type.dtype, _internal=True
            )
        return self.storages[key]


def _archive_prefix(names: list[str], path: Path) -> str:
    """The one top folder of a ``torch.save`` archive; anything it would not write is refused."""
    prefixes = {n.split("/", 1)[0] for n in names}
    if len(prefixes) != 1 or "/" not in names[0]:
        raise UnsafePickleError(f"refusing {path}: not laid out as a torch.save archive")
    prefix = f"{prefixes.pop()}/"
    inside = [n[len(prefix) :] for n in names]
    code = [n for n in inside if TORCHSCRIPT_ENTRIES.match(n)]
    if code:
        raise UnsafePickleError(
            f"refusing {path}: a TorchScript archive (it holds code: {code[0]}), not a checkpoint"
        )
    odd = [n for n in inside if not SAVE_ENTRIES.fullmatch(n)]
    if odd or "data.pkl" not in inside:
        what = f"unexpected entry {odd[0]}" if odd else "no data.pkl"
        raise UnsafePickleError(f"refusing {path}: {what} (not a torch.save archive)")
    return prefix


def _read_archive(handle: BinaryIO, path: Path) -> Any:
    with zipfile.ZipFile(handle) as archive:
        prefix = _archive_prefix(archive.namelist(), path)
        packed = [i.filename for i in archive.infolist() if i.compress_type != zipfile.ZIP_STORED]
        if packed:  # torch.save stores entries uncompressed (and so cannot hold a zip bomb)
            raise UnsafePickleError(f"refusing {path}: compressed entry {packed[0]}")
        if f"{prefix}byteorder" in archive.namelist():
            order = archive.read(f"{prefix}byteorder").decode("ascii", "replace")
            if order != sys.byteorder:
                raise ValueError(f"written on a {order}-endian machine (this one is not)")
        return _ArchiveUnpickler(archive, prefix).load()


def load_official_checkpoint(path: str | Path) -> Any:
    """The data of a ``torch.save`` file (tensors on the CPU), through the restricted unpickler
    only; TorchScript archives and unknown archive entries raise ``UnsafePickleError``."""
    from . import unpickler

    path = Path(path)
    with open(path, "rb") as handle:
        if handle.read(len(ZIP_MAGIC)) == ZIP_MAGIC:
            handle.seek(0)
            return _read_archive(handle, path)
        handle.seek(0)
        return torch.load(handle, map_location="cpu", weights_only=False, pickle_module=unpickler)
