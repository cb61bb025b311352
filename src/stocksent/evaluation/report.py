"""The report: saved models scored on their own splits beside the baselines, as report.md,
report.json and PNG plots (learning curves, confusion matrix, ROC curve, reliability diagram).

A model directory made by `train --seeds` (it holds seeds.json) is reported seed by seed with
the mean and standard deviation; plots are drawn for its first seed.
"""
from __future__ import annotations

import datetime
import io
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..classifier import SentimentClassifier
from ..data.corpus import CorpusCache
from ..data.dataset import data_for_model, find_data, split_files
from ..data.store import HISTORY, read_json, write_bytes, write_json
from ..errors import StocksentError
from ..scoring.index import Columns, estimator_for, file_chunks, market_index
from ..scoring.metrics import binary_metrics, reliability, roc_curve
from .baseline import BASELINES, corpus_parts, majority, score_baseline

SCORES = ("accuracy", "f1", "macro_f1", "roc_auc")
NAMES = {"lstm": "stocksent (this model)", "tfidf_logreg": "TF-IDF + logistic regression", "nbsvm": "NBSVM",
         "fasttext": "fastText", "majority": "majority class"}
SHORT = {"lstm": "stocksent", "tfidf_logreg": "TF-IDF", "nbsvm": "NBSVM", "fasttext": "fastText"}


@dataclass
class Scored:
    """One saved model scored on the split it was trained on, with the baselines fitted there."""

    model_dir: Path
    split: str  # "plain" or "grouped"
    seed: int
    # "lstm", each baseline's key, "majority" -> {"val", "test", and "ood" with an out-of-domain file}
    metrics: dict[str, dict[str, Any]]
    labels: np.ndarray  # test labels
    prob: dict[str, np.ndarray]  # test probabilities of the positive label: "lstm" and each baseline
    history: list[dict[str, float]]
    names: tuple[str, str]


def model_dirs(path: Path) -> list[Path]:
    """The model directory itself, or the seed-N directories of a `train --seeds` run."""
    path = Path(path)
    if (path / "seeds.json").exists():
        seeds = read_json(path / "seeds.json").get("seeds", [])
        return [path / f"seed-{seed}" for seed in seeds]
    return [path]


def score(model_dir: Path, data: str | None = None, corpora: CorpusCache | None = None,
          baselines: tuple[str, ...] = ("tfidf",), ood: str | None = None) -> Scored:
    """Score a saved model's validation and test splits, fit the baselines on its split, and
    score both on every message of an out-of-domain file `ood` too, if one is named."""
    clf, corpora = SentimentClassifier.load(model_dir), corpora or CorpusCache()
    config, dataset = clf.config, clf.metrics.get("dataset", {})
    corpus = corpora.load(data_for_model(data, dataset), config.data, config.preprocess, split_files(dataset))
    if dataset.get("sha256") and dataset["sha256"] != corpus.sha256:
        raise StocksentError(f"{corpus.source} is not the file {model_dir} was trained on (sha256 differs); "
                             "pass that file with --data")
    splits = corpus.split(config.data)
    parts, texts = corpus_parts(corpus, splits), {name: [corpus.texts[i] for i in splits[name]] for name in splits}
    if ood:
        other = corpora.load(find_data(ood), config.data, config.preprocess)
        parts["ood"], texts["ood"] = (other.tokens, other.labels), other.texts
    scored = [name for name in parts if name != "train"]
    prob = {"lstm": {name: clf.positive_proba(texts[name]) for name in scored}}
    metrics = {"lstm": {name: binary_metrics(parts[name][1], prob["lstm"][name], clf.labels) for name in scored}}
    for name in baselines:
        key = BASELINES[name][0]
        metrics[key], prob[key] = score_baseline(name, parts, clf.labels, config.data.seed)
    metrics["majority"] = majority({name: labels for name, (_, labels) in parts.items()}, clf.labels)
    history_path = Path(model_dir) / HISTORY
    return Scored(Path(model_dir), "grouped" if config.data.group_duplicates else "plain", config.data.seed,
                  metrics, parts["test"][1], {key: p["test"] for key, p in prob.items()},
                  read_json(history_path) if history_path.exists() else [], clf.labels)


