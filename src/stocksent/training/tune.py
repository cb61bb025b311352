"""Hyperparameter search with Optuna: bounded by trials and time, bad trials pruned by their
validation accuracy epoch by epoch, every trial in trials.csv, and the best config written as
a file that `stocksent train --config` accepts.

Trials are scored on the validation split only; the test split stays unseen until the chosen
config is trained and tested for real.
"""
from __future__ import annotations

import csv
import io
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config, setting
from ..data.corpus import Corpus
from ..data.store import write_bytes, write_json
from ..errors import StocksentError
from .runs import Messages, corpus_messages, train_run
from .train import Progress

BEST_CONFIG, TRIALS = "best_config.json", "trials.csv"


@dataclass
class TuneConfig:
    """How much searching to do."""

    trials: int = setting(20, "number of trials (default 20)")
    timeout: float = setting(3600.0, "seconds of searching: after it no trial starts and a running one stops at "
                                     "its next epoch (default 3600)")
    epochs: int = setting(0, "epochs per trial (default: the config's)")
    seed: int = setting(42, "seed of the sampler (the split keeps the config's seed)", "--sampler-seed")

    def __post_init__(self) -> None:
        if not 1 <= self.trials <= 10_000:
            raise StocksentError("--trials must be between 1 and 10000")
        if not self.timeout > 0:
            raise StocksentError("--timeout must be positive")
        if self.epochs < 0:
            raise StocksentError("--epochs must be 0 or more")


def suggest(trial: Any, base: Config) -> Config:
    """The search space, applied to the base config."""
    layers = trial.suggest_int("layers", 1, 2)
    size = trial.suggest_categorical("lstm_size", [64, 96, 128, 256])
    bidirectional = trial.suggest_categorical("bidirectional", [False, True])
    config = base.override("model", embedding_dim=trial.suggest_categorical("embedding_dim", [64, 96, 128, 256]),
                           lstm_sizes=[size] * layers, bidirectional=bidirectional,
                           initial_state="zero" if bidirectional else base.model.initial_state,
                           dropout=trial.suggest_float("dropout", 0.0, 0.6),
                           embedding_dropout=trial.suggest_float("embedding_dropout", 0.0, 0.6),
                           pooling=trial.suggest_categorical("pooling", ["last", "max", "mean"]),
                           members=trial.suggest_int("members", 1, 2))
    config = config.override("train", lr=trial.suggest_float("lr", 3e-4, 1e-2, log=True),
                             batch_size=trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
                             pretraining=trial.suggest_categorical("pretraining", ["none", "word2vec"]))
    if base.model.ngrams:  # the part is fitted after the networks: only its share of the blend is searched
        config = config.override("model", ngram_share=trial.suggest_float("ngram_share", 0.3, 0.7))
    return config.override("preprocess", keep_emoji=trial.suggest_categorical("emoji", [False, True]),
                           min_freq=trial.suggest_categorical("min_freq", [1, 2, 3, 5]))


def pruning_callback(trial: Any, pruned: type[Exception], deadline: float) -> Callable[[Progress], None]:
    """Report each epoch's validation accuracy; stop the trial when the pruner says so, or when
    the time budget (a time.monotonic() deadline) has run out, so the search ends within an
    epoch of its budget."""
    def on_epoch(progress: Progress) -> None:
        trial.report(progress.history[-1]["val_accuracy"], progress.epoch)
        if trial.should_prune():
            raise pruned(f"pruned after epoch {progress.epoch}")
        if time.monotonic() > deadline:
            trial.set_user_attr("stopped_by", "time budget")
            raise pruned(f"out of time after epoch {progress.epoch}")
    return on_epoch


def tune(base: Config, corpora: Callable[[Config], Corpus], settings: TuneConfig, out: Path,
         log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the search; write trials.csv and best_config.json into `out` after every trial."""
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if settings.epochs:
        base = base.override("train", epochs=settings.epochs)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=settings.seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1))
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + settings.timeout

    def objective(trial: Any) -> float:
        config = suggest(trial, base)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=out) as folder:  # pretrained word vectors of the trial's own size too
            trained = train_run(config, _validation(corpora), Path(folder), log=lambda line: None,
                                on_epoch=pruning_callback(trial, optuna.TrialPruned, deadline)).trained
        trial.set_user_attr("best_epoch", trained.progress.best_epoch)
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 1))
        # The model as it will score: with its n-gram part, if the config has one (epochs are
        # pruned on the networks' own validation accuracy, the part is fitted after them).
        return trained.val["accuracy"]

    def after(study: Any, trial: Any) -> None:
        value = "-" if trial.value is None else f"{trial.value:.4f}"
        log(f"trial {trial.number + 1:>3}/{settings.trials} {_state(trial):<8} val_acc {value}  "
            + format_params(trial.params))
        _write_results(study, base, out)

    study.optimize(objective, n_trials=settings.trials, timeout=settings.timeout, callbacks=[after],
                   catch=(StocksentError,))
    if not any(t.state.name == "COMPLETE" for t in study.trials):
        raise StocksentError("no trial completed; give --timeout or --trials more room")
    return {"best_value": study.best_value, "best_params": study.best_params, "trials": len(study.trials)}


def _state(trial: Any) -> str:
    """complete, pruned (worse than the median), stopped (out of time) or failed."""
    return "stopped" if trial.user_attrs.get("stopped_by") else trial.state.name.lower()


def format_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _validation(corpora: Callable[[Config], Corpus]) -> Callable[[Config], Messages]:
    """A trial's messages: the training and validation splits alone (test stays unseen)."""
    return lambda config: corpus_messages(corpora(config), config, ("train", "val"))


def _write_results(study: Any, base: Config, out: Path) -> None:
    names = sorted({k for t in study.trials for k in t.params})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["trial", "state", "val_accuracy", "best_epoch", "seconds", *names])
    for t in study.trials:
        writer.writerow([t.number + 1, _state(t), "" if t.value is None else f"{t.value:.4f}",
                         t.user_attrs.get("best_epoch", ""), t.user_attrs.get("seconds", ""),
                         *(t.params.get(k, "") for k in names)])
    write_bytes(out / TRIALS, buffer.getvalue().encode())
    if any(t.state.name == "COMPLETE" for t in study.trials):
        best = suggest(study.best_trial, base)  # a finished trial replays its own values
        write_json(out / BEST_CONFIG, {**best.override("model", vocab_size=0).to_dict(), "preset": "tuned"})


def _optuna():
    try:
        import optuna
    except ImportError:
        raise StocksentError("tuning needs Optuna: pip install 'stocksent[tune]'") from None
    return optuna
