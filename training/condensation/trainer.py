"""The condensation loop (docs/method.md §4.3-§4.6) with checkpoint/resume at any iteration.

Data comes as an iterable of ``(features [N, D] float (fp16 fine), labels [N])`` batches of patch
features (labels 255 = void are skipped). A *sequence* source (``len`` + integer indexing, e.g. a
list or a cached-feature reader) is visited in a fresh seeded order every epoch, as published;
any other re-iterable source is visited in its own order and needs ``len()`` or
``config.reinit_every``. The whole state (prototypes, tau, statistics, optimiser, scheduler,
epoch, position in the epoch, random generator) is in ``state_dict()``, so a run killed after a
checkpoint and resumed from it ends with exactly the prototypes of an uninterrupted run.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from pixood_ros import durable

from .config import CondensationConfig
from .prototypes import PrototypeModel
from .step import condensation_step, hard_assignment_counts, reseed_weak_prototypes

Batch = tuple[torch.Tensor, torch.Tensor]
STATE_VERSION = 1


@dataclass
class CondensationResult:
    """Per-class prototypes in the raw feature space after pruning (``prototypes[c]`` is
    [K_c, D]), their exponential scales and running assignments (diagnostics) and the mean loss
    of every epoch."""

    prototypes: list[torch.Tensor]
    tau: list[torch.Tensor]
    weights: list[torch.Tensor]
    epoch_losses: list[float] = field(default_factory=list)


def _is_sequence(source: Any) -> bool:
    return isinstance(source, Sequence) or (
        hasattr(source, "__len__") and hasattr(source, "__getitem__")
    )


class CondensationTrainer:
    """Runs stage 2. Typical use::

    trainer = CondensationTrainer(config, dim=1024)
    if resume_file.exists():
        trainer.load(resume_file)
    result = trainer.fit(batches, on_checkpoint=lambda t: t.save(resume_file))
    """

    def __init__(self, config: CondensationConfig, dim: int, device: str | torch.device = "cpu"):
        self.config = config
        self.dim = dim
        self.device = torch.device(device)
        self.dtype = torch.float64 if config.dtype == "float64" else torch.float32
        self.model = PrototypeModel(config, dim, self.dtype).to(self.device)
        self.optimizer = torch.optim.AdamW(
            [self.model.mu, self.model.tau_param], lr=config.lr, weight_decay=0.0
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=config.epochs
        )
        self.generator = torch.Generator().manual_seed(config.seed)
        self.initialised = False
        self.epoch = 0
        self.batch_index = 0  # next position within the current epoch
        self.iteration = 0
        self.epoch_losses: list[float] = []
        self.reseeded = 0
        self._loss_sum = 0.0
        self._loss_batches = 0

    # -- data -----------------------------------------------------------------------------------
    def _order(self, n: int, epoch: int) -> list[int]:
        """Batch order of ``epoch`` (-1 = initialisation pass): a function of seed and epoch only,
        so a resumed run sees the same order without storing it."""
        if not self.config.shuffle:
            return list(range(n))
        gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch + 1)
        return torch.randperm(n, generator=gen).tolist()

    def _batches(self, source: Iterable[Batch], epoch: int, start: int = 0) -> Iterator[Batch]:
        if _is_sequence(source):
            order = self._order(len(source), epoch)  # type: ignore[arg-type]
            for index in order[start:]:
                yield source[index]  # type: ignore[index]
        else:
            for position, batch in enumerate(source):
                if position >= start:
                    yield batch

    def _prepare(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        features, labels = batch
        features = torch.as_tensor(features)
        labels = torch.as_tensor(labels).reshape(-1).to(self.device).long()
        features = features.reshape(labels.numel(), -1).to(self.device, self.dtype)
        if features.shape[1] != self.dim:
            raise ValueError(f"features have {features.shape[1]} channels, expected {self.dim}")
        keep = (labels != self.config.ignore_index) & (labels >= 0)
        keep &= labels < self.config.num_classes
        return features[keep], labels[keep]

    def _num_batches(self, source: Iterable[Batch]) -> int:
        if hasattr(source, "__len__"):
            return len(source)  # type: ignore[arg-type]
        if self.config.reinit_every is None and self.config.reinit:
            raise ValueError("a source without len() needs config.reinit_every")
        return 0

    # -- stages ---------------------------------------------------------------------------------
    def initialise(self, source: Iterable[Batch]) -> None:
        """Fill per-class buffers of up to ``init_per_class`` rows (random rows of a batch when it
        offers more than still fit), then whiten and draw the initial prototypes."""
        cfg = self.config
        buffers: list[list[torch.Tensor]] = [[] for _ in range(cfg.num_classes)]
        counts = [0] * cfg.num_classes
        for batch in self._batches(source, epoch=-1):
            x, y = self._prepare(batch)
            for c in torch.unique(y).tolist():
                room = cfg.init_per_class - counts[c]
                if room <= 0:
                    continue
                rows = x[y == c]
                if rows.shape[0] > room:
                    pick = torch.randperm(rows.shape[0], generator=self.generator)[:room]
                    rows = rows[pick.to(rows.device)]
                buffers[c].append(rows.detach().cpu())
                counts[c] += rows.shape[0]
            if all(n >= cfg.init_per_class for n in counts):
                break
        stacked = [
            torch.cat(b) if b else torch.zeros(0, self.dim, dtype=self.dtype) for b in buffers
        ]
        self.model.initialise(stacked, self.generator)
        self.initialised = True

    def train(
        self,
        source: Iterable[Batch],
        on_checkpoint: Callable[[CondensationTrainer], None] | None = None,
        checkpoint_every: int = 0,
        progress: bool = False,
    ) -> None:
        """Run the remaining epochs. ``on_checkpoint(self)`` is called every ``checkpoint_every``
        iterations (0 = never mid-epoch) and after every epoch."""
        if not self.initialised:
            raise RuntimeError("call initialise() (or fit()) before train()")
        cfg = self.config
        n_batches = self._num_batches(source)
        period = cfg.reinit_every or max(1, n_batches // 2)
        scale = cfg.scale_for(self.dim)
        bar = tqdm(
            total=cfg.epochs * n_batches if n_batches else None,
            initial=self.epoch * n_batches + self.batch_index,
            desc="condensation",
            unit="batch",
            disable=not progress,
        )
        while self.epoch < cfg.epochs:
            temperature = cfg.temperature(self.epoch)
            for batch in self._batches(source, self.epoch, start=self.batch_index):
                x, y = self._prepare(batch)
                self.batch_index += 1
                self.iteration += 1
                bar.update(1)
                if y.numel():
                    x_white = self.model.whiten(x)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss, counts, sizes = condensation_step(
                        self.model, x_white, y, temperature, scale, cfg.chunk_rows
                    )
                    self.model.update_stats(counts, sizes)
                    self.optimizer.step()
                    self._loss_sum += loss
                    self._loss_batches += 1
                    reseed_due = cfg.reinit and self.iteration % period == 0
                    if reseed_due and cfg.reinit_first_epoch <= self.epoch < cfg.reseed_stop_epoch:
                        self.reseeded += reseed_weak_prototypes(
                            self.model, x_white.detach(), y, self.optimizer, self.generator
                        )
                if (
                    on_checkpoint is not None
                    and checkpoint_every
                    and (self.iteration % checkpoint_every == 0)
                ):
                    on_checkpoint(self)
            self.epoch_losses.append(self._loss_sum / max(1, self._loss_batches))
            bar.set_postfix(loss=f"{self.epoch_losses[-1]:.4g}")
            self._loss_sum, self._loss_batches = 0.0, 0
            self.scheduler.step()
            self.epoch += 1
            self.batch_index = 0
            if on_checkpoint is not None:
                on_checkpoint(self)
        bar.close()

    @torch.no_grad()
    def prune_and_export(self, source: Iterable[Batch]) -> CondensationResult:
        """Hard-assign every training patch to its nearest valid own-class prototype, invalidate
        prototypes that win nothing, and return the valid ones in raw feature space."""
        cfg = self.config
        scale = cfg.scale_for(self.dim)
        hits = torch.zeros(cfg.num_classes, cfg.K, dtype=torch.long, device=self.device)
        for batch in self._batches(source, epoch=cfg.epochs):
            x, y = self._prepare(batch)
            if y.numel():
                hits += hard_assignment_counts(
                    self.model, self.model.whiten(x), y, scale, cfg.chunk_rows
                )
        valid = self.model.valid() & (hits > 0)
        self.model.running_assignment[hits == 0] = 0.0
        raw = self.model.raw_prototypes()
        tau = self.model.tau().detach()
        return CondensationResult(
            prototypes=[raw[c, valid[c]].float().cpu() for c in range(cfg.num_classes)],
            tau=[tau[c, valid[c]].float().cpu() for c in range(cfg.num_classes)],
            weights=[
                self.model.running_assignment[c, valid[c]].float().cpu()
                for c in range(cfg.num_classes)
            ],
            epoch_losses=list(self.epoch_losses),
        )

    def fit(
        self,
        source: Iterable[Batch],
        on_checkpoint: Callable[[CondensationTrainer], None] | None = None,
        checkpoint_every: int = 0,
        progress: bool = False,
    ) -> CondensationResult:
        """Initialise (unless resumed), train the remaining epochs, prune and export."""
        if not self.initialised:
            self.initialise(source)
            if on_checkpoint is not None:
                on_checkpoint(self)
        self.train(source, on_checkpoint, checkpoint_every, progress)
        return self.prune_and_export(source)

    # -- checkpointing --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A deep copy of everything needed to continue (safe to keep while training goes on)."""
        return copy.deepcopy(
            {
                "version": STATE_VERSION,
                "config": self.config.to_dict(),
                "dim": self.dim,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "generator": self.generator.get_state(),
                "initialised": self.initialised,
                "epoch": self.epoch,
                "batch_index": self.batch_index,
                "iteration": self.iteration,
                "epoch_losses": list(self.epoch_losses),
                "reseeded": self.reseeded,
                "loss_sum": self._loss_sum,
                "loss_batches": self._loss_batches,
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported condensation state version {state.get('version')}")
        if state["config"] != self.config.to_dict() or state["dim"] != self.dim:
            raise ValueError("condensation state was written with a different config")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self.initialised = bool(state["initialised"])
        self.epoch = int(state["epoch"])
        self.batch_index = int(state["batch_index"])
        self.iteration = int(state["iteration"])
        self.epoch_losses = list(state["epoch_losses"])
        self.reseeded = int(state["reseeded"])
        self._loss_sum = float(state["loss_sum"])
        self._loss_batches = int(state["loss_batches"])

    def save(self, path: str | Path) -> None:
        """Write the state durably (temporary file + fsync + rename): a kill -9 or power cut
        mid-write leaves the previous checkpoint intact."""
        with durable.replacing(path) as tmp:
            torch.save(self.state_dict(), tmp)

    def load(self, path: str | Path) -> None:
        self.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))
