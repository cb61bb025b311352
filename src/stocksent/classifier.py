"""The public API: a trained model behind scikit-learn-style predict / predict_proba."""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .batches import by_length, score_by_length
from .config import Config
from .device import resolve_device
from .errors import StocksentError
from .export import OnnxScorer
from .folded import FoldedLSTM
from .model import SentimentEnsemble, build_model, load_weights
from .preprocess import ENTITY_CODES, coded_words, tokenize
from .store import load_model, read_metrics
from .train import predict_logits
from .vocab import UNKNOWN, Vocab


# The folded network runs a dozen small ops per word; below this many messages the network's
# one fused LSTM call is quicker (measured on 2 cores, medians of 30: 8 messages 4.9 ms against
# 4.0 ms, 16 messages 5.4 against 5.5 ms, 32 messages 6.5 against 8.6 ms).
FOLD_FROM = 16
# Messages per scoring batch: 1,024 scored fastest with the folded default on 2 cores (medians of
# five: 27,100-27,900 msg/s against 24,700-25,500 at 512, 21,600 at 256 and 26,900 at 1,536).
SCORE_BATCH = 1024
# From this many messages the caller's thread normalises chunks of THREAD_CHUNK while a pool of
# as many threads as torch has scores them through the fold, one torch thread each. The fold's
# loop runs in C++ without Python's lock, so normalising no longer leaves a core idle (medians of
# nine interleaved passes, 2 cores: +16% on 48,485 messages, +14% on 9,697, +7% on 2,048, -6% on 1,024).
THREADED_FROM = 2048
THREAD_CHUNK = 2048  # fewer when there are fewer messages, so that every thread gets two chunks


