"""PyTorch models and inputs shared by the training and speed tests (tiny, random, seeded)."""

from __future__ import annotations

import torch

from pixood_training.model import tiny_model


def random_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A random uint8 RGB batch [1, h, w, 3], the model's input."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (1, h, w, 3), dtype=torch.uint8, generator=generator)


def tiny_pixood_model(eval_labels=(0, 1)):
    """Tiny model with a fitted PixOOD scorer (random prototypes, decision fitted on its own
    patches): the scorer whose forward scores only the needed classes."""
    from pixood_training.condensation import PrototypeDistance
    from pixood_training.decision import fit_decision
    from pixood_training.scorers.pixood import PixOODScorer

    model = tiny_model(seed=7, eval_labels=list(eval_labels))
    with torch.no_grad():
        features, logits = model.features_and_logits(
            model.preprocess(random_image(140, 196, seed=8))
        )
    e = model.last_block(features).permute(0, 2, 3, 1).reshape(-1, 32)
    flat_logits = logits.permute(0, 2, 3, 1).reshape(-1, 19)
    prototypes = e[torch.randperm(e.shape[0], generator=torch.Generator().manual_seed(0))[:57]]
    prototypes = prototypes.reshape(19, 3, 32)
    dists = PrototypeDistance(prototypes)(e)
    decision = fit_decision(flat_logits.argmax(1), flat_logits, dists, 19, grid_size=120)
    model.scorer = PixOODScorer(prototypes, decision)
    return model.eval()
