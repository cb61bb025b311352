"""Word vectors by word2vec's skip-gram with negative sampling (Mikolov et al., 2013), trained by
gensim: the cheaper pretraining, which teaches the embedding alone that words used alike are
alike, from text without tags.

    message   w1  w2  w3  w4           each word's vector is scored against the vectors of the
    pairs     (w2, w1) (w2, w3) ...    words within WINDOW of it (as context), and against
                                       NEGATIVES words drawn from the unigram distribution^0.75

gensim reads the messages as the vocabulary spells them, so the words the vocabulary leaves out
train one vector together, the unknown word's, which is what a classifier reads for them. The
classifier takes over the table (`embedding.weight`); its LSTM layers start as they would without
pretraining. docs/performance.md gives the runs that chose gensim over fastText's skip-gram and the
project's own.
"""
from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
from gensim.models import Word2Vec
from gensim.models.callbacks import CallbackAny2Vec

from ..text.vocab import Vocab

WINDOW = 2  # context words on each side, every one of them (not gensim's shrunk windows)
NEGATIVES = 5  # words drawn against each pair
# Occurrences of the most frequent words skipped at random (word2vec's subsampling): the rarer
# words' vectors then get a larger share of the updates, which the classifier reads better.
SAMPLE = 1e-3
# gensim's worker threads take the text in whichever order they get to it, so that with more than
# one a seed would give other vectors on every run (docs/performance.md has what one costs).
WORKERS = 1
HELD_OUT_SEED = 0  # the pairs and negatives the held-out loss is scored on: the same for every epoch
HELD_OUT_PAIRS = 20_000  # at most: enough for its third decimal, and a fraction of an epoch's time


def train_vectors(encoded: dict[str, list[np.ndarray]], vocab: Vocab, dim: int, epochs: int, lr: float,
                  seed: int, on_epoch: Callable[[dict[str, float], float], None]) -> np.ndarray:
    """The (len(vocab), dim) table of word vectors trained on encoded["train"] (word ids),
    `epochs` passes with the rate falling linearly from `lr`; after each, `on_epoch` gets the
    epoch's row (the held-out messages' loss per pair) and its seconds. Row 0 (padding) is zero."""
    sentences = [[vocab.itos[i] for i in ids] for ids in encoded["train"]]
    model = Word2Vec(vector_size=dim, window=WINDOW, shrink_windows=False, sg=1, hs=0, negative=NEGATIVES,
                     sample=SAMPLE, min_count=1, alpha=lr, min_alpha=lr * 0.004, seed=seed, workers=WORKERS,
                     hashfxn=_stable_hash)
    model.build_vocab(sentences)
    scorer = _HeldOut(model, vocab, encoded["held_out"], on_epoch)
    model.train(sentences, total_examples=len(sentences), epochs=epochs, callbacks=[scorer])
    return _table(model, vocab, dim, seed)


def _stable_hash(text: str) -> int:
    """gensim seeds each word's first vector from a hash of it: Python's own differs per process."""
    return zlib.crc32(text.encode())


def _table(model: Word2Vec, vocab: Vocab, dim: int, seed: int) -> np.ndarray:
    table = np.random.default_rng(seed).normal(0.0, dim ** -0.5, (len(vocab), dim)).astype(np.float32)
    for index, word in enumerate(vocab.itos):
        if word in model.wv.key_to_index:
            table[index] = model.wv[word]
    table[0] = 0.0
    return table


class _HeldOut(CallbackAny2Vec):
    """After each epoch: the skip-gram loss per pair on held-out messages (up to HELD_OUT_PAIRS
    of their pairs), their words' input vectors against their neighbours' output vectors and
    against negatives drawn once."""

    def __init__(self, model: Word2Vec, vocab: Vocab, held_out: list[np.ndarray],
                 on_epoch: Callable[[dict[str, float], float], None]):
        ids = np.array([model.wv.key_to_index.get(word, -1) for word in vocab.itos])
        centres, contexts = _pairs([ids[m] for m in held_out])
        rng = np.random.default_rng(HELD_OUT_SEED)
        known = np.flatnonzero((centres >= 0) & (contexts >= 0))
        kept = np.sort(rng.choice(known, HELD_OUT_PAIRS, replace=False)) if len(known) > HELD_OUT_PAIRS else known
        self.centres, self.contexts = centres[kept], contexts[kept]
        counts = np.array([model.wv.get_vecattr(i, "count") for i in range(len(model.wv))], dtype=np.float64)
        noise = counts ** 0.75
        self.negatives = rng.choice(len(noise), size=(len(self.centres), NEGATIVES), p=noise / noise.sum())
        self.on_epoch, self.started = on_epoch, time.perf_counter()

    def on_epoch_end(self, model: Word2Vec) -> None:
        seconds = time.perf_counter() - self.started
        self.on_epoch({"val_loss": self.loss(model)}, seconds)
        self.started = time.perf_counter()

    def loss(self, model: Word2Vec) -> float:
        if len(self.centres) == 0:
            return float("nan")
        u, out = model.wv.vectors[self.centres], model.syn1neg
        positive = np.einsum("pe,pe->p", u, out[self.contexts])
        negative = np.einsum("pe,pke->pk", u, out[self.negatives])
        loss = np.logaddexp(0.0, -positive) + np.logaddexp(0.0, negative).sum(axis=1)
        return float(loss.mean())


def _pairs(messages: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Every (word, word within WINDOW of it) of the messages, both ways round."""
    centres: list[Any] = [np.zeros(0, dtype=np.int64)]
    contexts: list[Any] = [np.zeros(0, dtype=np.int64)]
    for ids in messages:
        for gap in range(1, WINDOW + 1):
            left, right = ids[:-gap], ids[gap:]
            centres += [left, right]
            contexts += [right, left]
    return np.concatenate(centres), np.concatenate(contexts)
