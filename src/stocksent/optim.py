"""Optimizers: the article's Adadelta and Adam / AdamW, each with an optional sparse embedding update."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import TrainConfig


class SparseAdadelta(torch.optim.Optimizer):
    """Adadelta on a sparse gradient: only the rows in the batch move and only their running
    averages decay. TensorFlow applies Adadelta this way to the embedding of the article's model
    (its embedding gradient is sparse); PyTorch's Adadelta would decay every row every step."""

    def __init__(self, params: list[nn.Parameter], lr: float, rho: float, eps: float):
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps})

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            lr, rho, eps = group["lr"], group["rho"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.coalesce()
                rows, g = grad.indices()[0], grad.values()  # (R,), (R, E)
                state = self.state[p]
                if not state:
                    state["square_avg"], state["acc_delta"] = torch.zeros_like(p), torch.zeros_like(p)
                square = state["square_avg"][rows].mul_(rho).addcmul_(g, g, value=1 - rho)
                acc = state["acc_delta"][rows]
                delta = (acc + eps).sqrt_().div_((square + eps).sqrt_()).mul_(g)
                state["square_avg"][rows] = square
                state["acc_delta"][rows] = acc.mul_(rho).addcmul_(delta, delta, value=1 - rho)
                p.index_add_(0, rows, delta, alpha=-lr)


class SplitOptimizer:
    """A sparse update of the embedding table (lazy Adam, or Adadelta as TensorFlow applies it),
    and the configured optimizer on every other weight.

    A batch of 64 messages touches a few hundred of the ~13,000 embedding rows; a dense update
    rewrites all of them every step, which dominated a CPU training step. The sparse half moves
    only the rows in the batch and carries no weight decay.
    """

    def __init__(self, tables: list[nn.Embedding], rest: list[nn.Parameter], cfg: TrainConfig):
        weights = [table.weight for table in tables]
        if cfg.optimizer == "adadelta":
            self.sparse = SparseAdadelta(weights, lr=cfg.lr, rho=cfg.rho, eps=cfg.eps)
        else:
            self.sparse = torch.optim.SparseAdam(weights, lr=cfg.lr, eps=cfg.eps)
        self.dense = _dense(rest, cfg)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.sparse.zero_grad(set_to_none)
        self.dense.zero_grad(set_to_none)

    def step(self) -> None:
        self.sparse.step()
        self.dense.step()

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [*self.sparse.param_groups, *self.dense.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"sparse": self.sparse.state_dict(), "dense": self.dense.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sparse.load_state_dict(state["sparse"])
        self.dense.load_state_dict(state["dense"])


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer | SplitOptimizer:
    """The optimizer of `cfg`; switches the model's embedding to sparse gradients when asked."""
    tables = model.sparse_tables()
    for table in tables:
        table.sparse = cfg.sparse_embedding
    if cfg.sparse_embedding:
        sparse = {id(table.weight) for table in tables}
        rest = [p for p in model.parameters() if id(p) not in sparse]
        return SplitOptimizer(tables, rest, cfg)
    return _dense(list(model.parameters()), cfg)


def _dense(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=cfg.lr, rho=cfg.rho, eps=cfg.eps, weight_decay=cfg.weight_decay)
    # fused: one pass over each parameter instead of one per operation.
    adam = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return adam(params, lr=cfg.lr, eps=cfg.eps, weight_decay=cfg.weight_decay, fused=True)


class WeightAverage:
    """An exponential moving average of a model's weights, kept in a second copy of the model
    that validation scores and the saved model holds. Averaging the last few hundred steps
    smooths out the noise of the final updates, at no cost when scoring.

    The decay ramps up as (1 + t) / (10 + t) over the first steps, so the average is not
    dominated by the starting weights; it depends on the step alone, so a resumed run
    continues the same average."""

    def __init__(self, model: nn.Module, averaged: nn.Module, decay: float):
        self.decay = decay
        self.params = list(model.parameters())
        self.model = averaged.eval()
        self.model.load_state_dict(model.state_dict())
        self.shadow = list(self.model.parameters())
        for p in self.shadow:
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - decay)


def learning_rate(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """The rate for one step: constant, or falling linearly to zero by the last step. A function
    of the step alone, so a resumed run follows the same curve as an uninterrupted one."""
    if cfg.schedule == "linear":
        return cfg.lr * max(0.0, 1.0 - step / max(total_steps, 1))
    return cfg.lr


def set_learning_rate(optimizer: torch.optim.Optimizer | SplitOptimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def clip_gradients(model: nn.Module, max_norm: float) -> None:
    """Clip the norm of the dense gradients (a sparse embedding gradient is left as it is)."""
    dense = [p for p in model.parameters() if p.grad is not None and not p.grad.is_sparse]
    nn.utils.clip_grad_norm_(dense, max_norm)
