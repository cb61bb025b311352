"""Optimizers: the article's Adadelta and Adam / AdamW, each with an optional sparse embedding update."""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ..config import TrainConfig


class SparseAdadelta(torch.optim.Optimizer):
    """Adadelta on a sparse gradient: only the rows in the batch move and only their running
    averages decay. TensorFlow applies Adadelta this way to the embedding of the article's model
    (its embedding gradient is sparse); PyTorch's Adadelta would decay every row every step."""

    def __init__(self, params: list[nn.Parameter], lr: float, rho: float, eps: float):
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps})

    @torch.no_grad()
    def step(self) -> None:
        for group, p, rows, g, state in _row_gradients(self):
            lr, rho, eps = group["lr"], group["rho"], group["eps"]
            if not state:
                state["square_avg"], state["acc_delta"] = torch.zeros_like(p), torch.zeros_like(p)
            square = state["square_avg"].index_select(0, rows).mul_(rho).addcmul_(g, g, value=1 - rho)
            acc = state["acc_delta"].index_select(0, rows)
            delta = (acc + eps).sqrt_().div_((square + eps).sqrt_()).mul_(g)
            state["square_avg"].index_copy_(0, rows, square)
            state["acc_delta"].index_copy_(0, rows, acc.mul_(rho).addcmul_(delta, delta, value=1 - rho))
            p.index_add_(0, rows, delta, alpha=-lr)


def _row_gradients(optimizer: torch.optim.Optimizer) -> Iterator[tuple[dict[str, Any], nn.Parameter, torch.Tensor,
                                                                       torch.Tensor, dict[str, Any]]]:
    """Each parameter of `optimizer` with a sparse gradient: its group, the rows the gradient
    touches, once each (R,), their summed gradient (R, E), and its state. The rows being distinct,
    a step may read them with index_select and write them back with index_copy_."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                grad = p.grad.coalesce()
                yield group, p, grad.indices()[0], grad.values(), optimizer.state[p]


class LazyAdam(torch.optim.Optimizer):
    """Adam on a sparse gradient as torch's SparseAdam computes it (only the rows in the batch
    move, and only their moments decay), in fewer passes: each of the batch's rows is read,
    updated and written back once, where SparseAdam builds a sparse tensor for every term. The
    state keeps SparseAdam's names, so that a checkpoint of either resumes with the other."""

    def __init__(self, params: list[dict[str, Any]], lr: float, eps: float, betas: tuple[float, float] = (0.9, 0.999)):
        super().__init__(params, {"lr": lr, "eps": eps, "betas": betas})

    @torch.no_grad()
    def step(self) -> None:
        for group, p, rows, g, state in _row_gradients(self):
            lr, eps, (beta1, beta2) = group["lr"], group["eps"], group["betas"]
            if not state:
                state["step"], state["exp_avg"], state["exp_avg_sq"] = 0, torch.zeros_like(p), torch.zeros_like(p)
            state["step"] += 1
            mean = state["exp_avg"].index_select(0, rows).lerp_(g, 1 - beta1)
            square = state["exp_avg_sq"].index_select(0, rows).mul_(beta2).addcmul_(g, g, value=1 - beta2)
            state["exp_avg"].index_copy_(0, rows, mean)
            state["exp_avg_sq"].index_copy_(0, rows, square)
            size = lr * math.sqrt(1 - beta2 ** state["step"]) / (1 - beta1 ** state["step"])
            p.index_add_(0, rows, mean.div_(square.sqrt_().add_(eps)), alpha=-size)


