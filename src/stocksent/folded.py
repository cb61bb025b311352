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
(C = 2c), so that o * tanh(c) is o * (2 * sigmoid(C) - 1): torch's CPU tanh costs 3-4 times its
sigmoid. Only for scoring: no dropout, no gradients. Unidirectional networks without the bigram
bag; `fold` returns None for the others, which keep using the network.
"""
from __future__ import annotations

import numpy as np
import torch

from .model import SentimentEnsemble, SentimentLSTM


class FoldedLSTM:
    """`folded(tokens, lengths) -> logits` as numpy, for (B, T) right-padded tokens.

    Weights carry the members on a leading axis K (1 for a single network)."""

    def __init__(self, table: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                 starts: list[tuple[torch.Tensor, torch.Tensor]] | None, head: tuple[torch.Tensor, torch.Tensor],
                 pooling: str):
        self.members = layers[0][2].size(0)
        self.table = table.reshape(-1, table.size(2))  # (K * V, 4H): member k's words from row k * V
        self.offsets = (torch.arange(self.members) * table.size(1)).view(-1, 1)
        # per layer: W_ih.T (K, I, 4H), bias (K, 1, 4H), W_hh.T (K, H, 4H); the first layer's W_ih
        # and bias are already in the table
        self.layers = layers
        self.starts = starts  # per layer learned (h, C) as (K, 1, H) each, or None for zeros
        self.head_weight, self.head_bias = head  # (K, H), (K, 1)
        self.pooling = pooling

    @classmethod
    @torch.inference_mode()
    def fold(cls, model: SentimentLSTM | SentimentEnsemble) -> "FoldedLSTM | None":
        config = model.config
        if config.bidirectional or config.bigram_buckets:
            return None
        members = list(model.members) if isinstance(model, SentimentEnsemble) else [model]
        layers = [_stacked([_folded_layer(m.lstms[i]) for m in members]) for i in range(len(config.lstm_sizes))]
        table = torch.stack([m.embedding.weight.float() for m in members]) @ layers[0][0] + layers[0][1]
        starts = None
        if config.initial_state == "learned":
            states = [torch.stack([m.initial_states[i].detach().float().reshape(2, 1, -1) for m in members], dim=1)
                      for i in range(len(config.lstm_sizes))]  # (2, K, 1, H) per layer
            starts = [(h, 2 * c) for h, c in states]
        head = (torch.stack([m.head.weight.detach().float()[0] for m in members]),
                torch.stack([m.head.bias.detach().float() for m in members]))
        return cls(table, layers, starts, head, config.pooling)

    @torch.inference_mode()
    def __call__(self, tokens: torch.Tensor, lengths: torch.Tensor) -> np.ndarray:
        order = torch.argsort(lengths, descending=True)
        tokens, lengths = tokens[order].cpu(), lengths[order].cpu()
        columns = tokens.t().contiguous()  # (T, B): step t's words in one row
        alive = (lengths.view(1, -1) > torch.arange(columns.size(0)).view(-1, 1)).sum(1).tolist()  # n_t per step
        states = [self._start(layer, alive[0]) for layer in range(len(self.layers))]
        pooled = self._pool_start(alive[0])
        for t, n in enumerate(alive):
            below = None
            for layer, (h, c) in enumerate(states):  # each layer takes step t, reading the one below
                below, c = self._step(layer, self._gate_inputs(layer, columns[t, :n], below), h[:, :n], c[:, :n])
                states[layer] = below, c
            self._pool_step(pooled, below, alive[t + 1] if t + 1 < len(alive) else 0)
        if self.pooling == "mean":
            pooled /= lengths.view(1, -1, 1).float()
        logits = torch.empty(tokens.size(0))
        logits[order] = (torch.einsum("kbh,kh->kb", pooled, self.head_weight) + self.head_bias).mean(0)
        return logits.numpy()

    def _gate_inputs(self, layer: int, words: torch.Tensor, below: torch.Tensor | None) -> torch.Tensor:
        """(K, n, 4H) gate inputs before the recurrence: a table look-up per member in the first
        layer, the outputs below times W_ih above it."""
        if layer == 0:
            return self.table.index_select(0, (words + self.offsets).view(-1)).view(self.members, len(words), -1)
        w_ih, bias, _ = self.layers[layer]
        return torch.baddbmm(bias, below, w_ih)

    def _step(self, layer: int, gates: torch.Tensor, h: torch.Tensor,
              c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of one layer for n rows: (h, C) (K, n, H) each -> the new (h, C)."""
        gates.baddbmm_(h, self.layers[layer][2]).sigmoid_()
        i, f, s, o = gates.chunk(4, 2)  # s = sigmoid(2 * cell input)
        c = f * c  # C' = f C + 2 i tanh(g) = f C + 4 i s - 2 i
        c.sub_(i, alpha=2).addcmul_(i, s, value=4)
        return torch.sigmoid(c).mul_(2).sub_(1).mul_(o), c  # o * tanh(C / 2)

    def _start(self, layer: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.layers[layer][2].size(1)
        if self.starts is None:
            return torch.zeros(self.members, batch, hidden), torch.zeros(self.members, batch, hidden)
        h, c = self.starts[layer]
        return h.expand(-1, batch, -1), c.expand(-1, batch, -1)

    def _pool_start(self, batch: int) -> torch.Tensor:
        hidden = self.layers[-1][2].size(1)
        fill = float("-inf") if self.pooling == "max" else 0.0
        return torch.full((self.members, batch, hidden), fill)

    def _pool_step(self, pooled: torch.Tensor, h: torch.Tensor, still_going: int) -> None:
        """Fold step t's top outputs h (K, n, H) into pooled (K, B, H); rows from still_going on
        end at this step."""
        n = h.size(1)
        if self.pooling == "max":
            torch.maximum(pooled[:, :n], h, out=pooled[:, :n])
        elif self.pooling == "mean":
            pooled[:, :n] += h
        else:  # the last word's output
            pooled[:, still_going:n] = h[:, still_going:]


def _folded_layer(lstm: torch.nn.LSTM) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """W_ih.T, both biases summed and W_hh.T, with the cell-input gate's rows doubled (the
    2 * sigmoid(2x) - 1 reading of tanh)."""
    hidden = lstm.hidden_size
    scale = torch.ones(4 * hidden)
    scale[2 * hidden:3 * hidden] = 2.0
    w_ih = (lstm.weight_ih_l0.detach().float() * scale.view(-1, 1)).t()
    bias = (lstm.bias_ih_l0.detach().float() + lstm.bias_hh_l0.detach().float()) * scale
    w_hh = (lstm.weight_hh_l0.detach().float() * scale.view(-1, 1)).t()
    return w_ih, bias.view(1, -1), w_hh


def _stacked(members: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    """Per-member (W_ih.T, bias, W_hh.T) -> each stacked on a leading member axis, contiguous."""
    return tuple(torch.stack(parts).contiguous() for parts in zip(*members))
