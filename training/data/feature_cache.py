"""On-disk cache of backbone outputs for stages 2 and 3.

Stage 2 (condensation) iterates ~100 times over the training set and stage 3 once more; running the
frozen ViT each time would dominate training cost, so the per-patch quantities are computed once:

- ``features``: last-block normed features, float16, channels-last ``[B, h, w, D]`` (what the
  prototypes and the distance computation use, docs/method.md §4.2);
- ``logits``: the stage-1 decoder's patch logits, float32 ``[B, h, w, C]``. We store the logits
  instead of all intermediate blocks: the decoder input (4 blocks, 4096 channels for ViT-L) would
  quadruple the cache, while the logits are C << D channels. The price is that the cache depends
  on the decoder weights, so their hash is part of the cache key (a retrained decoder invalidates
  the cache);
- ``labels``: majority-vote patch labels (uint8 ``[B, h, w]``, docs/method.md §4.1).

One ``.npy`` file per quantity and batch, read back with ``np.load(mmap_mode="r")``, so memory
stays bounded by one batch no matter how large the data set is. ``key.json`` holds the hash of
everything the contents depend on (backbone name and weights, blocks, decoder weights, input size,
the data list with file sizes and mtimes, batch size, patch-label threshold); a cache whose key
differs is wiped and rebuilt, one whose key matches is reused (missing batches are filled in, so an
interrupted extraction resumes). Files are written to a temporary name, fsynced and renamed
(``pixood_ros.durable``), the labels file last, so a batch counts as present only when all three
files are complete.

Extraction can be spread over torchrun ranks: batch ``i`` is computed by rank ``i % world_size``,
every rank writes its own batch files and rank 0 writes the key.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from pixood_ros import durable

from .patch_labels import majority_patch_labels

CACHE_FORMAT = 1
QUANTITIES = ("features", "logits", "labels")  # write order: labels last
ExtractFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def state_dict_hash(module: torch.nn.Module | dict[str, torch.Tensor]) -> str:
    """sha256 over parameter/buffer names, shapes, dtypes and bytes."""
    state = module.state_dict() if isinstance(module, torch.nn.Module) else module
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(
            tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        )
    return digest.hexdigest()


def hash_inputs(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class CachedBatch:
    features: torch.Tensor  # float16 [B, h, w, D]
    logits: torch.Tensor  # float32 [B, h, w, C]
    labels: torch.Tensor  # long [B, h, w], 255 void

    def labelled(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(features float32 [N, D], logits [N, C], labels [N]) of the non-void patches."""
        keep = self.labels.reshape(-1) != 255
        feats = self.features.reshape(-1, self.features.shape[-1])[keep].float()
        logits = self.logits.reshape(-1, self.logits.shape[-1])[keep]
        return feats, logits, self.labels.reshape(-1)[keep]


