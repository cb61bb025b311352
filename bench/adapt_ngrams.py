"""Adapting a model's n-gram part to a new market's texts, their tags unread: the model as
trained guesses a label for each of the market's messages, and the part is fitted again on the
training split and the guesses it was surest of (p >= T or <= 1 - T; T = 0 keeps every guess),
the networks unchanged. Prints, per model and threshold, the guesses kept and how many were
right (the tags read for this count only), the market's ROC-AUC before and after, and the
training data's test accuracy after.

    python bench/adapt_ngrams.py runs/ng-plain/seed-1 --data ../shared/data/ood/stocktwits_trending_2020.csv \
        --thresholds 0.9 0.8 0
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from stocksent.classifier import SentimentClassifier
from stocksent.corpus import load_corpus
from stocksent.data import data_for_model, find_data
from stocksent.ngrams import fit_ngrams, flat_ids
from stocksent.scorer import make_scorer
from stocksent.train import scored


def adapt(folder: str, data: str, thresholds: list[float]) -> list[dict]:
    clf = SentimentClassifier.load(folder)
    if clf.ngrams_ is None:
        raise SystemExit(f"{folder}: this model has no n-gram part")
    config = clf.config
    corpus = load_corpus(data_for_model(None, clf.metrics.get("dataset", {})), config.data, config.preprocess)
    splits = corpus.split(config.data)
    market = load_corpus(find_data(data), config.data, config.preprocess)
    train = clf.encode([corpus.texts[i] for i in splits["train"]])
    test, other = clf.encode([corpus.texts[i] for i in splits["test"]]), clf.encode(market.texts)
    network = make_scorer(clf.model_)
    logits = {name: (network.logits(*flat_ids(encoded)), flat_ids(encoded)) for name, encoded in
              (("test", test), ("market", other))}

    def scores(part) -> dict:
        blended = {name: part.blend(z, *ids) for name, (z, ids) in logits.items()}
        return {"market_roc_auc": scored(blended["market"], market.labels, config.train.loss, clf.labels)["roc_auc"],
                "test_accuracy": scored(blended["test"], corpus.labels[splits["test"]], config.train.loss,
                                        clf.labels)["accuracy"]}

    rows = [{"threshold": None, "kept": 0, "right": None, **scores(clf.ngrams_)}]
    guess = 1 / (1 + np.exp(-clf.ngrams_.blend(logits["market"][0], *logits["market"][1])))
    for threshold in thresholds:
        sure = np.flatnonzero((guess >= threshold) | (guess <= 1 - threshold))
        labels = (guess[sure] >= 0.5).astype(np.int64)
        part = fit_ngrams(train + [other[i] for i in sure], np.concatenate([corpus.labels[splits["train"]], labels]),
                          config.model, config.train)
        rows.append({"threshold": threshold, "kept": len(sure),
                     "right": float((labels == market.labels[sure]).mean()) if len(sure) else None, **scores(part)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", required=True, help="the new market's tagged messages (tags only counted)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.9, 0.8, 0.0])
    args = parser.parse_args(argv)
    print("| model | threshold | guesses kept | right | market ROC-AUC | test accuracy |\n|---|---|---|---|---|---|")
    for folder in args.models:
        for row in adapt(folder, args.data, args.thresholds):
            right = "" if row["right"] is None else f"{row['right']:.3f}"
            threshold = "not adapted" if row["threshold"] is None else row["threshold"]
            print(f"| {folder} | {threshold} | {row['kept']} | {right} | {row['market_roc_auc']:.4f} | "
                  f"{row['test_accuracy']:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
