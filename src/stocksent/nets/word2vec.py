"""Word2vec's skip-gram with negative sampling (Mikolov et al., 2013): the cheaper pretraining,
which teaches the embedding alone that words used alike are alike, from text without tags.

    message   w1  w2  w3  w4           each word's vector is scored against the vectors of the
    pairs     (w2, w1) (w2, w3) ...    words within `window` of it (as context), and against
                                       `negatives` words drawn from the unigram distribution^0.75

The classifier takes over the embedding (`body.embedding`); its LSTM layers start as they would
without pretraining.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig

WINDOW = 2  # context words on each side
NEGATIVES = 5  # words drawn against each pair


class _Body(nn.Module):
    """What a classifier takes over: its embedding, under the name a SentimentLSTM gives it."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=config.embedding_dim ** -0.5)
        with torch.no_grad():
            self.embedding.weight[0].zero_()


class SkipGram(nn.Module):
    """forward(tokens, lengths) -> (summed loss over the pairs, number of pairs), as NextWordLSTM."""

    def __init__(self, config: ModelConfig, counts: torch.Tensor):
        super().__init__()
        self.config = config
        self.body = _Body(config)
        self.context = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=0)
        nn.init.zeros_(self.context.weight)
        weights = counts.double().clamp(min=0) ** 0.75
        weights[:2] = 0  # never draw padding or the unknown word
        self.register_buffer("noise", (weights / weights.sum()).float(), persistent=False)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, T) right-padded with 0, lengths (B,)."""
        centres, contexts = self._pairs(tokens, lengths)
        if centres.numel() == 0:
            zero = tokens.new_zeros((), dtype=torch.float32)
            return zero, zero
        u = self.body.embedding(centres)  # (P, E)
        positive = (u * self.context(contexts)).sum(-1)  # (P,)
        drawn = torch.multinomial(self.noise, centres.numel() * NEGATIVES, replacement=True)
        negative = torch.bmm(self.context(drawn).view(-1, NEGATIVES, u.size(1)), u.unsqueeze(2)).squeeze(2)
        loss = -nn.functional.logsigmoid(positive) - nn.functional.logsigmoid(-negative).sum(-1)
        return loss.sum(), torch.tensor(float(centres.numel()), device=tokens.device)

    @staticmethod
    def _pairs(tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every (word, word within WINDOW of it) of the real words, both ways round."""
        real = torch.arange(tokens.size(1), device=tokens.device).view(1, -1) < lengths.view(-1, 1)
        centres, contexts = [], []
        for gap in range(1, min(WINDOW, tokens.size(1) - 1) + 1):
            both = real[:, :-gap] & real[:, gap:]
            left, right = tokens[:, :-gap][both], tokens[:, gap:][both]
            centres += [left, right]
            contexts += [right, left]
        if not centres:
            empty = tokens.new_zeros(0)
            return empty, empty
        return torch.cat(centres), torch.cat(contexts)

    def sparse_tables(self) -> list[nn.Embedding]:
        return [self.body.embedding, self.context]
