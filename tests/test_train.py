import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY
from stocksent.cli import main
from stocksent.config import TrainConfig, preset
from stocksent.data.corpus import load_corpus
from stocksent.data.store import load_model, split_prefix
from stocksent.scoring.calibration import CalibrationSet
from stocksent.scoring.metrics import sigmoid
from stocksent.scoring.ngrams import flat_ids
from stocksent.scoring.parts import network_state
from stocksent.training import train
from stocksent.training.train import Progress, Run, class_weights, compute_loss, predict_logits, train_network


def test_epoch_lines_history_and_metrics(trained_model, capsys):
    history = json.loads((trained_model / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert set(history[0]) == {"epoch", "loss", "train_accuracy", "val_loss", "val_accuracy", "seconds"}
    metrics = json.loads((trained_model / "metrics.json").read_text())
    n = metrics["dataset"]["test_size"]
    dataset = metrics["dataset"]
    assert metrics["test"]["n"] == n and n == dataset["messages"] - dataset["train_size"] - dataset["val_size"]


def test_vocabulary_comes_from_the_training_split_only(data_slice):
    cfg = preset("default")
    corpus = load_corpus(data_slice, cfg.data, cfg.preprocess)
    run, splits = Run.from_corpus(cfg, corpus), corpus.split(cfg.data)
    train_words = {t for i in splits["train"] for t in corpus.tokens[i]}
    test_only = {t for i in splits["test"] for t in corpus.tokens[i]} - train_words
    assert test_only and not test_only & set(run.vocab.itos)


def checkpoint_part(model_dir, part):
    """The tensors of one part (weights, average) of a model directory's training checkpoint."""
    state = json.loads((model_dir / "checkpoint" / "state.json").read_text())
    return load_file(model_dir / "checkpoint" / state["files"][part])


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
    # TINY's constant rate: a rate falling to zero by the last epoch would fall over one epoch in
    # the run that stands for one stopped after its first.
    assert _train(slice_dir / "full", "--epochs", "3", *extra) == 0
    assert _train(slice_dir / "part", "--epochs", "1", *extra) == 0  # as if stopped after epoch 1
    assert main(["train", "--data", str(slice_dir.parent / "slice.csv.gz"), "--out", str(slice_dir / "part"),
                 "--resume", "--epochs", "3"]) == 0
    for change in (["--group-duplicates"], ["--lstm-sizes", "8"]):  # the run's shape is fixed
        assert main(["train", "--data", str(slice_dir.parent / "slice.csv.gz"),
                     "--out", str(slice_dir / "part"), "--resume", *change]) == 1
    for read in (lambda run: checkpoint_part(run, "weights"), lambda run: load_file(run / "model.safetensors")):
        full, part = (read(slice_dir / run) for run in ("full", "part"))
        assert all(np.array_equal(full[k].numpy(), part[k].numpy()) for k in full)
    history = [json.loads((slice_dir / n / "history.json").read_text()) for n in ("full", "part")]
    for rows in history:
        for row in rows:
            row.pop("seconds")  # wall-clock time is the one thing allowed to differ
    assert history[0] == history[1]


def test_resume_takes_the_same_command_retyped(slice_dir, capsys):
    first = ["--seed", "42", "--lr", "0.004", "--epochs", "1"]
    assert _train(slice_dir / "run", *first) == 0
    capsys.readouterr()
    # The same command with --resume (and a longer run) continues: unchanged values are fine.
    assert _train(slice_dir / "run", *first, "--epochs", "2", "--resume") == 0
    assert "resuming after epoch 1 of 2" in capsys.readouterr().err
    assert len(json.loads((slice_dir / "run" / "history.json").read_text())) == 2
    # A value that differs from the checkpoint's is refused, naming the old and the new value.
    assert _train(slice_dir / "run", "--seed", "7", "--epochs", "3", "--resume") == 1
    err = capsys.readouterr().err.strip()
    assert err == ("stocksent: error: seed cannot change on --resume (the checkpoint has 42, this command 7); "
                   "only bf16, device, epochs, patience, stop_margin, threads may")
    assert _train(slice_dir / "run", "--preset", "tutorial", "--resume") == 1
    assert "the checkpoint has 'default', this command 'tutorial'" in capsys.readouterr().err


def test_early_stopping_keeps_the_best_epoch(data_slice, tmp_path):
    cfg = preset("default").override("train", epochs=30, patience=1, lr=0.02, batch_size=32)
    cfg = cfg.override("model", embedding_dim=16, lstm_sizes=[16], ngrams=0)  # the network's own val loss
    corpus = load_corpus(data_slice, cfg.data, cfg.preprocess)
    run = Run.from_corpus(cfg, corpus)
    trained = train_network(run, tmp_path / "m", log=lambda line: None)
    progress, kept = trained.progress, trained.model.state_dict()
    network, calibration = split_prefix(load_model(tmp_path / "m")[2], CalibrationSet.prefix)
    assert network.keys() == kept.keys() and all(torch.equal(kept[name], saved) for name, saved in network.items())
    assert len(calibration["calibration.proba"]) == 300  # how the kept network scores the validation split
    # ... kept from its epoch's validation, not the last epoch's, and as the kept network scores it now.
    np.testing.assert_allclose(calibration["calibration.proba"].numpy(),
                               sigmoid(predict_logits(trained.model, run.encoded["val"])), rtol=1e-6)
    assert progress.epoch < 30  # overfits a 2,400-message slice quickly
    assert progress.epoch == progress.best_epoch + 1
    saved = json.loads((tmp_path / "m" / "metrics.json").read_text())
    history = json.loads((tmp_path / "m" / "history.json").read_text())
    assert len(history) == progress.epoch
    # The saved weights are the best epoch's: their validation loss is the lowest in the history.
    assert saved["val"]["loss"] == pytest.approx(min(row["val_loss"] for row in history))


def _losses_until_stopped(losses, patience, margin):
    progress = Progress()
    for epoch in progress.epochs(len(losses), patience, margin):
        progress.record({"val_loss": losses[epoch]}, losses[epoch], 1.0)
    return progress.epoch, progress.best_epoch


@pytest.mark.parametrize("losses, stops_after, best", [
    ([0.50, 0.47, 0.45, 0.47, 0.46, 0.44], 4, 3),  # 4% above the best: stopped at once
    ([0.50, 0.47, 0.452, 0.4528, 0.449, 0.461, 0.47], 6, 5),  # nearly level, then better: it goes on
    ([0.50, 0.47, 0.45, 0.4505, 0.4506, 0.44], 5, 3),  # two level epochs: patience stops it
])
def test_a_clear_rise_stops_at_once_and_a_level_epoch_waits_for_patience(losses, stops_after, best):
    assert _losses_until_stopped(losses, patience=2, margin=0.01) == (stops_after, best)
    assert _losses_until_stopped(losses, patience=0, margin=0.0) == (len(losses), losses.index(min(losses)) + 1)


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
    cfg = preset("default").override("train", epochs=1, average_decay=0.9).override("run", threads=1)
    cfg = cfg.override("model", embedding_dim=16, lstm_sizes=[16])
    corpus = load_corpus(data_slice, cfg.data, cfg.preprocess)
    train_network(Run.from_corpus(cfg, corpus), tmp_path / "m", log=lambda line: None)
    saved = load_model(tmp_path / "m")[2]
    last, average = checkpoint_part(tmp_path / "m", "weights"), checkpoint_part(tmp_path / "m", "average")
    # The average trails the raw weights, and the model directory holds it, not the raw weights.
    recurrent = "members.0.lstms.0.weight_hh_l0"
    assert not np.allclose(average[recurrent].numpy(), last[recurrent].numpy())
    network = network_state(saved)
    assert all(np.array_equal(network[k].numpy(), average[k].numpy()) for k in network)


# Runs `stocksent train` in a child process that SIGKILLs itself at a chosen point: at the
# n-th loss computed (mid-epoch), or part-way through the n-th write of a named file (half its
# bytes in the temporary file beside it, nothing renamed yet).
KILLER = """
import os, signal, sys
from stocksent.data import store
from stocksent.training import train
from stocksent.cli import main

kind, target, n, args = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
seen = 0
epoch = [0]  # the epoch under way, written beside the run when the kill comes

seed_everything = train.seed_everything
def seed_each_epoch(seed, at=0, rank=0):
    epoch[0] = at + 1
    return seed_everything(seed, at, rank)
train.seed_everything = seed_each_epoch

def die():
    with open(args[args.index("--out") + 1] + ".killed-in-epoch", "w") as f:
        f.write(str(epoch[0]))
    os.kill(os.getpid(), signal.SIGKILL)

def hit():
    global seen
    seen += 1
    return seen == n

if kind == "step":
    loss = train.compute_loss
    def compute_loss(*a, **k):
        if hit():
            die()
        return loss(*a, **k)
    train.compute_loss = compute_loss
else:
    destination = store.atomic_destination
    def atomic_destination(dest):
        if dest.name == target and hit():
            with open(dest.parent / f".{dest.name}.crash.tmp", "wb") as f:
                f.write(b"half a file")
            die()
        return destination(dest)
    store.atomic_destination = atomic_destination
sys.exit(main(args))
"""

KILL_POINTS = [
    ("step", "-", 8),  # epoch 1, before anything is saved
    ("step", "-", 60),  # mid epoch 2
    ("write", "model.safetensors", 2),  # replacing the best weights (epoch 2)
    ("write", "config.json", 2),  # weights replaced, config.json not yet
    ("write", "weights-2.safetensors", 1),  # writing epoch 2's checkpoint
    ("write", "state.json", 2),  # epoch 2's checkpoint files written, state.json not yet
    ("write", "history.json", 3),  # epoch 3
]


@pytest.mark.parametrize("kind,target,n", KILL_POINTS, ids=[f"{k}-{t}-{n}" for k, t, n in KILL_POINTS])
def test_sigkill_then_resume_loses_at_most_an_epoch_and_ends_identical(slice_dir, kind, target, n):
    import subprocess
    import sys

    from stocksent import SentimentClassifier
    from stocksent.errors import StocksentError

    args = ["train", "--data", str(slice_dir.parent / "slice.csv.gz"), *TINY, "--epochs", "3", "--lr", "0.01",
            "--pretraining", "none"]  # the training loop alone (test_pretrain tries resuming after pretraining)
    assert main([*args, "--out", str(slice_dir / "full")]) == 0
    out = slice_dir / "killed"
    child = subprocess.run([sys.executable, "-c", KILLER, kind, target, str(n), *args, "--out", str(out)],
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -9, child.stderr  # the kill point was reached
    state = out / "checkpoint" / "state.json"
    if (out / "config.json").exists():
        SentimentClassifier.load(out)  # a model directory once written always loads
    else:
        with pytest.raises(StocksentError):
            SentimentClassifier.load(out)
    if not state.exists():  # killed in epoch 1: nothing to resume, so start again
        assert main([*args, "--out", str(out), "--resume"]) == 1
        assert main([*args, "--out", str(out)]) == 0
    else:
        killed_in = int((slice_dir / "killed.killed-in-epoch").read_text())
        kept = json.loads(state.read_text())["progress"]["epoch"]
        assert killed_in - 1 <= kept < killed_in  # at most the epoch under way is lost
        assert main(["train", "--out", str(out), "--resume"]) == 0
    for read in (lambda run: checkpoint_part(run, "weights"), lambda run: load_file(run / "model.safetensors")):
        full, resumed = read(slice_dir / "full"), read(out)
        assert all(np.array_equal(full[k].numpy(), resumed[k].numpy()) for k in full)
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (slice_dir / "full", out)]
    assert metrics[0]["test"] == metrics[1]["test"] and metrics[0]["val"] == metrics[1]["val"]
    assert not (out / "model.prev.safetensors").exists()


class Payload:
    """Unpickling this runs a shell command that leaves a marker file: the code a malicious
    checkpoint would carry."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def _plant(path, data, record, key):
    """Replace a file and update the checksum that vouches for it, as an attacker would."""
    import hashlib

    path.write_bytes(data)
    state = json.loads(record.read_text())
    if len(key) == 2:
        state[key[0]][key[1]] = hashlib.sha256(data).hexdigest()
    else:
        state[key[0]] = hashlib.sha256(data).hexdigest()
    record.write_text(json.dumps(state))


@pytest.mark.parametrize("part", ["optimizer", "weights"])
@pytest.mark.parametrize("fmt", ["pickle", "torch.save"])
def test_a_pickle_bomb_in_a_checkpoint_is_refused_unrun(slice_dir, part, fmt, capsys):
    import io
    import pickle

    import torch

    assert _train(slice_dir / "m", "--epochs", "1") == 0
    marker = slice_dir / "code-ran"
    buffer = io.BytesIO()
    torch.save(Payload(marker), buffer) if fmt == "torch.save" else pickle.dump(Payload(marker), buffer)
    state = slice_dir / "m" / "checkpoint" / "state.json"
    name = json.loads(state.read_text())["files"][part]
    _plant(slice_dir / "m" / "checkpoint" / name, buffer.getvalue(), state, ("sha256", part))
    assert main(["train", "--out", str(slice_dir / "m"), "--resume", "--epochs", "2"]) == 1
    assert not marker.exists()
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("stocksent: error:") and "checkpoint" in err


def test_a_pickle_bomb_as_model_weights_is_refused_unrun(trained_model, tmp_path, capsys):
    import pickle
    import shutil

    from stocksent import SentimentClassifier
    from stocksent.errors import StocksentError

    folder = tmp_path / "m"
    shutil.copytree(trained_model, folder)
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(Payload(live)))
    assert live.exists()  # the payload does run when something unpickles it
    marker = tmp_path / "code-ran"
    _plant(folder / "model.safetensors", pickle.dumps(Payload(marker)), folder / "config.json", ("weights_sha256",))
    with pytest.raises(StocksentError, match="not a valid safetensors"):
        SentimentClassifier.load(folder)
    assert main(["predict", str(folder), "x"]) == 1 and not marker.exists()


def test_tensorboard_logs_every_epoch(data_slice, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, board = tmp_path / "m", tmp_path / "tb"
    assert main(["train", "--data", str(data_slice), "--out", str(out), *TINY, "--tensorboard", str(board)]) == 0
    events = EventAccumulator(str(board / "m"))
    events.Reload()
    history = json.loads((out / "history.json").read_text())
    accuracy = events.Scalars("epoch/val_accuracy")
    assert [e.step for e in accuracy] == [1, 2]
    assert [e.value for e in accuracy] == pytest.approx([row["val_accuracy"] for row in history])
    assert {"epoch/loss", "epoch/train_accuracy", "epoch/val_loss"} <= set(events.Tags()["scalars"])
    # Without the package: one clear line, and nothing trained.
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    assert main(["train", "--data", str(data_slice), "--out", str(tmp_path / "n"), *TINY,
                 "--tensorboard", str(board)]) == 1
    assert not (tmp_path / "n" / "config.json").exists()


def test_a_balanced_loss_is_the_mean_of_each_label_s_mean_loss():
    logits = torch.tensor([2.0, -1.0, 0.5, 3.0, -2.0, 0.1])
    targets = np.array([1, 1, 1, 1, 0, 0])
    each = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(targets).float(),
                                                                reduction="none")
    weights = class_weights(targets, TrainConfig(balanced=True))
    balanced = compute_loss(logits, torch.from_numpy(targets).float(), "bce", weights)
    torch.testing.assert_close(balanced, (each[:4].mean() + each[4:].mean()) / 2)
    assert class_weights(targets, preset("default").train) is None  # not asked: every message alike
    ensemble = torch.stack([logits, logits], dim=1)  # each member's loss weighted the same way
    torch.testing.assert_close(compute_loss(ensemble, torch.from_numpy(targets).float(), "bce", weights), balanced)


def test_validation_is_scored_once_an_epoch_and_the_parts_fit_on_the_kept_epoch_s_logits(data_slice, monkeypatch):
    cfg = preset("default").override("train", epochs=2).override("run", threads=1)
    cfg = cfg.override("model", embedding_dim=16, lstm_sizes=[16])
    run = Run.from_corpus(cfg, load_corpus(data_slice, cfg.data, cfg.preprocess))
    scored, real = [], train.predict_logits

    def counted(model, encoded):
        scored.append(len(encoded))
        return real(model, encoded)

    monkeypatch.setattr(train, "predict_logits", counted)
    trained = train_network(run, log=lambda line: None)
    assert scored == [len(run.labels["val"])] * 2  # each epoch's validation, and nothing after
    blended = trained.ngrams.blend(real(trained.model, run.encoded["val"]), *flat_ids(run.encoded["val"]))
    np.testing.assert_allclose(trained.calibration.proba, sigmoid(blended), rtol=1e-5)
