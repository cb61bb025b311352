"""Whether word vectors learnt from untagged text put bullish words beside bullish ones: for each
frequent word whose training messages lean one way, its nearest frequent words by cosine, and how
many of them lean the same way, the other way or neither. A word leans when the log of its
bullish-to-bearish message ratio, over the training split's, is at least LEAN from 0 (the tags of
the whole training split are read for this measurement only).

    python bench/neighbours.py runs/w2v-1 --seed 1 [--data FILE] [--min-messages 50] [--words calls buy rally]

Prints the counts and, for each of --words, its nearest words with their log ratios.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter

import numpy as np

from stocksent import SentimentClassifier
from stocksent.data.corpus import load_corpus
from stocksent.data.dataset import find_data
from stocksent.training.pretrain import load_pretrained

LEAN = 0.7  # |log ratio| at which a word counts as bullish or bearish
NEAREST = 10


def lean_of(tokens: list[list[str]], labels: np.ndarray, frequent: int) -> dict[str, float]:
    """Each word in `frequent` or more messages: the log of its bullish-to-bearish message ratio,
    over the split's."""
    bullish, bearish = Counter(), Counter()
    for words, label in zip(tokens, labels):
        (bullish if label else bearish).update(set(words))
    share = float(np.mean(labels))
    return {w: float(np.log((bullish[w] + 1) / (bearish[w] + 1) * (1 - share) / share))
            for w in bullish.keys() | bearish.keys() if bullish[w] + bearish[w] >= frequent}


def nearest_leanings(vectors: np.ndarray, ratio: np.ndarray, words: list[str],
                     show: set[str]) -> tuple[Counter, dict[str, str]]:
    """How many of each leaning word's NEAREST words (unit vectors, by cosine) lean its way, the
    other way or neither; and the nearest words of those in `show`."""
    counts, shown = Counter(), {}
    for i in np.flatnonzero(np.abs(ratio) >= LEAN):
        order = np.argsort(-(vectors @ vectors[i]))
        near = order[order != i][:NEAREST]
        leaning = np.abs(ratio[near]) >= LEAN
        counts["same"] += int((leaning & (np.sign(ratio[near]) == np.sign(ratio[i]))).sum())
        counts["other"] += int((leaning & (np.sign(ratio[near]) != np.sign(ratio[i]))).sum())
        counts["neither"] += int((~leaning).sum())
        if words[i] in show:
            shown[words[i]] = ", ".join(f"{words[j]} {ratio[j]:+.1f}" for j in near[:6])
    return counts, shown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pretrained", help="a pretrained directory (stocksent pretrain)")
    parser.add_argument("--seed", type=int, default=1, help="whose plain split's training messages to read")
    parser.add_argument("--data")
    parser.add_argument("--min-messages", type=int, default=50, help="training messages a word must be in")
    parser.add_argument("--words", nargs="*", default=["calls", "puts", "buy", "sell", "rally", "dump", "moon"])
    args = parser.parse_args(argv)
    pretrained = load_pretrained(args.pretrained)
    config = SentimentClassifier(seed=args.seed).build_config()
    corpus = load_corpus(find_data(args.data), config.data, pretrained.preprocess)
    train = corpus.split(config.data)["train"]
    lean = lean_of([corpus.tokens[i] for i in train], corpus.labels[train], args.min_messages)
    words = [w for w in pretrained.vocab.itos if w in lean]
    vectors = pretrained.body["embedding.weight"].numpy()[[pretrained.vocab.stoi[w] for w in words]]
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-8)
    ratio = np.array([lean[w] for w in words])
    counts, shown = nearest_leanings(vectors, ratio, words, set(args.words))
    polar = int((np.abs(ratio) >= LEAN).sum())
    print(f"{len(words)} words in at least {args.min_messages} training messages, "
          f"{polar} leaning (|log ratio| >= {LEAN});")
    print(f"of their {NEAREST} nearest such words: {counts['same']} lean the same way, "
          f"{counts['other']} the other way, {counts['neither']} neither")
    for word in args.words:
        if word in shown:
            print(f"  {word} {lean[word]:+.1f}: {shown[word]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
