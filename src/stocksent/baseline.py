"""Baselines on the LSTM's own split: the majority class, and TF-IDF (words and word pairs) with
logistic regression from scikit-learn, scored with the same metrics as the LSTM."""
from __future__ import annotations

from typing import Any

import numpy as np

from .config import Config
from .corpus import Corpus
from .errors import StocksentError
from .metrics import binary_metrics

C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0)  # inverse regularisation strengths tried on validation


def majority(labels: dict[str, np.ndarray], names: tuple[str, str]) -> dict[str, Any]:
    """Always the label most common in training, as a probability of 0 or 1."""
    guess = float(np.bincount(labels["train"], minlength=2).argmax())
    return {name: binary_metrics(labels[name], np.full(len(labels[name]), guess), names)
            for name in ("val", "test")}


def tfidf_logreg(corpus: Corpus, splits: dict[str, np.ndarray], config: Config) -> dict[str, Any]:
    """TF-IDF of the normalised tokens (1- and 2-grams, seen at least twice in training) into a
    logistic regression whose strength C is chosen on the validation split."""
    return tfidf_logreg_scores(corpus, splits, config)[0]


def tfidf_logreg_scores(corpus: Corpus, splits: dict[str, np.ndarray],
                        config: Config) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """tfidf_logreg's metrics, and its probabilities of the positive label per split."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise StocksentError("the baselines need scikit-learn: pip install 'stocksent[baseline]'") from None
    texts = {name: [" ".join(corpus.tokens[i]) for i in index] for name, index in splits.items()}
    labels = {name: corpus.labels[index] for name, index in splits.items()}
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=False,
                                 token_pattern=r"\S+")
    try:
        features = {"train": vectorizer.fit_transform(texts["train"])}
    except ValueError:  # scikit-learn's way of saying no word or pair is in two training messages
        raise StocksentError("too little text for the TF-IDF baseline: no word appears in two "
                             "training messages") from None
    features.update({name: vectorizer.transform(texts[name]) for name in ("val", "test")})
    fits = {c: LogisticRegression(C=c, max_iter=2000).fit(features["train"], labels["train"]) for c in C_GRID}
    best = max(C_GRID, key=lambda c: fits[c].score(features["val"], labels["val"]))
    names = (config.data.negative_label, config.data.positive_label)
    prob = {name: fits[best].predict_proba(features[name])[:, 1] for name in ("val", "test")}
    return {"C": best, "features": len(vectorizer.vocabulary_),
            **{name: binary_metrics(labels[name], prob[name], names) for name in prob}}, prob
