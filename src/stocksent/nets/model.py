"""The network: embedding -> stacked LSTM layers -> output at the last real token -> one logit;
and an ensemble of such networks."""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import StocksentError
from ..text.vocab import UNKNOWN
from .dropout import Dropout


class SentimentLSTM(nn.Module):
    """Returns one logit per message; the probability of the positive label is its sigmoid."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=0)
        directions = 2 if config.bidirectional else 1
        inputs = [config.embedding_dim, *(h * directions for h in config.lstm_sizes[:-1])]
        self.lstms = nn.ModuleList(nn.LSTM(i, h, batch_first=True) for i, h in zip(inputs, config.lstm_sizes))
        # The backward direction gets LSTMs of its own fed each message reversed within its own
        # length, so that padding never comes before a message's words (nn.LSTM's own
        # bidirectional mode would read the padding first, making a score depend on batch-mates).
        self.backward_lstms = nn.ModuleList(
            nn.LSTM(i, h, batch_first=True) for i, h in zip(inputs, config.lstm_sizes)
        ) if config.bidirectional else None
        self.embedding_dropout = Dropout(config.embedding_dropout)
        self.dropout = Dropout(config.dropout)
        # Word pairs, hashed into a table of their own and averaged over the message: the
        # phrase features ("buy puts", "to the") a bag-of-bigrams model thrives on, handed to
        # the head beside what the LSTM read.
        self.bigrams = nn.Embedding(config.bigram_buckets + 1, config.bigram_dim, padding_idx=0) \
            if config.bigram_buckets else None
        features = config.lstm_sizes[-1] * directions + (config.bigram_dim if config.bigram_buckets else 0)
        self.head = nn.Linear(features, 1)
        # A learned starting state (h, c) per layer. The article pads on the left with a trainable
        # padding word, so its LSTM reaches each message's first word in a learned state, not zero.
        self.initial_states = nn.ParameterList(
            nn.Parameter(torch.zeros(2, 1, 1, h)) for h in config.lstm_sizes
        ) if config.initial_state == "learned" else None
        self._init_weights()

    def _init_weights(self) -> None:
        if self.config.embedding_init == "uniform":
            nn.init.uniform_(self.embedding.weight, -1.0, 1.0)
        if self.config.weight_init == "glorot":
            self._init_glorot()
        with torch.no_grad():
            self.embedding.weight[0].zero_()
            for lstm in self._all_lstms():
                # As TensorFlow's cell: zero biases plus a constant on the forget gate
                # (gate order input, forget, cell, output).
                hidden = lstm.hidden_size
                lstm.bias_hh_l0.zero_()
                lstm.bias_ih_l0.zero_()
                lstm.bias_ih_l0[hidden:2 * hidden].fill_(self.config.forget_bias)

    def _init_glorot(self) -> None:
        # TensorFlow's LSTM cell keeps one kernel over [input, hidden] -> 4 gates and draws it
        # Glorot-uniform; its dense layer does the same with a zero bias.
        for lstm in self._all_lstms():
            fan_in, fan_out = lstm.input_size + lstm.hidden_size, 4 * lstm.hidden_size
            limit = (6.0 / (fan_in + fan_out)) ** 0.5
            nn.init.uniform_(lstm.weight_ih_l0, -limit, limit)
            nn.init.uniform_(lstm.weight_hh_l0, -limit, limit)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) right-padded with 0, lengths (B,) >= 1 -> logits (B,)."""
        features = self._pool(self.read(tokens, lengths), lengths)
        if self.bigrams is not None:
            features = torch.cat([features, self._bigram_bag(tokens, lengths)], dim=1)
        return self.head(features).squeeze(1)  # (B,)

    def read(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The last layer's output at every word, after dropout: (B, T) -> (B, T, H), 2H both ways."""
        x = self.embedding_dropout(self.embedding(tokens))  # (B, T, E)
        for layer, lstm in enumerate(self.lstms):
            out, _ = lstm(x, self._start(layer, x.size(0)))  # (B, T, H); no state from other messages
            if self.backward_lstms is not None:
                out = torch.cat([out, self._backward(layer, x, lengths)], dim=2)  # (B, T, 2H)
            x = self.dropout(out)
        return x

    def sparse_tables(self) -> list[nn.Embedding]:
        """The lookup tables whose gradients can be sparse (only the rows a batch uses)."""
        return [self.embedding, *([self.bigrams] if self.bigrams is not None else [])]

    def members(self) -> list[SentimentLSTM]:
        """The networks whose mean logit this is: itself (an ensemble answers its members)."""
        return [self]

    def merged(self) -> SentimentLSTM:
        return self

    def _bigram_bag(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, bigram_dim): the mean vector of each message's word pairs."""
        pairs = tokens[:, :-1] * 1_000_003 + tokens[:, 1:]  # one int64 per adjacent pair of ids
        rows = pairs % self.config.bigram_buckets + 1  # row 0 stays the zero padding row
        count = (lengths - 1).clamp(min=0)
        real = torch.arange(pairs.size(1), device=tokens.device).view(1, -1) < count.view(-1, 1)
        bag = self.bigrams(rows * real).sum(dim=1) / count.clamp(min=1).view(-1, 1).to(torch.float32)
        return self.embedding_dropout(bag)

    def _pool(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, H) outputs -> (B, H), reading only each message's real words."""
        if self.config.pooling == "last":
            # Right padding means the steps after a message's end never feed its last real output.
            last = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, x.size(2))
            return x.gather(1, last).squeeze(1)
        real = (torch.arange(x.size(1), device=x.device).view(1, -1) < lengths.view(-1, 1)).unsqueeze(2)  # (B, T, 1)
        if self.config.pooling == "max":
            return x.masked_fill(~real, float("-inf")).amax(dim=1)
        return (x * real).sum(dim=1) / lengths.clamp(min=1).view(-1, 1).to(x.dtype)

    def _all_lstms(self) -> list[nn.LSTM]:
        return [*self.lstms, *(self.backward_lstms or [])]

    def _backward(self, layer: int, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The backward direction's outputs, aligned with the words: reverse each message within
        its length (padding stays at the end), run forward, reverse back."""
        steps = torch.arange(x.size(1), device=x.device).view(1, -1)  # (1, T)
        last = lengths.view(-1, 1) - 1
        order = torch.where(steps <= last, last - steps, steps)  # (B, T); its own inverse
        flipped = x.gather(1, order.unsqueeze(2).expand(-1, -1, x.size(2)))
        out, _ = self.backward_lstms[layer](flipped)
        return out.gather(1, order.unsqueeze(2).expand(-1, -1, out.size(2)))

    def _start(self, layer: int, batch: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.initial_states is None:
            return None  # zeros
        h, c = self.initial_states[layer].expand(-1, -1, batch, -1)  # (1, B, H) each
        return h.contiguous(), c.contiguous()


class SentimentEnsemble(nn.Module):
    """`members` networks, each with its own initialisation and dropout, trained side by side on
    the same batches. While training, forward returns each member's logits (B, K), so that each
    learns from its own loss (a loss on their mean would train one wide network, whose parts
    adapt to each other and err alike); in eval mode it returns their mean logit (B,). Only
    gradient clipping sees them together: it bounds the norm over all members' weights."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        single = dataclasses.replace(config, members=1)
        self.members = nn.ModuleList(SentimentLSTM(single) for _ in range(config.members))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([member(tokens, lengths) for member in self.members()], dim=1)  # (B, K)
        return logits if self.training else logits.mean(dim=1)

    def sparse_tables(self) -> list[nn.Embedding]:
        return [table for member in self.members() for table in member.sparse_tables()]

    def members(self) -> list[SentimentLSTM]:
        # The ModuleList keeps the name "members" in the saved weights (members.0.*); this method,
        # found on the class before nn.Module looks among its modules, hands out its networks.
        return list(self._modules["members"])

    @torch.no_grad()
    def merged(self) -> SentimentLSTM | None:
        """The members as one network K times as wide with the same eval-mode logits: word
        vectors side by side, each gate's units [member 1 | member 2 | ...], LSTM weights
        block-diagonal so that no member reads another's units, and the members' heads over K.
        Scoring then makes one LSTM call for all members, so one message costs what one network
        costs. None for bidirectional layers or the bigram bag, which it does not cover."""
        config = self.config
        if config.bidirectional or config.bigram_buckets:
            return None
        k = config.members
        wide = SentimentLSTM(dataclasses.replace(config, members=1, embedding_dim=config.embedding_dim * k,
                                                 lstm_sizes=[h * k for h in config.lstm_sizes])).eval()
        parts = self.members()
        wide.embedding.weight.copy_(torch.cat([m.embedding.weight for m in parts], dim=1))
        for i, lstm in enumerate(wide.lstms):
            lstms = [m.lstms[i] for m in parts]
            lstm.weight_ih_l0.copy_(_block_diagonal([x.weight_ih_l0 for x in lstms]))
            lstm.weight_hh_l0.copy_(_block_diagonal([x.weight_hh_l0 for x in lstms]))
            lstm.bias_ih_l0.copy_(_gate_rows([x.bias_ih_l0 for x in lstms]))
            lstm.bias_hh_l0.copy_(_gate_rows([x.bias_hh_l0 for x in lstms]))
            if wide.initial_states is not None:
                wide.initial_states[i].copy_(torch.cat([m.initial_states[i] for m in parts], dim=3))
        wide.head.weight.copy_(torch.cat([m.head.weight for m in parts], dim=1) / k)
        wide.head.bias.copy_(torch.stack([m.head.bias for m in parts]).mean(dim=0))
        return wide


def _gate_rows(parts: list[torch.Tensor]) -> torch.Tensor:
    """(4H, ...) per member -> (4KH, ...): gate g of every member, then gate g + 1."""
    gates = [part.chunk(4, dim=0) for part in parts]
    return torch.cat([member[g] for g in range(4) for member in gates], dim=0)


def _block_diagonal(parts: list[torch.Tensor]) -> torch.Tensor:
    """(4H, I) per member -> (4KH, KI): member k's gate rows read only member k's inputs."""
    columns = []
    for k, part in enumerate(parts):
        alone = [torch.zeros_like(part) for _ in parts]
        alone[k] = part
        columns.append(_gate_rows(alone))
    return torch.cat(columns, dim=1)


def build_model(config: ModelConfig) -> SentimentLSTM | SentimentEnsemble:
    """The network `config` describes: one, or an ensemble when config.members > 1."""
    return SentimentEnsemble(config) if config.members > 1 else SentimentLSTM(config)


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Copy `state` into `model`; weights of another shape (another vocabulary size, another
    network) or with names missing are one clear error naming `source`."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines()[1:3])
        raise StocksentError(f"{source}: the weights do not fit the model its config describes ({detail})") from None
    return model


@torch.no_grad()
def grow_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy a trained network's weights into `model`, a network of the same shape whose word
    table may have more rows: the words its vocabulary gained. Each new row starts as the trained
    network's unknown word, which is how it read those words, so `model` scores every message as
    the trained network did until training moves the rows apart (but for a word-pair bag, whose
    rows are hashed from word ids)."""
    own = model.state_dict()
    if set(own) != set(state):
        raise StocksentError(f"{source}: its network is not of this config's shape (the layers differ)")
    for name, tensor in state.items():
        target = own[name]
        if target.shape == tensor.shape:
            target.copy_(tensor)
        elif name.endswith("embedding.weight") and target.shape[1:] == tensor.shape[1:] \
                and len(target) >= len(tensor):
            target[:len(tensor)].copy_(tensor)
            target[len(tensor):] = tensor[UNKNOWN]
        else:
            raise StocksentError(f"{source}: its {name} ({tuple(tensor.shape)}) does not fit this network "
                                 f"({tuple(target.shape)})")
