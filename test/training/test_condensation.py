"""Stage 2 (condensation): cluster recovery, pruning, chunking, resume, patch labels."""

from __future__ import annotations

import pytest
import torch

from pixood_training.condensation import (
    CondensationConfig,
    CondensationTrainer,
    majority_patch_labels,
)
from pixood_training.condensation.step import reseed_weak_prototypes

DIM = 16
CLASSES = 3
BLOBS = 4


def _blob_data(seed: int = 0, batches: int = 6, per_batch: int = 240):
    """3 classes x 4 well separated Gaussian blobs in 16-D, split into shuffled batches with a
    few void (255) rows."""
    gen = torch.Generator().manual_seed(seed)
    centres = 8.0 * torch.randn(CLASSES, BLOBS, DIM, generator=gen)
    out = []
    for _ in range(batches):
        cls = torch.randint(0, CLASSES, (per_batch,), generator=gen)
        blob = torch.randint(0, BLOBS, (per_batch,), generator=gen)
        x = centres[cls, blob] + 0.3 * torch.randn(per_batch, DIM, generator=gen)
        labels = cls.clone()
        labels[:10] = 255
        out.append((x.half(), labels))  # fp16 features, as the on-disk cache stores them
    return centres, out


def _config(**overrides) -> CondensationConfig:
    values = dict(
        num_classes=CLASSES,
        K=10,
        init_per_class=300,
        epochs=8,
        reinit_stop_epoch=6,
        seed=3,
    )
    values.update(overrides)
    return CondensationConfig(**values)


def test_recovers_blobs_and_prunes():
    centres, batches = _blob_data()
    trainer = CondensationTrainer(_config(), dim=DIM)
    trainer.initialise(batches)
    trainer.train(batches)
    # Plant a prototype far from all data: it wins no patch and must be pruned.
    with torch.no_grad():
        trainer.model.mu[1, 0] = 1e3
        trainer.model.running_assignment[1, 0] = 1e6
    result = trainer.prune_and_export(batches)

    assert len(result.prototypes) == CLASSES
    for c in range(CLASSES):
        protos = result.prototypes[c]
        assert protos.shape[1] == DIM and 1 <= protos.shape[0] <= 10
        nearest = torch.cdist(centres[c], protos).min(dim=1).values
        assert nearest.max() < 0.5, f"class {c}: blob without a prototype, {nearest}"
        assert torch.isfinite(protos).all()
    assert result.prototypes[1].abs().max() < 100, "the planted far prototype was not pruned"
    # Every exported prototype is the nearest own-class prototype of some training patch.
    assert sum(p.shape[0] for p in result.prototypes) < CLASSES * 10
    assert len(result.epoch_losses) == 8
    assert torch.isfinite(torch.tensor(result.epoch_losses)).all()
    assert result.epoch_losses[-1] < result.epoch_losses[0]


