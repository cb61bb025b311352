"""The vocabulary: token <-> index, built from the training split only."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..errors import StocksentError

PAD, UNK = "<PAD>", "<UNK>"
UNKNOWN = 1  # the id of UNK


class Vocab:
    """Index 0 is padding and 1 the unknown word; the rest are sorted by frequency, then text."""

    def __init__(self, tokens: Iterable[str]):
        self.itos = [PAD, UNK] + [t for t in tokens if t not in (PAD, UNK)]
        self.stoi = {token: index for index, token in enumerate(self.itos)}

    @classmethod
    def build(cls, messages: Iterable[list[str]], min_freq: int = 1) -> "Vocab":
        counts = Counter(token for tokens in messages for token in tokens)
        kept = [t for t, n in counts.items() if n >= min_freq]
        return cls(sorted(kept, key=lambda t: (-counts[t], t)))

    def extended(self, messages: Iterable[list[str]], min_freq: int = 1) -> "Vocab":
        """This vocabulary, every id kept, then the words of `messages` it lacks (seen at least
        `min_freq` times), by frequency: a trained model's vocabulary grown for new text."""
        new = Vocab.build(messages, min_freq)
        return Vocab([*self.itos[2:], *(t for t in new.itos[2:] if t not in self.stoi)])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: list[str]) -> list[int]:
        return [self.stoi.get(token, UNKNOWN) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids if i != 0]

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.itos}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Vocab":
        tokens = raw.get("tokens") if isinstance(raw, dict) else None
        if not isinstance(tokens, list) or tokens[:2] != [PAD, UNK] or not all(isinstance(t, str) for t in tokens):
            raise StocksentError("vocab.json is not a stocksent vocabulary")
        return cls(tokens[2:])
