"""The trained artifact: vocabulary, networks and the parts after them; it encodes messages,
scores them, and is saved to and loaded from a model directory (store.py).

    texts -> encode (word ids) -> the network's scorer (scorer.py) -> each part (parts.py) -> logits
"""
from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import Config
from ..data.store import CONFIG, load_model, read_json, save_model
from ..errors import StocksentError
from ..nets.model import build_model, load_weights
from ..text.preprocess import ENTITY_CODES, coded_words
from ..text.vocab import UNKNOWN, Vocab
from .parts import Part, adjust, find_part, part_tensors, split_parts, with_part
from .scorer import Scorer, check_backend, make_scorer

# From this many messages the caller's thread encodes chunks of THREAD_CHUNK while a pool of as
# many threads as torch has scores them, one torch thread each (bench/suite.py measures it).
THREADED_FROM = 2048
THREAD_CHUNK = 2048  # fewer when there are fewer messages, so that every thread gets two chunks


@dataclass
class Predictor:
    """A trained model ready to score: `logits(texts)` is what every scoring path calls."""

    config: Config
    vocab: Vocab
    network: nn.Module | None  # None with the onnx backend, which holds no torch weights
    scorer: Scorer  # the network's logits (scorer.py)
    parts: list[Part] = field(default_factory=list)
    version: str | None = None  # the saved weights' sha256, 12 hex digits, once saved or loaded
    source: tuple | None = None  # (folder, device, backend, threads) once loaded from a directory

    def __post_init__(self) -> None:
        # Word -> id, entity codes included: encoding skips the code -> special token step.
        stoi = self.vocab.stoi
        self._word_ids = {**stoi, **{code: stoi.get(token, UNKNOWN) for code, token in ENTITY_CODES.items()}}

    @classmethod
    def build(cls, network: nn.Module, vocab: Vocab, config: Config, device: str = "cpu",
              parts: Sequence[Part] = ()) -> "Predictor":
        """A predictor around a network in memory, on `device` (cpu, cuda or auto)."""
        return cls(config, vocab, network.eval(), make_scorer(network, device), list(parts))

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", backend: str = "torch", threads: int = 0) -> "Predictor":
        """Rebuild a saved model. backend "torch" runs on `device` (cpu, cuda, or auto: cuda when
        torch sees a GPU); backend "onnx" runs the directory's model.onnx with onnxruntime."""
        check_backend(backend)
        folder = Path(path)
        config, vocab, network, parts = read_model(folder)
        scorer = make_scorer(network, device, backend, folder, threads)
        return cls(config, vocab, None if backend == "onnx" else network, scorer, parts, saved_version(folder),
                   (folder, device, backend, threads))

    def save(self, folder: Path, metrics: dict) -> None:
        """Write the model directory (store.py); `version` then names the weights written."""
        save_model(folder, self.config, self.vocab, self.state_dict(), metrics)
        self.version, self.source = saved_version(folder), None

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every tensor model.safetensors holds: the networks' and each part's."""
        if self.network is None:
            raise StocksentError("a model loaded with the onnx backend has no weights to save; save the torch one")
        state = {k: v.detach().cpu() for k, v in self.network.state_dict().items()}
        return {**state, **part_tensors(self.parts)}

    def loader(self, threads: int = 1) -> Callable[[], "Predictor"]:
        """A picklable function that loads this model again (for worker processes), on the
        device and backend it was loaded with, with `threads` threads."""
        return functools.partial(Predictor.load, *self.loaded_from(), threads)

    def loaded_from(self) -> tuple[Path, str, str]:
        """The directory, device and backend this model was loaded with; an error for one that
        no directory holds as it is."""
        if self.source is None:
            raise StocksentError("scoring on several processes needs a model loaded from a directory: "
                                 "save it, then SentimentClassifier.load(path)")
        return self.source[:3]

    def part(self, kind: type) -> Part | None:
        """The part of this kind, or None."""
        return find_part(self.parts, kind)

    def with_part(self, new: Part) -> "Predictor":
        """A copy holding `new` in place of its kind's part; unsaved, so of no version."""
        return replace(self, parts=with_part(self.parts, new), version=None, source=None)

    def without(self, kind: type) -> "Predictor":
        """A copy without a part of this kind; unsaved, so of no version."""
        return replace(self, parts=[part for part in self.parts if not isinstance(part, kind)], version=None,
                       source=None)

    @property
    def labels(self) -> tuple[str, str]:
        return self.config.data.negative_label, self.config.data.positive_label

    # -- encoding ---------------------------------------------------------------------------------

    def encode(self, texts: Iterable[str]) -> list[np.ndarray]:
        """Token ids per message; a message with no tokens left is read as one unknown word."""
        flat, lengths = self.encode_flat(texts)
        ends = np.cumsum(lengths).tolist()
        return [flat[end - length:end] for end, length in zip(ends, lengths.tolist())]

    def encode_flat(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every message's ids one after another, and their lengths: converting each message's
        list on its own costs more than tokenising it."""
        prep, word_id = self.config.preprocess, self._word_ids.get
        ids, lengths = [], []
        for text in texts:
            words = [word_id(w, UNKNOWN) for w in coded_words(text, prep.keep_emoji)[: prep.max_tokens]] or [UNKNOWN]
            ids.extend(words)
            lengths.append(len(words))
        return np.asarray(ids, dtype=np.int64), np.asarray(lengths, dtype=np.int64)

    # -- scoring ----------------------------------------------------------------------------------

    def network_logits(self, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(N,) the network's logits alone, before the parts."""
        return self.scorer.logits(flat, lengths)

    def score_ids(self, flat: np.ndarray, lengths: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """(N,) logits of encoded messages: the network's, adjusted by each part (`texts[i]` is
        message i as written, which a part may read)."""
        return adjust(self.parts, self.network_logits(flat, lengths), flat, lengths, texts)

    def logits(self, texts: list[str]) -> np.ndarray:
        """(N,) float32 logits: above 0 leans to the positive label."""
        if not texts:
            return np.empty(0, np.float32)
        lanes = torch.get_num_threads()
        if not self.scorer.concurrent or lanes < 2 or len(texts) < THREADED_FROM:
            return self.score_ids(*self.encode_flat(texts), texts)
        return self._pool_logits(texts, lanes)

    def _pool_logits(self, texts: list[str], lanes: int) -> np.ndarray:
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
                chunk = [texts[i] for i in index]
                pending.append((index, pool.submit(self.score_ids, *self.encode_flat(chunk), chunk)))
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


def read_model(folder: Path) -> tuple[Config, Vocab, nn.Module, list[Part]]:
    """A model directory's config (as its parts score), vocabulary, network and parts."""
    config, vocab, state = load_model(folder)
    state, parts, config = split_parts(state, config, str(folder))
    return config, vocab, load_weights(build_model(config.model), state, str(folder)), parts


def saved_version(folder: Path) -> str:
    return str(read_json(folder / CONFIG).get("weights_sha256", ""))[:12]
