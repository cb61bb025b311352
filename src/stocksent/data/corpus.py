"""A labelled data file turned into tokenised messages and its seeded split."""
from __future__ import annotations

from dataclasses import dataclass, field
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
    # Splits given as files of their own (with_files): their messages follow the main file's,
    # at these positions, with each file's record.
    fixed: dict[str, np.ndarray] = field(default_factory=dict)
    fixed_record: dict[str, dict[str, Any]] = field(default_factory=dict)

    def split(self, cfg: DataConfig) -> dict[str, np.ndarray]:
        """The seeded split of the main file's messages; a split given as a file of its own is
        that file's messages, and the main file's share of it goes to training."""
        own = self.own_messages
        splits = {"train": np.arange(own)} if {"val", "test"} <= set(self.fixed) \
            else split_messages(self.tokens[:own], cfg)
        for name, index in self.fixed.items():
            splits["train"] = np.sort(np.concatenate([splits["train"], splits.get(name, [])])).astype(np.int64)
            splits[name] = index
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
    def own_messages(self) -> int:
        """How many of its messages are the main file's (they come first)."""
        return len(self.labels) - sum(len(index) for index in self.fixed.values())

    @property
    def record(self) -> dict[str, Any]:
        """What a model trained on it records of its data."""
        own = {"source": str(self.source.resolve()), "sha256": self.sha256, "messages": self.own_messages,
               "dropped_empty": self.dropped}
        return {**own, **self.fixed_record}


def with_files(corpus: Corpus, given: dict[str, Corpus]) -> Corpus:
    """`corpus` with the splits named in `given` ("val", "test") taken from those files'
    messages, as a user's own fixed splits, instead of the seeded split of its own."""
    if not given:
        return corpus
    texts, tokens, labels, fixed = list(corpus.texts), list(corpus.tokens), [corpus.labels], {}
    for name, other in given.items():
        fixed[name] = np.arange(len(texts), len(texts) + len(other.texts))
        texts += other.texts
        tokens += other.tokens
        labels.append(other.labels)
    record = {name: {"source": str(other.source.resolve()), "sha256": other.sha256, "messages": len(other.texts)}
              for name, other in given.items()}
    return Corpus(texts, tokens, np.concatenate(labels), corpus.source, corpus.sha256, corpus.dropped, fixed, record)


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

    def load(self, path: Path, data: DataConfig, prep: PreprocessConfig,
             given: dict[str, Path] | None = None) -> Corpus:
        """The file's corpus; with `given` ("val" or "test": a file), those splits from those files."""
        key = (data.text_column, data.label_column, data.negative_label.strip().lower(),
               data.positive_label.strip().lower(), prep.keep_emoji, prep.max_tokens)
        for file in [path, *(given or {}).values()]:
            if (str(file), *key) not in self._loaded:
                self._loaded[(str(file), *key)] = load_corpus(file, data, prep)
        return with_files(self._loaded[(str(path), *key)],
                          {name: self._loaded[(str(file), *key)] for name, file in (given or {}).items()})
