"""A market of its own, few tags: the $SPY model fine-tuned on them against a model trained from
scratch, the $SPY model as it is, and the baselines trained on the same tags.

The stream's tagged messages of A, AA and AACG: training on those up to the end of 2020 (the
latest N of them), validation on 2021's, test on 2022's, each also scored per ticker. Each seed's
$SPY model (`--source`, the `default` preset trained on the $SPY set with that seed) is the one
fine-tuned, and the seed is the runs' own.

    python bench/finetune.py --sizes 500 1000 2000 5000 6886 --seeds 1 2 3 \\
        --source 'runs/seeds-default/seed-{seed}' --out docs/finetune.json --plot docs/finetune.png

    python bench/finetune.py --cost 5000 --seeds 1     (time and memory of one run each way)

Results go to --out after every run (a rerun skips those already there); the table gives
macro-F1 and accuracy, mean ± std over the seeds.

Methods (settings on top of the `default` preset, or the preset named; "{source}" is the seed's
$SPY model; from scratch on the default preset, up to 50 epochs as on the finetune preset):
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench's own helpers
import runlog  # noqa: E402
from fewer_labels import epochs_for  # noqa: E402  (the same epochs for the same few tags)
from rss import run_measured  # noqa: E402
from stocksent import SentimentClassifier  # noqa: E402
from stocksent.data.corpus import tokenize_all  # noqa: E402
from stocksent.data.dataset import find_data  # noqa: E402
from stocksent.evaluation.baseline import score_baseline  # noqa: E402
from stocksent.scoring.metrics import binary_metrics  # noqa: E402
from stocksent.scoring.ngrams import NgramModel  # noqa: E402
from stocksent.scoring.predictor import Predictor  # noqa: E402

STREAM = "stream/stocktwits_stream_2018_2022.csv.gz"
TICKERS = ("A", "AA", "AACG")
SHOWN_ALONE = ("AA", "AACG")  # A has 84 test messages: too few to show alone
BALANCED_SUFFIX = "-balanced"  # of a baseline: its fit weighs both labels alike
FINETUNE = {"preset": "finetune", "init": "{source}"}  # what `train --preset finetune --init SOURCE` runs
ANEW = {**FINETUNE, "ngram_from_source": False}  # the n-gram part fitted on the new tags alone
METHODS = {
    "scratch": {},
    "scratch-balanced": {"balanced": True},
    "finetune": FINETUNE,
    "finetune-unbalanced": {**FINETUNE, "balanced": False},
    "finetune-decay": {**FINETUNE, "layer_decay": 0.4},
    "finetune-mix0.5": {**FINETUNE, "source_mix": 0.5},
    "finetune-ngrams-anew": ANEW,
    "finetune-unbalanced-anew": {**ANEW, "balanced": False},
    "finetune-decay-anew": {**ANEW, "layer_decay": 0.4},
    "finetune-head-anew": {**ANEW, "layer_decay": 0.05},  # the layers below the head barely move
    "finetune-unfreeze-anew": {**ANEW, "unfreeze": True},
    "finetune-mix0.25-anew": {**ANEW, "source_mix": 0.25},
    "finetune-mix0.5-anew": {**ANEW, "source_mix": 0.5},
    "finetune-mix2-anew": {**ANEW, "source_mix": 2.0},
    # The networks fine-tuned, beside the $SPY model's own n-gram part as it is:
    "finetune-source-ngrams-kept": {**FINETUNE, "ngrams": 0, "source_ngrams": True},
}
__doc__ += "".join(f"    {name}: {settings}\n" for name, settings in METHODS.items())
__doc__ += ("    source: the seed's $SPY model as it is\n    tfidf, nbsvm, fasttext: the baselines "
            "(tfidf-balanced, nbsvm-balanced: both labels weighed alike)\n")


def stream_splits(data: str | None) -> dict[str, pd.DataFrame]:
    """The three tickers' tagged messages by year: train (to 2020, oldest first), val (2021), test (2022)."""
    path = Path(data) if data else find_data(None).parent / STREAM
    frame = pd.read_csv(path)
    frame = frame[frame.sentiment.notna() & frame.ticker.isin(TICKERS)].sort_values("created_at", kind="stable")
    year = frame.created_at.str[:4].astype(int)
    return {"train": frame[year <= 2020], "val": frame[year == 2021], "test": frame[year == 2022]}


