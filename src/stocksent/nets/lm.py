"""The language model: the classifier's embedding and LSTM layers, trained to predict each word
of a message from the words before it, so that they learn from text that carries no tag.

    message   w1  w2  w3  w4           the layers read w1 .. w3 and at each step are scored
    targets       w2  w3  w4           on the next word, through an adaptive softmax

The softmax over every word of the vocabulary would cost more than the LSTM; the adaptive one
(Grave et al., 2017) scores the most frequent words in full and the rarer bands through smaller
projections. Only the classifier's own layers (`body`, a SentimentLSTM) carry over to it.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import StocksentError
from .model import SentimentEnsemble, SentimentLSTM, grow_into

BODY = "body."  # the prefix of the layers a classifier takes over


class NextWordLSTM(nn.Module):
    """forward(tokens, lengths) -> (summed negative log-likelihood, number of words predicted)."""

    def __init__(self, config: ModelConfig, cutoffs: list[int]):
        super().__init__()
        if config.bidirectional:
            raise StocksentError("a language model reads forwards only: pretrain a one-directional network")
        self.config = config
        self.body = SentimentLSTM(config)
        # A vocabulary smaller than the first cutoff still gets two bands: the softmax needs one.
        bands = [c for c in cutoffs if c < config.vocab_size - 1] or [max(1, config.vocab_size // 2)]
        self.softmax = nn.AdaptiveLogSoftmaxWithLoss(config.lstm_sizes[-1], config.vocab_size, bands, div_value=4.0)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, T) right-padded with 0, lengths (B,) >= 1."""
        if tokens.size(1) < 2:
            zero = tokens.new_zeros((), dtype=torch.float32)
            return zero, zero
        hidden = self.body.read(tokens[:, :-1], (lengths - 1).clamp(min=1))  # (B, T-1, H)
        targets = tokens[:, 1:]  # (B, T-1)
        real = torch.arange(targets.size(1), device=tokens.device).view(1, -1) < (lengths - 1).view(-1, 1)
        out = self.softmax(hidden[real], targets[real])  # over the words that have a next word
        count = real.sum()
        return -out.output.sum(), count.to(torch.float32)

    def sparse_tables(self) -> list[nn.Embedding]:
        return self.body.sparse_tables()


def body_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The layers a classifier takes from a language model's weights: embedding, LSTMs, start states
    (not the classifier's head nor its word-pair bag, which a language model does not train)."""
    return {name[len(BODY):]: tensor for name, tensor in state.items()
            if name.startswith(BODY) and not name.startswith((BODY + "head.", BODY + "bigrams."))}


@torch.no_grad()
def initialise_from(model: SentimentLSTM | SentimentEnsemble, body: dict[str, torch.Tensor], source: str) -> None:
    """Copy pretrained layers into a classifier: a language model's into every member of an
    ensemble (the head and anything the language model lacks keep their own initialisation), or
    a trained classifier's whole network, its word table grown to the new vocabulary (grow_into)."""
    if any(name.startswith(("head.", "members.")) for name in body):
        grow_into(model, body, source)
        return
    members = model.members()
    for member in members:
        own = member.state_dict()
        for name, tensor in body.items():
            if name not in own or own[name].shape != tensor.shape:
                raise StocksentError(f"{source}: its {name} ({tuple(tensor.shape)}) does not fit this network "
                                     f"({tuple(own[name].shape) if name in own else 'absent'}); train with the "
                                     "pretrained model's sizes")
            own[name].copy_(tensor)
