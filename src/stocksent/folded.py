"""The network folded for scoring on a CPU: the same function as SentimentLSTM.forward, less work.

Where a trained network spends its time when it scores (2-core CPU, default model): half of an
LSTM step's multiply-adds turn each word's embedding into gate inputs, the same 4H numbers for a
word every time it occurs. Folding does them once per vocabulary word:

    table = embedding @ W_ih.T + b_ih + b_hh          (V, 4H), a row look-up per word instead

and the recurrence then runs over messages sorted longest first, so that at step t the messages
still going are the first n_t rows and each step works on those rows only (no padding is
computed, no mask applied). The cell's tanh(g) is read as 2 * sigmoid(2g) - 1, so one sigmoid
covers all four gates. Only for scoring: no dropout, no gradients. Unidirectional networks
without the bigram bag (an ensemble is first merged into one such network: SentimentEnsemble.merged);
`fold` returns None for the others, which keep using the network.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .model import SentimentLSTM


class FoldedLSTM:
    """`folded(tokens, lengths) -> logits` as numpy, for (B, T) right-padded tokens."""

    def __init__(self, table: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                 starts: list[torch.Tensor] | None, head: tuple[torch.Tensor, torch.Tensor], pooling: str):
        self.table = table  # (V, 4H) gate inputs of the first layer, per word
        self.layers = layers  # per layer: W_ih.T (I, 4H), bias (4H,), W_hh.T (H, 4H); the first W_ih unused
        self.starts = starts  # learned (2, H) starting h and c per layer, or None for zeros
        self.head_weight, self.head_bias = head
        self.pooling = pooling

    @classmethod
    @torch.inference_mode()
    def fold(cls, model: SentimentLSTM) -> "FoldedLSTM | None":
        config = model.config
        if config.bidirectional or config.bigram_buckets:
            return None
        layers = [_folded_layer(lstm) for lstm in model.lstms]
        table = model.embedding.weight.float() @ layers[0][0] + layers[0][1]
        starts = [s.detach().float().reshape(2, -1) for s in model.initial_states] \
            if model.initial_states is not None else None
        head = model.head.weight.detach().float()[0], model.head.bias.detach().float()[0]
        return cls(table, layers, starts, head, config.pooling)

    @torch.inference_mode()
    def __call__(self, tokens: torch.Tensor, lengths: torch.Tensor) -> np.ndarray:
        order = torch.argsort(lengths, descending=True)
        tokens, lengths = tokens[order].cpu(), lengths[order].cpu()
        columns = tokens.t().contiguous()  # (T, B): step t's words in one row
        alive = (lengths.view(1, -1) > torch.arange(columns.size(0)).view(-1, 1)).sum(1).tolist()  # n_t per step
        last, out = len(self.layers) - 1, None
        for layer, (_, _, w_hh) in enumerate(self.layers):
            # Max pooling keeps a running maximum instead of every step's output.
            out = self._recur(self._gate_inputs(layer, columns, out), w_hh, alive, layer,
                              running_max=layer == last and self.pooling == "max")
        features = out if out.dim() == 2 else self._pool(out, lengths)
        logits = torch.empty(tokens.size(0))
        logits[order] = features @ self.head_weight + self.head_bias
        return logits.numpy()

    def _gate_inputs(self, layer: int, columns: torch.Tensor,
                     below: torch.Tensor | None) -> Callable[[int, int], torch.Tensor]:
        """gates(t, n): step t's gate inputs for its first n rows, made step by step (gathering
        them for the whole batch at once would hold a (T, B, 4H) tensor: 157 MB for 512 messages
        of 100 words at 4H = 768): a table look-up in the first layer, outputs below times W_ih."""
        if layer == 0:
            return lambda t, n: self.table.index_select(0, columns[t, :n])
        w_ih, bias, _ = self.layers[layer]
        return lambda t, n: torch.addmm(bias, below[t, :n], w_ih)

    def _recur(self, gates: Callable[[int, int], torch.Tensor], w_hh: torch.Tensor, alive: list[int], layer: int,
               running_max: bool) -> torch.Tensor:
        """gates(t, n) -> (n, 4H) gate inputs of step t; returns (T, B, H) outputs, rows past a
        message's end zero, or with running_max (B, H): each message's maximum over its words."""
        hidden, batch = w_hh.size(0), alive[0]
        out = w_hh.new_full((batch, hidden), float("-inf")) if running_max else \
            w_hh.new_zeros(len(alive), batch, hidden)
        h, c = self._start(layer, batch, hidden)
        for t, n in enumerate(alive):
            g = torch.addmm(gates(t, n), h[:n], w_hh).sigmoid_()  # (n, 4H)
            i, f, g2, o = g.chunk(4, 1)  # g2 = sigmoid(2 * cell input)
            c = torch.addcmul(f * c[:n], i, g2.mul_(2).sub_(1))
            h = o * torch.tanh(c)
            if running_max:
                torch.maximum(out[:n], h, out=out[:n])
            else:
                out[t, :n] = h
        return out

    def _start(self, layer: int, batch: int, hidden: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.starts is None:
            return torch.zeros(batch, hidden), torch.zeros(batch, hidden)
        h, c = self.starts[layer]
        return h.expand(batch, -1), c.expand(batch, -1)

    def _pool(self, out: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(T, B, H) -> (B, H): the last word's output, or the mean over the words."""
        if self.pooling == "last":
            return out[lengths - 1, torch.arange(out.size(1))]
        return out.sum(0) / lengths.view(-1, 1).float()  # the rows past the end are zero


def _folded_layer(lstm: torch.nn.LSTM) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """W_ih.T, both biases summed and W_hh.T, with the cell-input gate's rows doubled (the
    2 * sigmoid(2x) - 1 reading of tanh)."""
    hidden = lstm.hidden_size
    scale = torch.ones(4 * hidden)
    scale[2 * hidden:3 * hidden] = 2.0
    w_ih = (lstm.weight_ih_l0.detach().float() * scale.view(-1, 1)).t().contiguous()
    bias = (lstm.bias_ih_l0.detach().float() + lstm.bias_hh_l0.detach().float()) * scale
    w_hh = (lstm.weight_hh_l0.detach().float() * scale.view(-1, 1)).t().contiguous()
    return w_ih, bias, w_hh