def scores(test: pd.DataFrame, proba: np.ndarray) -> dict[str, float]:
    """Macro-F1 and accuracy on the whole test split and on each ticker shown alone."""
    labels = (test.sentiment == "bullish").to_numpy().astype(np.int64)
    row = {}
    for name, mask in [("all", np.ones(len(test), bool)), *((t, (test.ticker == t).to_numpy()) for t in SHOWN_ALONE)]:
        m = binary_metrics(labels[mask], proba[mask], ("bearish", "bullish"))
        suffix = "" if name == "all" else f"_{name}"
        row[f"macro_f1{suffix}"], row[f"accuracy{suffix}"] = m["macro_f1"], m["accuracy"]
        row[f"roc_auc{suffix}"] = m["roc_auc"]
    return row


def lstm_run(method: str, seed: int, splits: dict[str, pd.DataFrame], source: str) -> dict:
    train, val, test = splits["train"], splits["val"], splits["test"]
    started = time.perf_counter()
    if method == "source":
        clf = SentimentClassifier.load(source)
    else:
        settings = {k: (v.format(source=source) if isinstance(v, str) else v) for k, v in METHODS[method].items()}
        preset, source_ngrams = settings.pop("preset", "default"), settings.pop("source_ngrams", False)
        # The default preset trains for 4 epochs at most: from scratch on a few tags, it gets more.
        epochs = epochs_for(len(train)) if preset == "default" else {}
        clf = SentimentClassifier(preset, seed=seed, **epochs, **settings).fit(
            train.message.tolist(), train.sentiment.tolist(),
            validation=(val.message.tolist(), val.sentiment.tolist()))
        if source_ngrams:  # its n-grams' word ids are the grown vocabulary's too
            clf.predictor_ = clf.predictor_.with_part(Predictor.load(source).part(NgramModel))
    seconds = time.perf_counter() - started
    return {**scores(test, clf.positive_proba(test.message.tolist())), "seconds": round(seconds, 1),
            "epochs": len(getattr(clf, "history_", []))}


def baseline_run(name: str, seed: int, splits: dict[str, pd.DataFrame]) -> dict:
    prep = SentimentClassifier().build_config().preprocess
    parts = {}
    for part, frame in splits.items():
        tokens = tokenize_all(frame.message.tolist(), prep)[0]  # a message empty after normalisation: []
        parts[part] = (tokens, (frame.sentiment == "bullish").to_numpy().astype(np.int64))
    started = time.perf_counter()
    _, proba = score_baseline(name.removesuffix(BALANCED_SUFFIX), parts, ("bearish", "bullish"), seed,
                              name.endswith(BALANCED_SUFFIX))
    return {**scores(splits["test"], proba["test"]), "seconds": round(time.perf_counter() - started, 1)}


