"""The public API: a trained model behind scikit-learn-style predict / predict_proba."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import Config
from .device import resolve_device
from .model import SentimentLSTM
from .preprocess import tokenize
from .store import load_model, read_metrics
from .train import predict_logits
from .vocab import Vocab


class SentimentClassifier:
    """Scores messages as bullish or bearish (or the labels the model was trained with).

    >>> clf = SentimentClassifier.load("models/default")
    >>> clf.predict("$SPY to the moon 🚀")
    'bullish'
    """

    def __init__(self, model: SentimentLSTM, vocab: Vocab, config: Config, metrics: dict | None = None):
        self.model = model.eval()
        self.vocab = vocab
        self.config = config
        self.metrics = metrics or {}

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "SentimentClassifier":
        """Rebuild a saved model; `device` is cpu, cuda or auto (cuda when torch sees a GPU)."""
        config, vocab, state = load_model(Path(path))
        model = SentimentLSTM(config.model)
        model.load_state_dict(state)
        return cls(model.to(resolve_device(device)), vocab, config, read_metrics(Path(path)))

    @property
    def labels(self) -> tuple[str, str]:
        return self.config.data.negative_label, self.config.data.positive_label

    def encode(self, texts: Iterable[str]) -> list[np.ndarray]:
        """Token ids per message; a message with no tokens left is read as one unknown word."""
        prep = self.config.preprocess
        encoded = []
        for text in texts:
            ids = self.vocab.encode(tokenize(text, prep.keep_emoji)[: prep.max_tokens])
            encoded.append(np.asarray(ids or [1], dtype=np.int64))
        return encoded

    def predict_proba(self, texts: str | Iterable[str]) -> Any:
        """Probability of the positive label: a float for one string, an array for many."""
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        logits = predict_logits(self.model, self.encode(batch)) if batch else np.empty(0, np.float32)
        prob = torch.sigmoid(torch.from_numpy(logits)).numpy()
        return float(prob[0]) if single else prob

    def predict(self, texts: str | Iterable[str]) -> Any:
        """Label names: one string for one string in, a list for many."""
        prob = self.predict_proba(texts)
        if isinstance(prob, float):
            return self.labels[int(prob >= 0.5)]
        return [self.labels[int(p >= 0.5)] for p in prob]
