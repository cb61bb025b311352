"""Baselines a practitioner would pick instead, on the LSTM's own split and metrics: the majority
class, TF-IDF + logistic regression, NBSVM and fastText. Each is fitted on the training split's
normalised tokens, its settings chosen on the validation split, and scored like the LSTM.

    Baseline.fit(train, val) -> the settings chosen;  Baseline.proba(tokens) -> P(positive label)
"""
from __future__ import annotations

import itertools
import os
import tempfile
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..config import Config
from ..data.corpus import Corpus
from ..errors import StocksentError
from ..scoring.metrics import binary_metrics

C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0)  # inverse regularisation strengths tried on validation
Part = tuple[Sequence[list[str]], np.ndarray]  # tokenised messages and their 0 / 1 labels


class Baseline(Protocol):
    def fit(self, train: Part, val: Part) -> dict[str, Any]:
        """Fit on `train`, choose settings on `val`; return the settings chosen."""
        ...

    def proba(self, tokens: Sequence[list[str]]) -> np.ndarray:
        """(N,) probability of the positive label."""
        ...


def _sklearn():
    try:
        from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise StocksentError("the baselines need scikit-learn: pip install 'stocksent[baseline]'") from None
    return CountVectorizer, TfidfVectorizer, LogisticRegression


def _joined(tokens: Sequence[list[str]]) -> list[str]:
    return [" ".join(t) for t in tokens]


def _vectorised(vectorizer: Any, texts: list[str], what: str) -> Any:
    try:
        return vectorizer.fit_transform(texts)
    except ValueError:  # scikit-learn's way of saying no n-gram is left to count
        raise StocksentError(f"too little text for the {what} baseline: no word appears in two "
                             "training messages") from None


class LogisticOverFeatures:
    """Features of the joined tokens into a logistic regression whose C is chosen on validation."""

    what = "linear"
    class_weight: str | None = None  # "balanced": both labels weigh alike in the fit

    def fit_features(self, texts: list[str], labels: np.ndarray) -> Any:
        """Learn the features from the training texts; return theirs."""
        raise NotImplementedError

    def features(self, texts: list[str]) -> Any:
        raise NotImplementedError

    def fit(self, train: Part, val: Part) -> dict[str, Any]:
        LogisticRegression = _sklearn()[2]
        x_train, x_val = self.fit_features(_joined(train[0]), train[1]), self.features(_joined(val[0]))
        fits = {c: LogisticRegression(C=c, max_iter=2000, class_weight=self.class_weight).fit(x_train, train[1])
                for c in C_GRID}
        self.C = max(C_GRID, key=lambda c: fits[c].score(x_val, val[1]))
        self.model = fits[self.C]
        return {"C": self.C, "features": x_train.shape[1]}

    def proba(self, tokens: Sequence[list[str]]) -> np.ndarray:
        return self.model.predict_proba(self.features(_joined(tokens)))[:, 1]


class TfidfLogreg(LogisticOverFeatures):
    """TF-IDF of words and word pairs seen in two training messages or more (sublinear counts)."""

    what = "TF-IDF"

    def fit_features(self, texts: list[str], labels: np.ndarray) -> Any:
        self.vectorizer = _sklearn()[1](ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=False,
                                        token_pattern=r"\S+")
        return _vectorised(self.vectorizer, texts, self.what)

    def features(self, texts: list[str]) -> Any:
        return self.vectorizer.transform(texts)


class NBSVM(LogisticOverFeatures):
    """Wang & Manning (2012): which word 1-3 grams a message holds (0 / 1), each scaled by its
    naive-Bayes log-count ratio r = log((p / |p|) / (q / |q|)), p and q the smoothed counts in
    positive and negative training messages; then logistic regression (their NBLR)."""

    what = "NBSVM"
    alpha = 1.0  # add-one smoothing of the counts

    def fit_features(self, texts: list[str], labels: np.ndarray) -> Any:
        self.vectorizer = _sklearn()[0](ngram_range=(1, 3), binary=True, lowercase=False, token_pattern=r"\S+")
        counts = _vectorised(self.vectorizer, texts, self.what)
        p = self.alpha + np.asarray(counts[labels == 1].sum(axis=0)).ravel()
        q = self.alpha + np.asarray(counts[labels == 0].sum(axis=0)).ravel()
        self.ratio = np.log((p / p.sum()) / (q / q.sum()))
        return counts.multiply(self.ratio).tocsr()

    def features(self, texts: list[str]) -> Any:
        return self.vectorizer.transform(texts).multiply(self.ratio).tocsr()


