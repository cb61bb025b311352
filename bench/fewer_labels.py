"""Test accuracy against the number of tagged training messages: each seed's split of the
$SPY data, the first N messages of its (shuffled) training split keep their tags and the rest
are used as untagged text only; every model is tuned on the same full validation split and
scored on the same full test split.

    python bench/fewer_labels.py --sizes 1000 3000 10000 30000 77572 --seeds 1 2 3 \
        --recipes scratch pretrained --baselines tfidf nbsvm fasttext \
        --pretrained 'runs/pre-plain-{seed}/pretrained' --out docs/fewer_labels.json

`--pretrained` names, per seed, a language model pretrained (stocksent train --unlabelled, or
stocksent pretrain) on that seed's training-split texts and the shared untagged posts: the
tags are never read by it. Results go to --out after every run (a rerun skips the runs already
there), and --plot draws the curves (mean and spread over the seeds).

`--word2vec` names, per seed, the same text's word2vec embedding (stocksent pretrain --objective
word2vec).

Recipes (hyperparameters on top of the `default` preset, or the preset named; "{init}",
"{word2vec}" and "{stream}" are the seed's pretrained models):
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench's own helpers
import runlog  # noqa: E402
from stocksent import SentimentClassifier  # noqa: E402
from stocksent.config import DataConfig  # noqa: E402
from stocksent.data.corpus import load_corpus  # noqa: E402
from stocksent.data.dataset import find_data  # noqa: E402
from stocksent.evaluation.baseline import score_baseline  # noqa: E402

# The networks alone (no n-gram part), as these recipes were first run; "+ngrams" blends it in.
PRETRAINED = {"init": "{init}", "ngrams": 0}
WORD2VEC = {"init": "{word2vec}", "ngrams": 0}
WARMUP = {"warmup": 0.1, "schedule": "linear"}
RECIPES = {
    "scratch": {"pretraining": "none", "ngrams": 0},
    "pretrained": PRETRAINED,
    "pretrained-decay": {**PRETRAINED, "layer_decay": 0.4},
    "pretrained-unfreeze": {**PRETRAINED, "unfreeze": True},
    "pretrained-warmup": {**PRETRAINED, **WARMUP},
    "pretrained-all": {**PRETRAINED, "layer_decay": 0.4, "unfreeze": True, **WARMUP},
    "word2vec": WORD2VEC,
    "word2vec-warmup": {**WORD2VEC, **WARMUP},
    "word2vec-decay": {**WORD2VEC, "layer_decay": 0.4},
    "word2vec-warmup+ngrams": {**WORD2VEC, **WARMUP, "ngrams": 3},
    # Fine-tuned from a model trained on another market's tags (the stream's four tickers):
    "from-stream": {"preset": "finetune", "init": "{stream}"},
}
__doc__ += "".join(f"    {name}: {settings}\n" for name, settings in RECIPES.items())
NAMES = np.array(["bearish", "bullish"])  # the data's labels, 0 and 1
SELF_TRAINING = "+self"  # a recipe name ending so: then retrained with confident guesses on the untagged text


def epochs_for(tagged: int) -> dict[str, int]:
    """Few tags make short epochs: allow more of them (early stopping still decides)."""
    if tagged >= 50_000:
        return {}
    # At the rate the default preset held constant when these runs were made (docs/fewer_labels.md, finetune.md).
    return {"epochs": min(50, max(8, math.ceil(8 * 60_000 / tagged))), "patience": 3, "schedule": "constant",
            "stop_margin": 0.0}


def split_for(seed: int, data: str | None):
    clf = SentimentClassifier(seed=seed)
    config = clf.build_config()
    corpus = load_corpus(find_data(data), config.data, config.preprocess)
    splits = corpus.split(DataConfig(seed=seed))
    order = np.random.default_rng(seed).permutation(splits["train"])  # which tags a user would have
    return corpus, order, splits


def lstm_run(recipe: str, seed: int, tagged: np.ndarray, untagged: np.ndarray, corpus, splits,
             init: dict[str, str], threshold: float) -> dict:
    base = recipe.removesuffix(SELF_TRAINING)
    settings = {k: (v.format(**init) if isinstance(v, str) else v) for k, v in RECIPES[base].items()}
    settings.update(seed=seed, **epochs_for(len(tagged)))
    preset = settings.pop("preset", "default")
    texts = [corpus.texts[i] for i in tagged]
    labels = NAMES[corpus.labels[tagged]]  # by name: a model started from a trained one reads its labels
    validation = ([corpus.texts[i] for i in splits["val"]], NAMES[corpus.labels[splits["val"]]])
    started = time.perf_counter()
    clf = SentimentClassifier(preset, **settings).fit(texts, labels, validation=validation)
    extra = {}
    if recipe.endswith(SELF_TRAINING) and len(untagged):
        pool = [corpus.texts[i] for i in untagged]
        proba = clf.positive_proba(pool)
        sure = np.flatnonzero((proba >= threshold) | (proba <= 1 - threshold))
        guesses = (proba[sure] >= 0.5).astype(np.int64)
        extra = {"pseudo_labelled": int(len(sure)),
                 "pseudo_accuracy": float((guesses == corpus.labels[untagged[sure]]).mean()) if len(sure) else None}
        clf = SentimentClassifier(preset, **{**settings, **epochs_for(len(tagged) + len(sure))}).fit(
            texts + [pool[i] for i in sure], np.concatenate([labels, NAMES[guesses]]), validation=validation)
    seconds = time.perf_counter() - started
    test = clf.evaluate([corpus.texts[i] for i in splits["test"]], NAMES[corpus.labels[splits["test"]]])
    return {"accuracy": test["accuracy"], "roc_auc": test["roc_auc"], "seconds": round(seconds, 1),
            "epochs": len(clf.history_), **extra}


def baseline_run(name: str, seed: int, tagged: np.ndarray, corpus, splits) -> dict:
    parts = {"train": ([corpus.tokens[i] for i in tagged], corpus.labels[tagged]),
             "val": ([corpus.tokens[i] for i in splits["val"]], corpus.labels[splits["val"]]),
             "test": ([corpus.tokens[i] for i in splits["test"]], corpus.labels[splits["test"]])}
    started = time.perf_counter()
    metrics, _ = score_baseline(name, parts, ("0", "1"), seed)
    return {"accuracy": metrics["test"]["accuracy"], "roc_auc": metrics["test"]["roc_auc"],
            "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000, 30000, 77572])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--recipes", nargs="*", default=["scratch", "pretrained"],
                        help=f"of {', '.join(RECIPES)}; append {SELF_TRAINING} for self-training")
    parser.add_argument("--baselines", nargs="*", default=["tfidf", "nbsvm", "fasttext"])
    parser.add_argument("--pretrained", default="runs/pre-plain-{seed}/pretrained")
    parser.add_argument("--word2vec", default="runs/w2v-{seed}")
    parser.add_argument("--stream", default="runs/stream-{seed}",
                        help="per seed, the default preset trained on the stream's tagged messages (all four "
                             "tickers, 2018-2022; no $SPY message)")
    parser.add_argument("--threshold", type=float, default=0.9, help="self-training: confidence to keep a guess")
    parser.add_argument("--data")
    parser.add_argument("--out", default="docs/fewer_labels.json")
    parser.add_argument("--plot", help="write the curves to this PNG (from --out's results)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    results = runlog.load(out)
    for seed in args.seeds:
        corpus, order, splits = split_for(seed, args.data)
        for size in args.sizes:
            tagged, untagged = np.sort(order[:size]), np.sort(order[size:])
            for name in [*args.recipes, *args.baselines]:
                key = f"{name}|{size}|{seed}"
                if key in results:
                    continue
                if name.removesuffix(SELF_TRAINING) in RECIPES:
                    row = lstm_run(name, seed, tagged, untagged, corpus, splits,
                                   {"init": args.pretrained.format(seed=seed),
                                    "word2vec": args.word2vec.format(seed=seed),
                                    "stream": args.stream.format(seed=seed)}, args.threshold)
                else:
                    row = baseline_run(name, seed, tagged, corpus, splits)
                runlog.record(results, out, key, row)
    print(table(results))
    if args.plot:
        plot(results, Path(args.plot))
    return 0


# How the table and the plot name what they show.
LABELS = {"scratch": "LSTM, no pretraining", "pretrained": "LSTM from the next-word model",
          "word2vec-warmup": "LSTM from word2vec (+ warm-up)",
          "word2vec-warmup+ngrams": "LSTM from word2vec (+ warm-up) + n-gram part",
          "word2vec-warmup+ngrams+self": "LSTM + n-gram part, self-trained",
          "from-stream": "LSTM fine-tuned from the stream's model", "tfidf": "TF-IDF + LR",
          "nbsvm": "NBSVM", "fasttext": "fastText"}


def table(results: dict) -> str:
    curves = runlog.curves(results, "accuracy")
    sizes = sorted({size for curve in curves.values() for size in curve})
    lines = ["| model | " + " | ".join(f"{s:,} tags" for s in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
    for name, curve in curves.items():
        cells = [runlog.cell(curve.get(s)) for s in sizes]
        lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in runlog.curves(results, "accuracy").items():
        sizes = sorted(curve)
        mean = np.array([np.mean(curve[s]) for s in sizes])
        spread = np.array([np.std(curve[s]) for s in sizes])
        ax.errorbar(sizes, mean, yerr=spread, marker="o", capsize=3, label=LABELS.get(name, name),
                    linestyle="-" if name in RECIPES or name.removesuffix(SELF_TRAINING) in RECIPES else "--")
    ax.set_xscale("log")
    ax.set_xlabel("tagged training messages (the rest of the training split untagged)")
    ax.set_ylabel("test accuracy (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
