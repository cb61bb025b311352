"""A saved model on a data file: scored on the split it was trained with (or another file's
messages), and adapted to a new market beside its training split."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..classifier import SentimentClassifier
from ..data.corpus import CorpusCache, load_corpus
from ..data.dataset import data_for_model, find_data, split_files
from ..errors import StocksentError
from ..scoring.calibration import CalibrationSet
from ..scoring.index import index_proba
from ..scoring.metrics import sigmoid
from ..training.train import Log, trained_share


def evaluate_split(clf: SentimentClassifier, data: str | Path | None = None, split: str = "test",
                   log: Log = print) -> dict[str, Any]:
    """Score a saved model on a split ("test" or "val") of the file it was trained on (or of
    `data`, split the same way; a file whose sha256 is not the model's is scored with a warning),
    or on every message of `data` ("all": a file of other messages, such as another market's)."""
    texts, labels = split_messages(clf, data, split, log)
    return clf.evaluate(texts, clf.classes_[labels])


def split_messages(clf: SentimentClassifier, data: str | Path | None = None, split: str = "test",
                   log: Log = print, corpora: CorpusCache | None = None) -> tuple[list[str], np.ndarray]:
    """The texts and 0 / 1 labels `evaluate_split` scores (`corpora` keeps files read before)."""
    if split == "all":
        if data is None:
            raise StocksentError("--split all scores a file of other messages: name it with --data")
        corpus = load_corpus(find_data(data), clf.config.data, clf.config.preprocess)
        return corpus.texts, corpus.labels
    return _splits(clf, data, (split,), log, corpora)[split]


def _splits(clf: SentimentClassifier, data: str | Path | None, names: tuple[str, ...], log: Log,
            corpora: CorpusCache | None = None) -> dict[str, tuple[list[str], np.ndarray]]:
    """The `names` splits of the file the model was trained on (or of `data`, split the same
    way): each one's texts and 0 / 1 labels. `corpora` keeps files read before."""
    dataset = clf.metrics.get("dataset", {})
    corpus = (corpora or CorpusCache()).load(data_for_model(data, dataset), clf.config.data, clf.config.preprocess,
                                             split_files(dataset))
    changed = [record["source"] for name, record in corpus.fixed_record.items()
               if dataset.get(name, {}).get("sha256") != record["sha256"]]
    if changed:
        log(f"warning: {', '.join(changed)} changed since this model was trained (sha256 differs)")
    if dataset.get("sha256") and dataset["sha256"] != corpus.sha256:
        log(f"warning: {corpus.source} is not the file this model was trained on "
            "(sha256 differs); the split will not match training")
    elif not dataset.get("sha256"):
        what, risk = (("training", "may not be the data it was trained on") if "train" in names
                      else (names[0], "may hold messages it was trained on"))
        log(f"warning: this model records no data file (fitted in Python?); its {what} split is taken from "
            f"{corpus.source}, which {risk}")
    return {name: ([corpus.texts[i] for i in index], corpus.labels[index])
            for name, index in corpus.split(clf.config.data).items() if name in names}


def adapt_to(clf: SentimentClassifier, texts: list[str], data: str | Path | None = None, threshold: float = 0.9,
             rounds: int = 5, priors: bool = True, log: Log = print, corpora: CorpusCache | None = None,
             market_tags: tuple[list[str], np.ndarray] | None = None) -> dict[str, Any]:
    """Adapt a saved model to a new market's `texts` (SentimentClassifier.adapt), beside the
    training split of the file it was trained on (or of `data`), checked on its test split and
    on the market's own tagged messages (texts, 0 / 1 codes) when given; then score its
    validation and test splits again; returns the metrics it now holds."""
    splits = _splits(clf, data, ("train", "val", "test"), log, corpora)
    (train_texts, train_labels), (test_texts, test_labels) = splits["train"], splits["test"]
    tags = None if market_tags is None else (market_tags[0], clf.classes_[market_tags[1]])
    val_texts, val_labels = splits["val"]
    clf.adapt(texts, (train_texts, clf.classes_[train_labels]), threshold, rounds, priors, tags,
              (test_texts, clf.classes_[test_labels]), (val_texts, clf.classes_[val_labels]))
    for name in ("val", "test"):
        split_texts, split_labels = splits[name]
        clf.metrics_[name] = clf.evaluate(split_texts, clf.classes_[split_labels])
    return clf.metrics_


def calibrate(clf: SentimentClassifier, data: str | Path | None = None, log: Log = print) -> int:
    """Give a saved model the calibration set models save since format 2: how it scores its
    validation split (of the file it was trained on, or of `data` split the same way), beside
    its training split's share of positives. Returns how many messages it holds."""
    splits = _splits(clf, data, ("train", "val"), log)
    texts, codes = splits["val"]
    proba = sigmoid(index_proba(clf.predictor_).logits(texts))
    clf.predictor_ = clf.predictor_.with_part(CalibrationSet(proba, codes, trained_share(splits["train"][1],
                                                                                         clf.config.train)))
    return len(texts)