class FastText:
    """fastText supervised (the fasttext-numpy2 package): word n-grams, epochs and learning rate
    chosen on validation, on one thread. fastText's "Encountered NaN" strikes some grid points
    at random on small data, so a point is tried up to RETRIES times before it counts as failed;
    where no point fails, a seed gives one result."""

    RETRIES = 3

    GRID = {"wordNgrams": (1, 2, 3), "epoch": (5, 10), "lr": (0.1, 0.5)}

    def __init__(self, seed: int = 0):
        try:
            import fasttext
        except ImportError:
            raise StocksentError("the fastText baseline needs fasttext: pip install 'stocksent[fasttext]'") from None
        self.fasttext, self.seed = fasttext, seed

    def fit(self, train: Part, val: Part) -> dict[str, Any]:
        best, failed = None, 0
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "train.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.writelines(f"__label__{int(y)} {text}\n" for text, y in zip(_joined(train[0]), train[1]))
            for values in itertools.product(*self.GRID.values()):
                settings = dict(zip(self.GRID, values))
                model = self._train(path, settings)
                if model is None:
                    failed += 1
                    continue
                self.model = model
                accuracy = float(((self.proba(val[0]) >= 0.5) == val[1]).mean())
                if best is None or accuracy > best[0]:
                    best = (accuracy, settings, model)
        if best is None:
            raise StocksentError("fastText failed (NaN) at every grid point")
        self.model = best[2]
        return {**best[1], "failed_grid_points": failed}

    def _train(self, path: str, settings: dict[str, Any]) -> Any:
        """A model of these settings, or None when every try stopped with "Encountered NaN"."""
        for _ in range(self.RETRIES):
            try:
                return self.fasttext.train_supervised(input=path, dim=50, thread=1, seed=self.seed, verbose=0,
                                                      **settings)
            except (RuntimeError, ValueError) as exc:
                if "nan" not in str(exc).lower():
                    raise
        return None

    def proba(self, tokens: Sequence[list[str]]) -> np.ndarray:
        labels, probs = self.model.predict([" ".join(t) or "<UNK>" for t in tokens], k=2)
        return np.array([dict(zip(names, p)).get("__label__1", 0.0) for names, p in zip(labels, probs)])


BASELINES = {"tfidf": ("tfidf_logreg", TfidfLogreg), "nbsvm": ("nbsvm", NBSVM), "fasttext": ("fasttext", FastText)}


def majority(labels: dict[str, np.ndarray], names: tuple[str, str]) -> dict[str, Any]:
    """Always the label most common in training, as a probability of 0 or 1."""
    guess = float(np.bincount(labels["train"], minlength=2).argmax())
    return {name: binary_metrics(labels[name], np.full(len(labels[name]), guess), names)
            for name in labels if name != "train"}


def make_baseline(name: str, seed: int = 0, balanced: bool = False) -> Baseline:
    """Baseline `name`; `balanced`: its fit weighs both labels alike (the linear ones only)."""
    if name not in BASELINES:
        raise StocksentError(f"unknown baseline {name!r}; choose one of: {', '.join(BASELINES)} or all")
    kind = BASELINES[name][1]
    if kind is FastText:
        if balanced:
            raise StocksentError("fastText has no label weights; the balanced baselines are tfidf and nbsvm")
        return kind(seed)
    baseline = kind()
    baseline.class_weight = "balanced" if balanced else None
    return baseline


def score_baseline(name: str, parts: dict[str, Part], names: tuple[str, str], seed: int = 0,
                   balanced: bool = False) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Fit baseline `name` on parts["train"], tune on parts["val"], score every part but train
    (val, test, and any other, such as an out-of-domain set): its settings and metrics, and its
    probabilities of the positive label per part."""
    baseline = make_baseline(name, seed, balanced)
    settings = baseline.fit(parts["train"], parts["val"])
    prob = {part: baseline.proba(tokens) for part, (tokens, _) in parts.items() if part != "train"}
    return {**settings, **{part: binary_metrics(parts[part][1], p, names) for part, p in prob.items()}}, prob


def corpus_parts(corpus: Corpus, splits: dict[str, np.ndarray]) -> dict[str, Part]:
    return {name: ([corpus.tokens[i] for i in index], corpus.labels[index]) for name, index in splits.items()}


def chosen(model: str) -> list[str]:
    """The baselines `--model` names: one, or "all" (fastText only where it is installed)."""
    if model != "all":
        make_baseline(model)  # an unknown name, or fastText missing, is one line now
        return [model]
    try:
        import fasttext  # noqa: F401
    except ImportError:
        return ["tfidf", "nbsvm"]
    return list(BASELINES)


def run_baselines(config: Config, corpus: Corpus, models: list[str]) -> dict[str, Any]:
    """The majority class and each named baseline on the split `config` makes of `corpus`."""
    splits = corpus.split(config.data)
    parts = corpus_parts(corpus, splits)
    names = (config.data.negative_label, config.data.positive_label)
    result: dict[str, Any] = {"split": {"seed": config.data.seed, "group_duplicates": config.data.group_duplicates,
                                        **{f"{n}_size": len(i) for n, i in splits.items()}},
                              "majority": majority({n: labels for n, (_, labels) in parts.items()}, names)}
    for model in models:
        started = time.perf_counter()
        result[BASELINES[model][0]] = score_baseline(model, parts, names, config.data.seed)[0]
        result[BASELINES[model][0]]["seconds"] = round(time.perf_counter() - started, 1)
    return result