def write_report(groups: list[list[Scored]], out: Path, extra: list[str] = ()) -> Path:
    """Write report.md, report.json and the plots into `out`; each file is replaced atomically.
    `extra`: more report.md lines at its end (such as index_section's)."""
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# stocksent report", "",
             f"{datetime.date.today().isoformat()}, stocksent {__version__}, {platform.machine()} "
             f"{platform.system()}, Python {platform.python_version()}.", "",
             "Each model is scored on the validation and test splits it was trained with; the "
             "baselines are fitted on the same training split and scored on the same messages.", ""]
    summary = []
    for k, runs in enumerate(groups):
        lines += _section(runs, out, prefix=f"{k + 1}-")
        summary.append({"model_dir": str(_folder(runs)),
                        "split": runs[0].split, "runs": [_summary(r) for r in runs],
                        **({"mean_std": _mean_std(runs)} if len(runs) > 1 else {})})
    write_json(out / "report.json", summary)
    write_bytes(out / "report.md", "\n".join([*lines, *extra]).encode())
    return out / "report.md"


def _folder(runs: list[Scored]) -> Path:
    """The directory the user named: the model itself, or the `--seeds` folder holding seed-N."""
    return runs[0].model_dir.parent if len(runs) > 1 else runs[0].model_dir


def _summary(r: Scored) -> dict[str, Any]:
    keep = lambda m: {k: m[k] for k in (*SCORES, "n")}  # noqa: E731
    return {"model_dir": str(r.model_dir), "seed": r.seed,
            **{model: {split: keep(m[split]) for split in _parts(r)} for model, m in r.metrics.items()},
            "reliability": reliability(r.labels, r.prob["lstm"])}


def _parts(r: Scored) -> list[str]:
    """The parts each model was scored on: val, test, and ood when an out-of-domain file was named."""
    return [part for part in ("val", "test", "ood") if part in r.metrics["lstm"]]


def _mean_std(runs: list[Scored]) -> dict[str, dict[str, dict[str, float]]]:
    """Per model, each score's mean and std over the runs: on test, and as ood_<score> out of domain."""
    result: dict[str, dict[str, dict[str, float]]] = {}
    for model in runs[0].prob:
        for part in [p for p in _parts(runs[0]) if p != "val"]:
            for key in SCORES:
                values = np.array([r.metrics[model][part][key] for r in runs])
                result.setdefault(model, {})[key if part == "test" else f"ood_{key}"] = {
                    "mean": float(values.mean()), "std": float(values.std(ddof=1))}
    return result


def _section(runs: list[Scored], out: Path, prefix: str) -> list[str]:
    first = runs[0]
    where = _folder(runs)
    seeds = ", ".join(str(r.seed) for r in runs)
    lines = [f"## {where} ({first.split} split, seed{'s' if len(runs) > 1 else ''} {seeds})", ""]
    if len(runs) > 1:
        lines += _seeds_table(runs)
        lines += [f"### {first.model_dir} (seed {first.seed})", ""]
    lines += ["| model | split | accuracy | F1 (positive) | macro F1 | ROC-AUC | n |",
              "|---|---|---|---|---|---|---|"]
    for model in first.metrics:
        for split in _parts(first):
            m = first.metrics[model][split]
            lines.append(f"| {NAMES[model]} | {split} | {m['accuracy']:.4f} | {m['f1']:.4f} | {m['macro_f1']:.4f} "
                         f"| {m['roc_auc']:.4f} | {m['n']} |")
    calibration = reliability(first.labels, first.prob["lstm"])
    lines += ["", f"Expected calibration error of this model on test (10 bins): {calibration['ece']:.4f}.", ""]
    for name, title, draw in PLOTS:
        file = f"{prefix}{name}.png"
        write_bytes(out / file, draw(first))
        lines += [f"![{title}]({file})", ""]
    return lines