class FeatureCache:
    """A directory of cached batches plus ``key.json``."""

    def __init__(self, directory: str | Path, key_inputs: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.key_inputs = {"format": CACHE_FORMAT, **key_inputs}
        self.key = hash_inputs(self.key_inputs)

    # -- bookkeeping -------------------------------------------------------------------------
    def _key_path(self) -> Path:
        return self.directory / "key.json"

    def stored_key(self) -> dict[str, Any] | None:
        try:
            return json.loads(self._key_path().read_text())
        except (OSError, ValueError):
            return None

    def _paths(self, index: int) -> dict[str, Path]:
        return {q: self.directory / f"b{index:06d}_{q}.npy" for q in QUANTITIES}

    def has_batch(self, index: int) -> bool:
        return self._paths(index)["labels"].is_file()

    @property
    def num_batches(self) -> int:
        stored = self.stored_key()
        return int(stored["num_batches"]) if stored else 0

    def is_valid(self) -> bool:
        """Key matches and every batch is present and marked complete."""
        stored = self.stored_key()
        return bool(
            stored
            and stored.get("key") == self.key
            and stored.get("complete")
            and all(self.has_batch(i) for i in range(int(stored["num_batches"])))
        )

    def prepare(self, num_batches: int, *, is_writer: bool = True) -> None:
        """Keep the directory if its key matches, else wipe it and write the new key."""
        stored = self.stored_key()
        if stored and stored.get("key") == self.key and stored.get("num_batches") == num_batches:
            return
        if is_writer:
            if self.directory.exists():
                shutil.rmtree(self.directory)
            self.directory.mkdir(parents=True)
            self._write_key(num_batches, complete=False)

    def _write_key(self, num_batches: int, complete: bool) -> None:
        record = {
            "key": self.key,
            "num_batches": num_batches,
            "complete": complete,
            "inputs": self.key_inputs,
        }
        durable.write_text(
            self._key_path(), json.dumps(record, indent=1, sort_keys=True, default=str)
        )

    def mark_complete(self) -> None:
        self._write_key(self.num_batches, complete=True)

    def write_batch(
        self, index: int, features: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
    ) -> None:
        """features [B, D, h, w], logits [B, C, h, w], patch labels [B, h, w] (channels-first in,
        channels-last on disk)."""
        arrays = {
            "features": features.detach().permute(0, 2, 3, 1).to(torch.float16).cpu().numpy(),
            "logits": logits.detach().permute(0, 2, 3, 1).float().cpu().numpy(),
            "labels": labels.detach().to(torch.uint8).cpu().numpy(),
        }
        for quantity, path in self._paths(index).items():  # labels last = completeness marker
            with durable.replacing(path) as tmp, open(tmp, "wb") as handle:
                np.save(handle, np.ascontiguousarray(arrays[quantity]))

    # -- reading -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.num_batches

    def batch(self, index: int) -> CachedBatch:
        paths = self._paths(index)
        loaded = {q: np.load(p, mmap_mode="r", allow_pickle=False) for q, p in paths.items()}
        return CachedBatch(
            features=torch.from_numpy(np.array(loaded["features"])),
            logits=torch.from_numpy(np.array(loaded["logits"])),
            labels=torch.from_numpy(np.array(loaded["labels"])).long(),
        )

    def __iter__(self) -> Iterator[CachedBatch]:
        for index in range(len(self)):
            yield self.batch(index)


def _dist_info() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def build_feature_cache(
    directory: str | Path,
    dataset: torch.utils.data.Dataset,
    extract: ExtractFn,
    key_inputs: dict[str, Any],
    *,
    batch_size: int,
    num_workers: int = 0,
    patch: int = 14,
    threshold: float = 0.9,
    device: torch.device | str = "cpu",
    progress: bool = True,
    description: str = "caching features",
) -> FeatureCache:
    """Fill (or reuse) the cache of ``dataset`` under ``directory``.

    ``extract(images float [B, 3, H, W] on device) -> (features [B, D, h, w], logits [B, C, h, w])``
    runs the frozen backbone and decoder. Under torchrun each rank computes its share of the
    batches; all ranks return the same complete cache.
    """
    key_inputs = {**key_inputs, "batch_size": batch_size, "patch": patch, "threshold": threshold}
    cache = FeatureCache(directory, key_inputs)
    rank, world = _dist_info()
    if cache.is_valid():
        return cache
    num_batches = (len(dataset) + batch_size - 1) // batch_size  # type: ignore[arg-type]
    cache.prepare(num_batches, is_writer=rank == 0)
    if world > 1:
        torch.distributed.barrier()
    todo = [i for i in range(num_batches) if i % world == rank and not cache.has_batch(i)]
    batches = [
        list(range(i * batch_size, min((i + 1) * batch_size, len(dataset))))  # type: ignore[arg-type]
        for i in todo
    ]
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=num_workers)
    bar = tqdm(loader, desc=description, unit="batch", disable=not progress or rank != 0)
    with torch.no_grad():
        for index, batch in zip(todo, bar, strict=True):
            features, logits = extract(batch["image"].to(device))
            labels = majority_patch_labels(batch["label"].to(device), patch, threshold)
            cache.write_batch(index, features, logits, labels)
    if world > 1:
        torch.distributed.barrier()
    if rank == 0:
        cache.mark_complete()
    if world > 1:
        torch.distributed.barrier()
    return cache
