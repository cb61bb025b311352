"""The network folded for scoring on a CPU: the same function as the model's forward, less work.

Where a trained network spends its time when it scores (2-core CPU, default model): half of an
LSTM step's multiply-adds turn each word's embedding into gate inputs, the same 4H numbers for a
word every time it occurs. Folding does them once per vocabulary word:

    table = embedding @ W_ih.T + b_ih + b_hh          (V, 4H), a row look-up per word instead

The recurrence then runs over messages sorted longest first, so that at step t the messages
still going are the first n_t rows and each step works on those rows only (no padding is
computed, no mask applied); every layer takes its step before the next word is read, and the
last layer's outputs are pooled as they come (a running maximum or sum, or kept as a message
ends), so no (T, B, H) tensor is ever held. An ensemble's members run side by side as one
batched matrix product per step (K, n, H) @ (K, H, 4H), without the zero blocks of the merged
wide network (SentimentEnsemble.merged), which costs twice the multiply-adds.

Two readings save elementwise passes, which cost as much as the matrix products here: tanh(x)
is 2 * sigmoid(2x) - 1, so one sigmoid covers all four gates, and the cell state is kept doubled
(C = 2c), so that o * tanh(c) is o * (2 * sigmoid(C) - 1): torch's CPU tanh costs several times its
sigmoid. Only for scoring: no dropout, no gradients. Unidirectional networks without the bigram
bag; `fold` returns None for the others, which keep using the network.

Messages come as one flat array of word ids with each message's start and length, so nothing is
padded. The whole of a batch's scoring is one TorchScript call, which runs in C++ without
Python's global lock: while one thread scores, another can normalise the next messages.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from .model import SentimentEnsemble, SentimentLSTM

MIN_ROWS = 4  # each step's matrix products take a multiple of this many rows (see _score_batch)


class FoldedLSTM:
    """`folded(tokens, lengths)` or `folded.score(ids, starts, lengths)` -> logits as numpy.

    Weights carry the members on a leading axis K (1 for a single network)."""

    def __init__(self, table: Tensor, layers: list[tuple[Tensor, Tensor, Tensor]], starts: list[tuple[Tensor, Tensor]],
                 head: tuple[Tensor, Tensor], pooling: str):
        self.members = layers[0][2].size(0)
        self.table = table.reshape(-1, table.size(2))  # (K * V, 4H): member k's words from row k * V
        self.offsets = (torch.arange(self.members) * table.size(1)).view(-1, 1)
        # per layer: W_ih.T (K, I, 4H), bias (K, 1, 4H), W_hh.T (K, H, 4H); the first layer's W_ih
        # and bias are already in the table
        self.w_ih, self.bias, self.w_hh = (list(parts) for parts in zip(*layers))
        self.h_starts, self.c_starts = (list(parts) for parts in zip(*starts))  # per layer (K, 1, H)
        self.head_weight, self.head_bias = head  # (K, H), (K, 1)
        self.pooling = pooling

    @classmethod
    @torch.inference_mode()
    def fold(cls, model: SentimentLSTM | SentimentEnsemble) -> "FoldedLSTM | None":
        config = model.config
        if config.bidirectional or config.bigram_buckets:
            return None
        members = model.members()
        sizes = config.lstm_sizes
        layers = [_stacked([_folded_layer(m.lstms[i]) for m in members]) for i in range(len(sizes))]
        table = torch.stack([m.embedding.weight.float() for m in members]) @ layers[0][0] + layers[0][1]
        if config.initial_state == "learned":
            states = [torch.stack([m.initial_states[i].detach().float().reshape(2, 1, -1) for m in members], dim=1)
                      for i in range(len(sizes))]  # (2, K, 1, H) per layer
            starts = [(h, 2 * c) for h, c in states]
        else:
            starts = [(torch.zeros(len(members), 1, h), torch.zeros(len(members), 1, h)) for h in sizes]
        head = (torch.stack([m.head.weight.detach().float()[0] for m in members]),
                torch.stack([m.head.bias.detach().float() for m in members]))
        return cls(table, layers, starts, head, config.pooling)

    def __call__(self, tokens: Tensor, lengths: Tensor) -> np.ndarray:
        """Logits for (B, T) right-padded tokens."""
        starts = torch.arange(tokens.size(0)) * tokens.size(1)
        return self.score(tokens.cpu().reshape(-1), starts, lengths.cpu())

    @torch.inference_mode()
    def score(self, ids: Tensor, starts: Tensor, lengths: Tensor) -> np.ndarray:
        """Logits for messages given as one flat tensor of word ids: message b is
        ids[starts[b] : starts[b] + lengths[b]], lengths >= 1. A message's logit is the same, bit
        for bit, whatever else is in the batch and however many threads score it: every matrix
        product takes a multiple of MIN_ROWS rows (_score_batch)."""
        given = len(lengths)
        if given % MIN_ROWS:  # scored beside copies of the first message, their results unused
            extra = torch.zeros(MIN_ROWS - given % MIN_ROWS, dtype=torch.long)
            starts, lengths = torch.cat([starts, starts[extra]]), torch.cat([lengths, lengths[extra]])
        return _score(self.table, self.offsets, self.w_ih, self.bias, self.w_hh, self.h_starts, self.c_starts,
                      self.head_weight, self.head_bias, ids, starts, lengths, self.pooling, MIN_ROWS)[:given].numpy()


def _score_batch(table: Tensor, offsets: Tensor, w_ih: list[Tensor], bias: list[Tensor], w_hh: list[Tensor],
                 h_starts: list[Tensor], c_starts: list[Tensor], head_weight: Tensor, head_bias: Tensor,
                 ids: Tensor, starts: Tensor, lengths: Tensor, pooling: str, min_rows: int) -> Tensor:
    """The folded network over one batch (see the module's description); the logits (B,)."""
    order = torch.argsort(lengths, descending=True)
    starts, lengths = starts[order], lengths[order]
    last = starts + lengths - 1  # rows computed past their end read their last word again
    members, batch, steps = offsets.size(0), lengths.size(0), int(lengths[0])
    alive: list[int] = (lengths.view(1, -1) > torch.arange(steps).view(-1, 1)).sum(1).tolist()  # rows going at t
    hs = [h.expand(-1, batch, -1) for h in h_starts]
    cs = [c.expand(-1, batch, -1) for c in c_starts]
    fill = float("-inf") if pooling == "max" else 0.0
    pooled = torch.full([members, batch, w_hh[-1].size(1)], fill)
    for t in range(steps):
        # A multiple of min_rows rows a step (the batch is one), the ended ones' results unused:
        # the matrix products' kernels round a row's sums by how many rows there are, unless a
        # whole number of their blocks.
        n = min(-(-alive[t] // min_rows) * min_rows, batch)
        below = torch.empty(0)  # (K, n, H) from the first layer on; declared for TorchScript's types
        for layer in range(len(w_hh)):  # each layer takes step t, reading the one below
            if layer == 0:  # a table look-up per member: W_ih and the biases are in the table
                words = ids.index_select(0, torch.minimum(starts[:n] + t, last[:n]))
                gates = table.index_select(0, (words + offsets).view(-1)).view(members, n, -1)
            else:
                gates = torch.baddbmm(bias[layer], below, w_ih[layer])
            below, cs[layer] = _cell(gates, hs[layer][:, :n], cs[layer][:, :n], w_hh[layer])
            hs[layer] = below
        _pool_step(pooled, below[:, :alive[t]], pooling, alive[t + 1] if t + 1 < steps else 0)
    if pooling == "mean":
        pooled /= lengths.view(1, -1, 1).to(torch.float32)
    logits = torch.empty(batch)
    # A product and a sum along each row, not a matrix-vector product, whose rows round by how many.
    logits[order] = ((pooled * head_weight.unsqueeze(1)).sum(-1) + head_bias).mean(0)
    return logits


def _pool_step(pooled: Tensor, top: Tensor, pooling: str, still_going: int) -> None:
    """Fold a step's top outputs (K, n, H) into pooled (K, B, H) as they come; rows from
    still_going on end at this step."""
    n = top.size(1)
    if pooling == "max":
        torch.maximum(pooled[:, :n], top, out=pooled[:, :n])
    elif pooling == "mean":
        pooled[:, :n] += top
    else:  # the last word's output
        pooled[:, still_going:n] = top[:, still_going:]


def _cell(gates: Tensor, h: Tensor, c: Tensor, w_hh: Tensor) -> tuple[Tensor, Tensor]:
    """One step of one layer for n rows: gate inputs (K, n, 4H) and (h, C) (K, n, H) -> the new (h, C)."""
    gates.baddbmm_(h, w_hh).sigmoid_()
    i, f, s, o = gates.chunk(4, 2)  # s = sigmoid(2 * cell input)
    c = f * c  # C' = f C + 2 i tanh(g) = f C + 4 i s - 2 i
    c.sub_(i, alpha=2.0).addcmul_(i, s, value=4.0)
    return torch.sigmoid(c).mul_(2.0).sub_(1.0).mul_(o), c  # o * tanh(C / 2)


# torch.jit.script is deprecated in torch 2.x, but present and working in the pinned 2.13; it is
# what lets a batch be scored without holding Python's lock.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    _score = torch.jit.script(_score_batch)


def _folded_layer(lstm: torch.nn.LSTM) -> tuple[Tensor, Tensor, Tensor]:
    """W_ih.T, both biases summed and W_hh.T, with the cell-input gate's rows doubled (the
    2 * sigmoid(2x) - 1 reading of tanh)."""
    hidden = lstm.hidden_size
    scale = torch.ones(4 * hidden)
    scale[2 * hidden:3 * hidden] = 2.0
    w_ih = (lstm.weight_ih_l0.detach().float() * scale.view(-1, 1)).t()
    bias = (lstm.bias_ih_l0.detach().float() + lstm.bias_hh_l0.detach().float()) * scale
    w_hh = (lstm.weight_hh_l0.detach().float() * scale.view(-1, 1)).t()
    return w_ih, bias.view(1, -1), w_hh


def _stacked(members: list[tuple[Tensor, ...]]) -> tuple[Tensor, ...]:
    """Per-member (W_ih.T, bias, W_hh.T) -> each stacked on a leading member axis, contiguous."""
    return tuple(torch.stack(parts).contiguous() for parts in zip(*members))