def _seeds_table(runs: list[Scored]) -> list[str]:
    """Per seed, each model's test accuracy (and ROC-AUC out of domain), then mean ± std."""
    models, ood = list(runs[0].prob), "ood" in _parts(runs[0])
    columns = [(model, "test", "accuracy") for model in models] + \
              ([(model, "ood", "roc_auc") for model in models] if ood else [])
    heads = [f"{SHORT[m]} {'accuracy' if part == 'test' else 'ROC-AUC out of domain'}" for m, part, _ in columns]
    lines = ["Test accuracy per seed, each seed with its own split" + (", and ROC-AUC on the out-of-domain "
             "file" if ood else "") + ":", "", "| seed | " + " | ".join(heads) + " |",
             "|---|" + "---|" * len(columns)]
    for r in runs:
        lines.append(f"| {r.seed} | " + " | ".join(f"{r.metrics[m][part][key]:.4f}" for m, part, key in columns)
                     + " |")
    stats = _mean_std(runs)
    cell = lambda m, part, key: stats[m][key if part == "test" else f"ood_{key}"]  # noqa: E731
    lines.append("| mean ± std | " + " | ".join(f"{cell(*c)['mean']:.4f} ± {cell(*c)['std']:.4f}" for c in columns)
                 + " |")
    return lines + [""]


def _figure(width: float = 5.5, height: float = 4.0, **grid):
    """pyplot, and a figure with one axes (or, given nrows / ncols and the like, a grid of them)."""
    try:
        import matplotlib
    except ImportError:
        raise StocksentError("the report's plots need matplotlib: pip install 'stocksent[plot]'") from None
    matplotlib.use("Agg")  # headless: no display needed
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(width, height), dpi=100, **grid)


def _png(plt, fig, ax=None, legend: str = "") -> bytes:
    """The figure as PNG bytes; with `ax`, a legend at `legend` and a light grid first."""
    if ax is not None:
        ax.legend(fontsize=8, loc=legend)
        ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def plot_learning_curves(r: Scored) -> bytes:
    plt, fig, ax = _figure()
    if r.history:
        epochs = [row["epoch"] for row in r.history]
        for key, label, style in (("train_accuracy", "train accuracy", "--"),
                                  ("val_accuracy", "validation accuracy", "-")):
            ax.plot(epochs, [row[key] for row in r.history], style, marker="o", label=label)
        loss_ax = ax.twinx()
        for key, label, style in (("loss", "train loss", "--"), ("val_loss", "validation loss", "-")):
            loss_ax.plot(epochs, [row[key] for row in r.history], style, color="tab:red", alpha=0.6, label=label)
        loss_ax.set_ylabel("loss", color="tab:red")
        loss_ax.legend(fontsize=8, loc="center right")
    ax.set(xlabel="epoch", ylabel="accuracy", title="learning curves")
    return _png(plt, fig, ax, "lower right")


def plot_confusion(r: Scored) -> bytes:
    plt, fig, ax = _figure(4.5, 4.0)
    matrix = np.asarray(r.metrics["lstm"]["test"]["confusion"]["matrix"])
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, f"{count}\n{count / matrix[i].sum():.1%}", ha="center", va="center",
                color="white" if count > matrix.max() / 2 else "black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=r.names, yticklabels=r.names,
           xlabel="predicted", ylabel="true", title="confusion matrix (test)")
    return _png(plt, fig)


def plot_roc(r: Scored) -> bytes:
    plt, fig, ax = _figure(4.5, 4.5)
    for model in r.prob:
        fpr, tpr = roc_curve(r.labels, r.prob[model])
        ax.plot(fpr, tpr, label=f"{SHORT[model]} (AUC {r.metrics[model]['test']['roc_auc']:.4f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve (test)")
    return _png(plt, fig, ax, "lower right")


def plot_reliability(r: Scored) -> bytes:
    plt, fig, ax = _figure(4.5, 4.5)
    bins = reliability(r.labels, r.prob["lstm"])
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    ax.plot([b["mean_prob"] for b in bins["bins"]], [b["positive_rate"] for b in bins["bins"]], "o-",
            label=f"stocksent (ECE {bins['ece']:.4f})")
    ax.set(xlabel=f"predicted probability of {r.names[1]}", ylabel=f"observed {r.names[1]} rate",
           xlim=(0, 1), ylim=(0, 1), title="reliability diagram (test)")
    return _png(plt, fig, ax, "upper left")