class SplitOptimizer:
    """A sparse update of the embedding table (lazy Adam, or Adadelta as TensorFlow applies it),
    and the configured optimizer on every other weight.

    A batch of 64 messages touches a few hundred of the ~13,000 embedding rows; a dense update
    rewrites all of them every step, which dominated a CPU training step. The sparse half moves
    only the rows in the batch and carries no weight decay.
    """

    def __init__(self, tables: list[dict[str, Any]], rest: list[dict[str, Any]], cfg: TrainConfig):
        weights = tables  # parameter groups of embedding tables
        if cfg.optimizer == "adadelta":
            self.sparse = SparseAdadelta(weights, lr=cfg.lr, rho=cfg.rho, eps=cfg.eps)
        else:
            self.sparse = LazyAdam(weights, lr=cfg.lr, eps=cfg.eps)
        self.dense = _dense(rest, cfg) if rest else None  # None: embedding tables alone (word2vec)
        self.parts = [self.sparse] + ([self.dense] if self.dense else [])

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none)

    def step(self) -> None:
        for part in self.parts:
            part.step()

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [group for part in self.parts for group in part.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"sparse": self.sparse.state_dict(), "dense": self.dense.state_dict() if self.dense else {}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sparse.load_state_dict(state["sparse"])
        if self.dense:
            self.dense.load_state_dict(state["dense"])


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer | SplitOptimizer:
    """The optimizer of `cfg`; switches the model's embedding to sparse gradients when asked.
    Its parameter groups are the layers by depth (layer_depth), each with its learning-rate scale."""
    tables = model.sparse_tables()
    for table in tables:
        table.sparse = cfg.sparse_embedding
    named = list(model.named_parameters())
    if cfg.sparse_embedding:
        sparse = {id(table.weight) for table in tables}
        return SplitOptimizer(_groups([(n, p) for n, p in named if id(p) in sparse], cfg),
                              _groups([(n, p) for n, p in named if id(p) not in sparse], cfg), cfg)
    return _dense(_groups(named, cfg), cfg)


def layer_depth(name: str, layers: int) -> int:
    """How far below the output a parameter sits: 0 for the head (and the word-pair bag, which a
    language model does not train), 1 for the top LSTM layer and its start state, ..., `layers` + 1
    for the embedding. Discriminative rates and gradual unfreezing go by it."""
    parts = name.split(".")
    if parts[0] == "members":  # an ensemble's member: members.<i>.<name>
        parts = parts[2:]
    if parts[0] in ("lstms", "initial_states"):
        return layers - int(parts[1])
    return layers + 1 if parts[0] == "embedding" else 0


def _groups(named: list[tuple[str, nn.Parameter]], cfg: TrainConfig) -> list[dict[str, Any]]:
    """Parameter groups by depth; a group's rate is the step's rate x layer_decay ** depth."""
    layers = 1 + max((int(n.split("lstms.")[1].split(".")[0]) for n, _ in named if "lstms." in n), default=0)
    depths: dict[int, list[nn.Parameter]] = {}
    for name, param in named:
        depths.setdefault(layer_depth(name, layers), []).append(param)
    scales = {depth: cfg.layer_decay ** depth for depth in depths}
    return [{"params": params, "depth": depth, "scale": scales[depth], "lr": cfg.lr * scales[depth]}
            for depth, params in sorted(depths.items())]


def _dense(params: list[dict[str, Any]], cfg: TrainConfig) -> torch.optim.Optimizer:
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
    """The rate for one step: rising linearly over the first `warmup` share of the steps, then
    constant or falling linearly to zero by the last step. A function of the step alone, so a
    resumed run follows the same curve as an uninterrupted one."""
    warm = int(cfg.warmup * total_steps)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    if cfg.schedule == "linear":
        return cfg.lr * max(0.0, 1.0 - (step - warm) / max(total_steps - warm, 1))
    return cfg.lr


def set_learning_rate(optimizer: torch.optim.Optimizer | SplitOptimizer, lr: float,
                      unfrozen: int | None = None) -> None:
    """Give every group `lr` times its scale; with `unfrozen`, groups that deep or deeper get 0
    (gradual unfreezing: they keep their weights while the layers above them settle)."""
    for group in optimizer.param_groups:
        frozen = unfrozen is not None and group.get("depth", 0) >= unfrozen
        group["lr"] = 0.0 if frozen else lr * group.get("scale", 1.0)


def clip_gradients(model: nn.Module, max_norm: float) -> None:
    """Clip the norm of the dense gradients (a sparse embedding gradient is left as it is)."""
    dense = [p for p in model.parameters() if p.grad is not None and not p.grad.is_sparse]
    nn.utils.clip_grad_norm_(dense, max_norm)