def cost(size: int, splits: dict[str, pd.DataFrame], source: str, seed: int = 1) -> str:
    """Wall time and peak memory of `stocksent train` on the latest `size` tags as files of their own:
    fine-tuning the $SPY model against training from scratch, each a fresh process."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        files = {name: Path(folder) / f"{name}.csv" for name in ("train", "val", "test")}
        for name, path in files.items():
            (splits[name].tail(size) if name == "train" else splits[name]).to_csv(path, index=False)
        common = ["--data", str(files["train"]), "--val-data", str(files["val"]), "--test-data", str(files["test"]),
                  "--seed", str(seed), "--json"]
        commands = {"stocksent train --preset finetune --init SOURCE": ["--preset", "finetune", "--init", source],
                    "stocksent train (default preset, from scratch)": []}
        for label, args in commands.items():
            out = Path(folder) / f"model-{len(rows)}"
            measured = run_measured(["train", *common, *args, "--out", str(out)])
            metrics = json.loads((out / "metrics.json").read_text())
            rows.append(f"| {label} | {measured['seconds']:.1f} | {metrics['train_seconds']:.1f} | "
                        f"{metrics['epochs_run']} (best {metrics['best_epoch']}) | {measured['peak_rss_mb']:.0f} | "
                        f"{metrics['test']['macro_f1']:.4f} |")
    return "\n".join([f"{size:,} training tags, seed {seed}; validation {len(splits['val']):,}, "
                      f"test {len(splits['test']):,} messages",
                      "| command | wall s | epochs' s | epochs | peak RSS MB | test macro-F1 |",
                      "|---|---|---|---|---|---|", *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 5000, 6886])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", default=["source", "finetune", "scratch", "scratch-balanced",
                                                          "finetune-unbalanced", "tfidf", "nbsvm", "fasttext",
                                                          "tfidf-balanced", "nbsvm-balanced"])
    parser.add_argument("--source", default="runs/seeds-default/seed-{seed}")
    parser.add_argument("--data", help="the stream file (default: found beside the $SPY data)")
    parser.add_argument("--out", default="docs/finetune.json")
    parser.add_argument("--plot", help="write macro-F1 against tags to this PNG (from --out's results)")
    parser.add_argument("--cost", type=int, metavar="TAGS", help="instead: time and peak memory of one fine-tuning "
                                                                 "run and one from scratch on this many tags")
    args = parser.parse_args(argv)
    everything = stream_splits(args.data)
    if args.cost:
        print(cost(args.cost, everything, args.source.format(seed=args.seeds[0]), args.seeds[0]))
        return 0
    out = Path(args.out)
    results = runlog.load(out)
    for seed in args.seeds:
        for size in args.sizes:
            splits = {**everything, "train": everything["train"].tail(size)}  # the latest tags before 2021
            for method in args.methods:
                key = f"{method}|{size}|{seed}"
                if key in results or (method == "source" and f"source|0|{seed}" in results):
                    continue
                if method == "source":
                    key = f"source|0|{seed}"  # trained on no tag of the market: one result per seed
                    row = lstm_run(method, seed, splits, args.source.format(seed=seed))
                elif method in METHODS:
                    row = lstm_run(method, seed, splits, args.source.format(seed=seed))
                else:
                    row = baseline_run(method, seed, splits)
                runlog.record(results, out, key, row)
    print(table(results))
    if args.plot:
        plot(results, Path(args.plot))
    return 0


LABELS = {"finetune": "the $SPY model fine-tuned (finetune preset)", "source": "the $SPY model as it is",
          "scratch": "LSTM from scratch (default preset)",
          "scratch-balanced": "LSTM from scratch, labels weighed alike",
          "finetune-unbalanced": "fine-tuned, labels weighed as they come",
          "finetune-ngrams-anew": "fine-tuned, its n-gram part fitted anew", "tfidf": "TF-IDF + LR",
          "tfidf-balanced": "TF-IDF + LR, labels weighed alike", "nbsvm": "NBSVM",
          "nbsvm-balanced": "NBSVM, labels weighed alike", "fasttext": "fastText"}
PLOTTED = ("finetune", "source", "scratch-balanced", "scratch", "tfidf-balanced", "nbsvm-balanced", "fasttext")


def table(results: dict, metrics: tuple[str, ...] = ("macro_f1", "accuracy", "macro_f1_AA",
                                                      "macro_f1_AACG")) -> str:
    lines = []
    for metric in metrics:
        curves = runlog.curves(results, metric)
        sizes = sorted({size for curve in curves.values() for size in curve if size})
        lines += [f"\n{metric} (test, 2022; mean ± std over seeds, runs)",
                  "| model | " + " | ".join(f"{s:,} tags" for s in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
        for name, curve in sorted(curves.items(), key=lambda item: list(LABELS).index(item[0])
                                  if item[0] in LABELS else len(LABELS)):
            cells = [runlog.cell(curve.get(s) or curve.get(0)) for s in sizes]
            lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    curves = runlog.curves(results, "macro_f1")
    sizes = sorted({size for curve in curves.values() for size in curve if size})
    for name in PLOTTED:
        curve = curves.get(name)
        if curve is None:
            continue
        xs = sizes if 0 in curve else sorted(curve)
        values = [curve.get(0) or curve[s] for s in xs]
        ax.errorbar(xs, [np.mean(v) for v in values], yerr=[np.std(v) for v in values], marker="o", capsize=3,
                    label=LABELS[name], linestyle=":" if name == "source" else "-" if name in METHODS else "--")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("tagged training messages of A, AA and AACG (to 2020, the latest)")
    ax.set_ylabel("macro-F1 on 2022's messages (mean over seeds 1-3)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
