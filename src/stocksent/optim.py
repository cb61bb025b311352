"""Optimizers: the article's Adadelta, and Adam / AdamW with a sparse embedding update."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import TrainConfig


class SplitOptimizer:
    """SparseAdam on the embedding table, fused Adam(W) on every other weight.

    A batch of 64 messages touches a few hundred of the ~13,000 embedding rows; a dense update
    rewrites all of them every step, which dominated a CPU training step. The sparse half moves
    only the rows in the batch (lazy Adam) and carries no weight decay.
    """

    def __init__(self, embedding: nn.Embedding, rest: list[nn.Parameter], cfg: TrainConfig):
        self.sparse = torch.optim.SparseAdam([embedding.weight], lr=cfg.lr, eps=cfg.eps)
        self.dense = _adam(rest, cfg)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.sparse.zero_grad(set_to_none)
        self.dense.zero_grad(set_to_none)

    def step(self) -> None:
        self.sparse.step()
        self.dense.step()

    def state_dict(self) -> dict[str, Any]:
        return {"sparse": self.sparse.state_dict(), "dense": self.dense.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sparse.load_state_dict(state["sparse"])
        self.dense.load_state_dict(state["dense"])


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer | SplitOptimizer:
    """The optimizer of `cfg`; switches the model's embedding to sparse gradients when asked."""
    model.embedding.sparse = cfg.sparse_embedding
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(model.parameters(), lr=cfg.lr, rho=cfg.rho, eps=cfg.eps,
                                    weight_decay=cfg.weight_decay)
    if cfg.sparse_embedding:
        rest = [p for name, p in model.named_parameters() if not name.startswith("embedding.")]
        return SplitOptimizer(model.embedding, rest, cfg)
    return _adam(list(model.parameters()), cfg)


def _adam(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    # fused: one pass over each parameter instead of one per operation.
    adam = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return adam(params, lr=cfg.lr, eps=cfg.eps, weight_decay=cfg.weight_decay, fused=True)


def clip_gradients(model: nn.Module, max_norm: float) -> None:
    """Clip the norm of the dense gradients (a sparse embedding gradient is left as it is)."""
    dense = [p for p in model.parameters() if p.grad is not None and not p.grad.is_sparse]
    nn.utils.clip_grad_norm_(dense, max_norm)
