"""Ticker priors: how bullish a new market's crowd is on each ticker (estimated by adapt.py from
the model's own guesses for that ticker's messages, as the market index estimates a share)
shifts every message about it.

A model learns P(label | message) at its training data's share of each label. In another market
that share differs from ticker to ticker; Saerens, Latinne & Decaestecker (2002) rescale each
posterior by new prior / old prior, which is a shift of its logit:

    logit(message) += logit(its ticker's prior) - logit(the training prior)

A message's ticker is its first cashtag. A message with none, or whose ticker the adaptation
messages never named, takes the market's prior. The priors sit in model.safetensors under
PREFIX: the tickers as UTF-8 text, one a line, and one shift per ticker.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

import numpy as np
import torch

from ..config import Config
from ..errors import StocksentError
from ..text.preprocess import first_ticker

PREFIX = "priors."


class TickerPriors:
    """Logit shifts: one per ticker (sorted), and `default` for every other message. A part
    after the network (parts.py)."""

    prefix: ClassVar[str] = PREFIX

    def __init__(self, tickers: list[str], shifts: np.ndarray, default: float):
        # float32 throughout, as saved: a model scores the same before and after a save.
        self.tickers, self.shifts = tickers, np.asarray(shifts, dtype=np.float32)
        self.default = float(np.float32(default))
        self._index = {ticker: i for i, ticker in enumerate(tickers)}

    def shift(self, texts: Iterable[str]) -> np.ndarray:
        """(N,) float32: the shift of each message's logit."""
        index, shifts = self._index, self.shifts
        return np.fromiter((shifts[index[t]] if (t := first_ticker(text)) in index else self.default
                            for text in texts), dtype=np.float32)

    def adjust(self, logits: np.ndarray, flat: np.ndarray, lengths: np.ndarray,
               texts: Sequence[str]) -> np.ndarray:
        return logits + self.shift(texts)

    def tensors(self) -> dict[str, torch.Tensor]:
        names = np.frombuffer("\n".join(self.tickers).encode("utf-8"), dtype=np.uint8).copy()
        return {f"{PREFIX}tickers": torch.from_numpy(names), f"{PREFIX}shifts": torch.from_numpy(self.shifts.copy()),
                f"{PREFIX}default": torch.tensor([self.default], dtype=torch.float32)}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], source: str) -> "TickerPriors":
        try:
            text = tensors[f"{PREFIX}tickers"].numpy().tobytes().decode("utf-8")
            shifts = tensors[f"{PREFIX}shifts"].numpy()
            default = float(tensors[f"{PREFIX}default"].reshape(-1)[0])
        except (KeyError, IndexError):
            raise StocksentError(f"{source}: its ticker priors are incomplete") from None
        except (TypeError, UnicodeDecodeError):
            raise StocksentError(f"{source}: its ticker priors are damaged") from None
        tickers = text.split("\n") if text else []
        if len(tickers) != len(shifts) or tickers != sorted(set(tickers)):
            raise StocksentError(f"{source}: its ticker priors are damaged (not one shift per ticker)")
        return cls(tickers, shifts, default)

    @classmethod
    def restore(cls, tensors: dict[str, torch.Tensor], config: Config,
                source: str) -> tuple["TickerPriors | None", Config]:
        return (cls.from_tensors(tensors, source) if tensors else None), config
