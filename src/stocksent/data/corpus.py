"""A labelled data file turned into tokenised messages and its seeded split."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config, DataConfig, PreprocessConfig, preset
from ..errors import StocksentError
from ..text.preprocess import tokenize
from .dataset import file_sha256, read_messages
from .split import split_messages


@dataclass
class Corpus:
    """Messages left non-empty after normalisation, with labels (0 negative, 1 positive)."""

    texts: list[str]
    tokens: list[list[str]]
    labels: np.ndarray  # (N,) int64
    source: Path
    sha256: str
    dropped: int  # messages empty after normalisation

    def split(self, cfg: DataConfig) -> dict[str, np.ndarray]:
        splits = split_messages(self.tokens, cfg)
        seen = np.unique(self.labels[splits["train"]])
        if len(seen) < 2:  # nothing to tell apart: training would "succeed" at a useless model
            only = (cfg.negative_label, cfg.positive_label)[int(seen[0])]
            raise StocksentError(f"{self.source}: the training split holds only '{only}' messages; "
                                 "a model needs examples of both labels")
        return splits

    def parts(self, cfg: DataConfig, names: tuple[str, ...] = ("train", "val", "test")) -> dict[str, tuple]:
        """The split's `names` parts: each one's tokenised messages and 0 / 1 labels."""
        return {name: ([self.tokens[i] for i in index], self.labels[index])
                for name, index in self.split(cfg).items() if name in names}

    @property
    def record(self) -> dict[str, Any]:
        """What a model trained on it records of its data."""
        return {"source": str(self.source.resolve()), "sha256": self.sha256, "messages": len(self.texts),
                "dropped_empty": self.dropped}


def tokenize_all(texts: list[str], prep: PreprocessConfig) -> tuple[list[list[str]], list[int]]:
    """Every message's tokens, and the positions of those with any tokens left."""
    tokens = [tokenize(t, prep.keep_emoji)[: prep.max_tokens] for t in texts]
    return tokens, [i for i, t in enumerate(tokens) if t]


def split_texts(texts: list[str], config: Config | None = None) -> dict[str, np.ndarray]:
    """The seeded train / validation / test split `stocksent train` makes of a file holding these
    texts in this order, as positions in `texts` (those empty after normalisation in none)."""
    config = config or preset("default")
    tokens, keep = tokenize_all(list(texts), config.preprocess)
    parts = split_messages([tokens[i] for i in keep], config.data)
    return {name: np.asarray(keep, dtype=np.int64)[index] for name, index in parts.items()}


def load_corpus(path: Path, data: DataConfig, prep: PreprocessConfig) -> Corpus:
    """Read, normalise and tokenise every message, dropping those left empty."""
    texts, labels = read_messages(path, data)
    tokens, keep = tokenize_all(texts, prep)
    if not keep:
        raise StocksentError(f"{path}: no usable rows (every message is empty after normalisation)")
    return Corpus(
        texts=[texts[i] for i in keep],
        tokens=[tokens[i] for i in keep],
        labels=np.asarray([labels[i] for i in keep], dtype=np.int64),
        source=path,
        sha256=file_sha256(path),
        dropped=len(texts) - len(keep),
    )


class CorpusCache:
    """load_corpus once per file and reading settings: normalising every message is the slow
    part, and a report over several models or a tuner's trials read the same file many times."""

    def __init__(self) -> None:
        self._loaded: dict[tuple, Corpus] = {}

    def load(self, path: Path, data: DataConfig, prep: PreprocessConfig) -> Corpus:
        key = (str(path), data.text_column, data.label_column, data.negative_label.strip().lower(),
               data.positive_label.strip().lower(), prep.keep_emoji, prep.max_tokens)
        if key not in self._loaded:
            self._loaded[key] = load_corpus(path, data, prep)
        return self._loaded[key]