def test_chunking_matches_unchunked():
    _, batches = _blob_data(seed=1, batches=3)
    results = []
    for chunk in (37, 100_000):
        trainer = CondensationTrainer(_config(chunk_rows=chunk, epochs=4, dtype="float64"), dim=DIM)
        results.append(trainer.fit(batches))
    for a, b in zip(results[0].prototypes, results[1].prototypes, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_resume_after_kill_gives_same_prototypes(tmp_path):
    _, batches = _blob_data(seed=2, batches=4, per_batch=150)
    config = _config(epochs=4, reinit_first_epoch=1, reinit_stop_epoch=4)
    uninterrupted = CondensationTrainer(config, dim=DIM)
    reference = uninterrupted.fit(batches)

    state_file = tmp_path / "condense_state.pt"

    class Killed(Exception):
        pass

    def checkpoint_then_die(trainer: CondensationTrainer) -> None:
        trainer.save(state_file)
        if trainer.iteration == 10:  # mid-epoch 2 (4 batches per epoch), after a re-seed
            raise Killed

    with pytest.raises(Killed):
        CondensationTrainer(config, dim=DIM).fit(
            batches, on_checkpoint=checkpoint_then_die, checkpoint_every=5
        )
    resumed = CondensationTrainer(config, dim=DIM)
    resumed.load(state_file)
    assert resumed.epoch == 2 and resumed.batch_index == 2
    result = resumed.fit(batches)
    assert resumed.reseeded == uninterrupted.reseeded > 0  # the run re-seeded prototypes
    for a, b in zip(reference.prototypes, result.prototypes, strict=True):
        assert torch.equal(a, b)
    assert reference.epoch_losses == result.epoch_losses


def test_reseed_moves_weak_prototypes_and_resets_their_adam_moments():
    _, batches = _blob_data(seed=6, batches=2)
    trainer = CondensationTrainer(_config(epochs=3, reinit=False), dim=DIM)
    trainer.initialise(batches)
    trainer.train(batches)
    model, state = trainer.model, trainer.optimizer.state[trainer.model.mu]
    with torch.no_grad():
        model.running_assignment[0, :3] = 0.0  # three weak prototypes of class 0
    before = model.mu.detach().clone()
    x, y = trainer._prepare(batches[0])
    moved = reseed_weak_prototypes(model, model.whiten(x), y, trainer.optimizer, trainer.generator)
    assert moved >= 3
    assert not torch.equal(model.mu[0, :3], before[0, :3])
    assert torch.all(state["exp_avg"][0, :3] == 0) and torch.all(state["exp_avg_sq"][0, :3] == 0)
    assert torch.all(model.valid()[0, :3])
    # each re-seeded prototype sits on a class-0 patch of the batch
    white = model.whiten(x[y == 0])
    gaps = (model.mu[0, :3].detach()[:, None] - white[None]).norm(dim=2).min(dim=1).values
    assert gaps.max() < 1e-5


def test_resume_rejects_other_config(tmp_path):
    trainer = CondensationTrainer(_config(), dim=DIM)
    trainer.save(tmp_path / "s.pt")
    with pytest.raises(ValueError, match="different config"):
        CondensationTrainer(_config(K=5), dim=DIM).load(tmp_path / "s.pt")


def test_deterministic_given_seed():
    _, batches = _blob_data(seed=4, batches=2)
    a = CondensationTrainer(_config(epochs=2), dim=DIM).fit(batches)
    b = CondensationTrainer(_config(epochs=2), dim=DIM).fit(batches)
    c = CondensationTrainer(_config(epochs=2, seed=99), dim=DIM).fit(batches)
    assert all(torch.equal(x, y) for x, y in zip(a.prototypes, b.prototypes, strict=True))
    assert not all(
        x.shape == z.shape and torch.equal(x, z)
        for x, z in zip(a.prototypes, c.prototypes, strict=True)
    )


def test_plain_iterable_source_needs_length_or_period():
    _, batches = _blob_data(seed=5, batches=2)
    trainer = CondensationTrainer(_config(epochs=1), dim=DIM)
    with pytest.raises(ValueError, match="reinit_every"):
        trainer.fit(iter_forever(batches))
    result = CondensationTrainer(_config(epochs=1, reinit_every=1), dim=DIM).fit(
        iter_forever(batches)
    )
    assert all(p.shape[0] > 0 for p in result.prototypes)


class iter_forever:
    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


def test_majority_vote_patch_labels():
    p = 14
    labels = torch.full((1, 2 * p, 3 * p), 255, dtype=torch.long)
    labels[0, :p, :p] = 0  # pure class 0
    labels[0, :p, p : 2 * p] = 1
    labels[0, :p, p : p + 10] = 2  # 140 of 196 pixels class 2 (71 %): below 0.9 -> void
    labels[0, :p, 2 * p :] = 3
    labels[0, 0, 2 * p : 2 * p + 14] = 4  # 14 of 196 pixels differ: 92.9 % class 3 -> class 3
    labels[0, p:, :p] = 5
    labels[0, p:, p:] = 255  # void majority stays void
    labels[0, p, 2 * p] = 6
    out = majority_patch_labels(labels, patch=p, threshold=0.9)
    assert out.tolist() == [[[0, 255, 3], [5, 255, 255]]]


def test_config_from_training_section():
    from pixood_training.train.config import load_config

    training = load_config(None, ["data.root=/x", "condense.K=7", "condense.epochs=3"])
    config = training.condensation()
    assert config.K == 7 and config.epochs == 3 and config.seed == training.seed
    assert config.temperature(0) == 0.5 and abs(_config(epochs=100).temperature(100) - 2.0) < 1e-12


def test_reseeding_stops_at_nine_tenths_of_the_epochs(monkeypatch):
    """Published: re-seeding in epochs [1, 0.9 x epochs); an explicit stop is still honoured."""
    from pixood_training.condensation import trainer as trainer_module

    assert CondensationConfig(epochs=100).reseed_stop_epoch == 90
    assert CondensationConfig(epochs=30).reseed_stop_epoch == 27
    assert CondensationConfig(epochs=30, reinit_stop_epoch=12).reseed_stop_epoch == 12
    _, batches = _blob_data(seed=4, batches=4, per_batch=150)
    trainer = CondensationTrainer(_config(epochs=10, reinit_stop_epoch=None), dim=DIM)
    epochs = []
    real = trainer_module.reseed_weak_prototypes

    def record(*args, **kwargs):
        epochs.append(trainer.epoch)
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "reseed_weak_prototypes", record)
    trainer.fit(batches)
    assert epochs and max(epochs) == 8 and min(epochs) >= 1