PLOTS = (("learning-curves", "learning curves", plot_learning_curves),
         ("confusion", "confusion matrix", plot_confusion),
         ("roc", "ROC curve", plot_roc),
         ("reliability", "reliability diagram", plot_reliability))


MAX_PLOTTED_TICKERS = 8  # more lines than this is a tangle; the busiest are drawn
MIN_TAGGED = 30  # cells with fewer tags say little of how right the index is


def plot_index(rows: dict[str, list], path: Path) -> Path:
    """A panel per ticker (the busiest MAX_PLOTTED_TICKERS): its estimated bullish share over
    time with the interval as a band, and the authors' tagged share where the index has one."""
    counts: dict[str, int] = {}
    for ticker, n in zip(rows["ticker"], rows["messages"]):
        counts[ticker] = counts.get(ticker, 0) + n
    tickers = sorted(counts, key=lambda t: -counts[t])[:MAX_PLOTTED_TICKERS]
    high = (len(tickers) + 1) // 2
    plt, fig, axes = _figure(9.0, 2.2 * high + 0.6, nrows=high, ncols=2 if len(tickers) > 1 else 1, sharex=True,
                             sharey=True, squeeze=False)
    for ax, ticker in zip(axes.flat, tickers):
        mine = [i for i, t in enumerate(rows["ticker"]) if t == ticker]
        when = [datetime.datetime.fromisoformat(rows["period"][i].rstrip("Z")) for i in mine]
        ax.plot(when, [rows["bullish_share"][i] for i in mine], "-", marker=".", label="estimated")
        ax.fill_between(when, [rows["bullish_share_low"][i] for i in mine],
                        [rows["bullish_share_high"][i] for i in mine], alpha=0.25, label="interval")
        if "tagged_bullish_share" in rows:
            tagged = [(w, rows["tagged_bullish_share"][i]) for w, i in zip(when, mine)
                      if rows["tagged_bullish_share"][i] is not None]
            if tagged:
                ax.plot(*zip(*tagged), "x", color="tab:red", alpha=0.7, label="tagged share")
        ax.set(title=f"{ticker} ({counts[ticker]:,} messages)", ylim=(0, 1))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(tickers):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7, loc="lower left")
    fig.supylabel("bullish share")
    fig.autofmt_xdate()
    write_bytes(path, _png(plt, fig))
    return path


def index_section(model_dir: Path, path: Path, out: Path, freq: str = "month",
                  ticker_column: str | None = None) -> list[str]:
    """The market index of a tagged file with times (the model's default method): its picture
    in `out`, and how far each cell holding MIN_TAGGED tags or more is from their share."""
    clf = SentimentClassifier.load(model_dir)
    estimator = estimator_for(clf.predictor_, source=str(model_dir))
    columns = Columns(ticker=ticker_column, label=clf.config.data.label_column)
    rows = market_index(clf.predictor_, file_chunks([path], columns, clf.labels), freq, estimator)
    plot_index(rows, out / "index.png")
    tagged = rows.get("tagged", [0] * len(rows["ticker"]))
    cells = [i for i, n in enumerate(tagged) if n >= MIN_TAGGED]
    gaps = [abs(rows["bullish_share"][i] - rows["tagged_bullish_share"][i]) for i in cells]
    lines = ["## Market index", "", f"`stocksent index {model_dir} --input {path} --freq {freq}"
             + (f" --ticker-column {ticker_column}" if ticker_column else "") + f"`, method {estimator.method}: "
             f"{len(rows['ticker'])} rows, {len(set(rows['ticker']))} tickers.", ""]
    if cells:
        lines += [f"In the {len(cells)} cells holding {MIN_TAGGED} tagged messages or more, the estimate (read "
                  f"from every message's text) is {np.mean(gaps):.3f} from the share of bullish among the "
                  "tags on average.", ""]
    return lines + ["![market index](index.png)", ""]