class SentimentClassifier:
    """Scores messages as bullish or bearish (or the labels the model was trained with).

    >>> clf = SentimentClassifier.load("models/default")
    >>> clf.predict("$SPY to the moon 🚀")
    'bullish'
    """

    def __init__(self, model: nn.Module | None, vocab: Vocab, config: Config, metrics: dict | None = None,
                 scorer: Callable[[torch.Tensor, torch.Tensor], np.ndarray] | None = None):
        self.model = model.eval() if model is not None else None
        self.vocab = vocab
        self.config = config
        self.metrics = metrics or {}
        self._scorer = scorer  # scores instead of model: onnxruntime, or the network folded for a CPU
        # Word -> id, entity codes included: encoding skips the code -> special token step.
        self._word_ids = {**vocab.stoi, **{code: vocab.stoi.get(token, UNKNOWN) for code, token in ENTITY_CODES.items()}}

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", backend: str = "torch",
             threads: int = 0) -> "SentimentClassifier":
        """Rebuild a saved model. backend "torch" runs on `device` (cpu, cuda, or auto: cuda when
        torch sees a GPU); backend "onnx" runs the directory's model.onnx with onnxruntime."""
        folder = Path(path)
        config, vocab, state = load_model(folder)
        if backend == "onnx":
            return cls(None, vocab, config, read_metrics(folder), OnnxScorer(folder, threads))
        if backend != "torch":
            raise StocksentError(f"unknown backend {backend!r}; choose torch or onnx")
        model = load_weights(build_model(config.model), state, str(folder))
        return cls.from_model(model, vocab, config, device, read_metrics(folder))

    @classmethod
    def from_model(cls, model: nn.Module, vocab: Vocab, config: Config, device: str = "cpu",
                   metrics: dict | None = None) -> "SentimentClassifier":
        """A classifier around a network in memory, set up for scoring as `load` sets up a saved one."""
        model, target = model.eval(), resolve_device(device)
        # On a CPU the folded network scores the same logits with about half the work.
        folded = FoldedLSTM.fold(model) if target.type == "cpu" else None
        if isinstance(model, SentimentEnsemble):  # one wide network: one LSTM call for all members
            model = model.merged() or model
        return cls(model.to(target), vocab, config, metrics, folded)

    @property
    def labels(self) -> tuple[str, str]:
        return self.config.data.negative_label, self.config.data.positive_label

    def encode(self, texts: Iterable[str]) -> list[np.ndarray]:
        """Token ids per message; a message with no tokens left is read as one unknown word."""
        flat, lengths = self._encode_flat(texts)
        ends = np.cumsum(lengths).tolist()
        return [flat[end - length:end] for end, length in zip(ends, lengths.tolist())]

    def _encode_flat(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """`encode` as one array of every message's ids, one after another, and their lengths:
        converting each message's list on its own cost more than tokenising it."""
        prep, word_id = self.config.preprocess, self._word_ids.get
        ids, lengths = [], []
        for text in texts:
            words = [word_id(w, UNKNOWN) for w in coded_words(text, prep.keep_emoji)[: prep.max_tokens]] or [UNKNOWN]
            ids.extend(words)
            lengths.append(len(words))
        return np.asarray(ids, dtype=np.int64), np.asarray(lengths, dtype=np.int64)

    def _tokens(self, text: str) -> list[str]:
        prep = self.config.preprocess
        return tokenize(text, prep.keep_emoji)[: prep.max_tokens]

    def _ids(self, tokens: list[str]) -> np.ndarray:
        return np.asarray(self.vocab.encode(tokens) or [UNKNOWN], dtype=np.int64)

    def explain(self, text: str, top: int = 5) -> list[tuple[str, float]]:
        """The tokens that moved this message's score most, by occlusion: each token is left
        out in turn and the message scored again. Returns (token, effect) pairs, largest |effect|
        first; effect = probability with the token - probability without it, so a positive
        effect pushed the message towards the positive label. Words the model never saw in
        training are read as one unknown word, but shown as written."""
        if not isinstance(text, str):
            raise TypeError(f"explain takes one string, not {type(text).__name__}")
        tokens = self._tokens(text)
        if not tokens:
            return []
        variants = [self._ids(tokens)] + [self._ids(tokens[:i] + tokens[i + 1:]) for i in range(len(tokens))]
        prob = 1 / (1 + np.exp(-self._logits(variants).astype(np.float64)))
        effects = prob[0] - prob[1:]
        order = np.argsort(-np.abs(effects), kind="stable")[:max(top, 0)]
        return [(tokens[i], float(effects[i])) for i in order]

    def predict_proba(self, texts: str | Iterable[str]) -> Any:
        """Probability of the positive label: a float for one string, an array for many."""
        single = isinstance(texts, str)
        batch = [texts] if single else _text_list(texts)
        prob = torch.sigmoid(torch.from_numpy(self._text_logits(batch))).numpy()
        return float(prob[0]) if single else prob

    def _text_logits(self, texts: list[str]) -> np.ndarray:
        if not isinstance(self._scorer, FoldedLSTM) or len(texts) < FOLD_FROM:
            return self._logits(self.encode(texts)) if texts else np.empty(0, np.float32)
        lanes = torch.get_num_threads()
        if lanes < 2 or len(texts) < THREADED_FROM:
            return self._fold_scores(*self._encode_flat(texts))
        return self._pool_scores(texts, lanes)

    def _pool_scores(self, texts: list[str], lanes: int) -> np.ndarray:
        """Encode chunks here while `lanes` threads of one torch thread each score them."""
        size = min(THREAD_CHUNK, -(-len(texts) // (2 * lanes)))
        # Longest texts first: a chunk's messages are then of similar length (so are its batches'),
        # and the last chunks, which may leave a thread idle, are the quickest.
        order = np.argsort(-np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), kind="stable")
        out = np.empty(len(texts), dtype=np.float32)
        pool, pending = ThreadPoolExecutor(lanes, initializer=torch.set_num_threads, initargs=(1,)), deque()
        try:
            for start in range(0, len(texts), size):  # this thread encodes while the pool scores
                index = order[start:start + size]
                pending.append((index, pool.submit(self._fold_scores, *self._encode_flat([texts[i] for i in index]))))
                if len(pending) > 2 * lanes:  # bounded: encoded chunks wait for no more than this
                    index, future = pending.popleft()
                    out[index] = future.result()
            for index, future in pending:
                out[index] = future.result()
            return out
        finally:
            pool.shutdown(cancel_futures=True)  # on an error or Ctrl-C, no chunks run on after it
            # torch's thread count is process-wide (each worker set it to 1): give it back
            torch.set_num_threads(lanes)

    def _fold_scores(self, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Score encoded messages through the fold in batches of similar length, nothing padded."""
        ids, starts = torch.from_numpy(flat), np.cumsum(lengths) - lengths
        out = np.empty(len(lengths), dtype=np.float32)
        for index in by_length(lengths, SCORE_BATCH):
            out[index] = self._scorer.score(ids, torch.from_numpy(starts[index]), torch.from_numpy(lengths[index]))
        return out

    def _logits(self, encoded: list[np.ndarray]) -> np.ndarray:
        if self._scorer is not None and (self.model is None or len(encoded) >= FOLD_FROM):
            return score_by_length(self._scorer, encoded, SCORE_BATCH)
        return predict_logits(self.model, encoded)

    def predict(self, texts: str | Iterable[str]) -> Any:
        """Label names: one string for one string in, a list for many."""
        prob = self.predict_proba(texts)
        if isinstance(prob, float):
            return self.labels[int(prob >= 0.5)]
        return [self.labels[int(p >= 0.5)] for p in prob]


def _text_list(texts: Iterable[str]) -> list[str]:
    """The texts as a list, or a TypeError naming the first thing that is not a string."""
    if isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Iterable):
        raise TypeError(f"expected a string or an iterable of strings, not {type(texts).__name__}")
    batch = list(texts)
    for i, text in enumerate(batch):
        if not isinstance(text, str):
            raise TypeError(f"expected strings, but item {i} is {type(text).__name__}")
    return batch
