import json

import numpy as np
import pytest
from safetensors.torch import load_file

from conftest import TINY
from stocksent.cli import main
from stocksent.config import DataConfig, PreprocessConfig, preset
from stocksent.corpus import load_corpus
from stocksent.train import Run, fit


def test_epoch_lines_history_and_metrics(trained_model, capsys):
    history = json.loads((trained_model / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert set(history[0]) == {"epoch", "loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"}
    metrics = json.loads((trained_model / "metrics.json").read_text())
    n = metrics["dataset"]["test_size"]
    assert metrics["test"]["n"] == n and n == metrics["dataset"]["messages"] - metrics["dataset"]["train_size"] - metrics["dataset"]["val_size"]


def test_vocabulary_comes_from_the_training_split_only(data_slice):
    cfg = preset("default")
    corpus = load_corpus(data_slice, cfg.data, cfg.preprocess)
    run = Run.prepare(cfg, corpus)
    train_words = {t for i in run.splits["train"] for t in corpus.tokens[i]}
    test_only = {t for i in run.splits["test"] for t in corpus.tokens[i]} - train_words
    assert test_only and not test_only & set(run.vocab.itos)


def _train(out, *extra):
    return main(["train", "--data", str(out.parent.parent / "slice.csv.gz"), "--out", str(out), *TINY, *extra])


@pytest.fixture
def slice_dir(tmp_path, data_slice):
    # A folder that holds the data slice, so runs can be placed beside it.
    (tmp_path / "slice.csv.gz").write_bytes(data_slice.read_bytes())
    (tmp_path / "runs").mkdir()
    return tmp_path / "runs"


def test_same_seed_same_result(slice_dir):
    assert _train(slice_dir / "a") == 0 and _train(slice_dir / "b") == 0
    a, b = (json.loads((slice_dir / n / "metrics.json").read_text()) for n in "ab")
    assert a["test"] == b["test"]
    assert _train(slice_dir / "c", "--seed", "7") == 0
    c = json.loads((slice_dir / "c" / "metrics.json").read_text())
    assert c["test"]["accuracy"] != a["test"]["accuracy"] or c["test"]["roc_auc"] != a["test"]["roc_auc"]


@pytest.mark.parametrize("extra", [[], ["--average-decay", "0.99"]], ids=["plain", "weight-average"])
def test_resume_continues_to_the_same_weights(slice_dir, extra):
    assert _train(slice_dir / "full", "--epochs", "3", *extra) == 0
    assert _train(slice_dir / "part", "--epochs", "1", *extra) == 0  # as if stopped after epoch 1
    assert main(["train", "--data", str(slice_dir.parent / "slice.csv.gz"), "--out", str(slice_dir / "part"),
                 "--resume", "--epochs", "3"]) == 0
    for change in (["--group-duplicates"], ["--lstm-sizes", "8"]):  # the run's shape is fixed
        assert main(["train", "--data", str(slice_dir.parent / "slice.csv.gz"),
                     "--out", str(slice_dir / "part"), "--resume", *change]) == 1
    for name in ("checkpoint/weights.safetensors", "model.safetensors"):
        full, part = (load_file(slice_dir / run / name) for run in ("full", "part"))
        assert all(np.array_equal(full[k].numpy(), part[k].numpy()) for k in full)
    history = [json.loads((slice_dir / n / "history.json").read_text()) for n in ("full", "part")]
    for rows in history:
        for row in rows:
            row.pop("seconds")  # wall-clock time is the one thing allowed to differ
    assert history[0] == history[1]


def test_early_stopping_keeps_the_best_epoch(data_slice, tmp_path):
    cfg = preset("default").override("train", epochs=30, patience=1, lr=0.02, batch_size=32)
    cfg = cfg.override("model", embedding_dim=16, lstm_sizes=[16])
    corpus = load_corpus(data_slice, cfg.data, cfg.preprocess)
    progress = fit(Run.prepare(cfg, corpus), tmp_path / "m", log=lambda line: None)
    assert progress["epoch"] < 30  # overfits a 2,400-message slice quickly
    assert progress["epoch"] == progress["best_epoch"] + 1
    saved = json.loads((tmp_path / "m" / "metrics.json").read_text())
    history = json.loads((tmp_path / "m" / "history.json").read_text())
    assert len(history) == progress["epoch"]
    # The saved weights are the best epoch's: their validation loss is the lowest in the history.
    assert saved["val"]["loss"] == pytest.approx(min(row["val_loss"] for row in history))


def test_tutorial_preset_is_the_article_recipe():
    cfg = preset("tutorial")
    assert (cfg.model.embedding_dim, cfg.model.lstm_sizes, cfg.model.dropout) == (300, [128, 64], 0.5)
    assert (cfg.train.loss, cfg.train.optimizer, cfg.train.lr, cfg.train.rho, cfg.train.eps) == (
        "mse", "adadelta", 0.1, 0.95, 1e-8)
    assert (cfg.train.batch_size, cfg.train.epochs, cfg.train.patience) == (256, 50, 0)
    assert (cfg.model.forget_bias, cfg.model.embedding_init, cfg.preprocess.keep_emoji) == (1.0, "uniform", False)
    # TensorFlow's way of building and updating that network.
    assert (cfg.model.weight_init, cfg.model.initial_state, cfg.train.sparse_embedding) == ("glorot", "learned", True)


def test_weight_average_is_what_is_validated_and_saved(data_slice, tmp_path):
    from stocksent.store import load_model

    cfg = preset("default").override("train", epochs=1, average_decay=0.9, threads=1)
    cfg = cfg.override("model", embedding_dim=16, lstm_sizes=[16])
    corpus = load_corpus(data_slice, cfg.data, cfg.preprocess)
    fit(Run.prepare(cfg, corpus), tmp_path / "m", log=lambda line: None)
    saved = load_model(tmp_path / "m")[2]
    last = load_file(tmp_path / "m" / "checkpoint" / "weights.safetensors")
    average = load_file(tmp_path / "m" / "checkpoint" / "average.safetensors")
    # The average trails the raw weights, and the model directory holds it, not the raw weights.
    assert not np.allclose(average["lstms.0.weight_hh_l0"].numpy(), last["lstms.0.weight_hh_l0"].numpy())
    assert all(np.array_equal(saved[k].numpy(), average[k].numpy()) for k in saved)
