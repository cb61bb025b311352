import csv
import json
import time

import pytest

from conftest import write_csv
from stocksent.cli import main
from stocksent.config import Config
from stocksent.training.train import Progress
from stocksent.training.tune import pruning_callback


@pytest.fixture(scope="module")
def small_slice(tmp_path_factory, real_rows):
    return write_csv(tmp_path_factory.mktemp("tune") / "small.csv", real_rows[:1200], ["message", "sentiment"])


def test_tune_writes_trials_and_a_config_train_accepts(small_slice, tmp_path, capsys):
    out = tmp_path / "tune"
    assert main(["tune", "--data", str(small_slice), "--trials", "3", "--epochs", "1", "--threads", "1",
                 "--out", str(out)]) == 0
    with open(out / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["trial"] for r in rows] == ["1", "2", "3"]
    assert {r["state"] for r in rows} <= {"complete", "pruned", "stopped"}
    assert {"embedding_dim", "lstm_size", "layers", "bidirectional", "dropout", "lr", "batch_size", "pooling",
            "emoji", "min_freq", "members"} <= set(rows[0])
    best_row = max((r for r in rows if r["state"] == "complete"), key=lambda r: float(r["val_accuracy"]))
    best = Config.from_dict(json.loads((out / "best_config.json").read_text()))
    assert best.model.pooling == best_row["pooling"] and best.train.batch_size == int(best_row["batch_size"])
    assert best.model.lstm_sizes == [int(best_row["lstm_size"])] * int(best_row["layers"])
    assert best.model.members == int(best_row["members"])
    assert best.train.epochs == 1 and best.preset == "tuned"
    assert "train it with: stocksent train --config" in capsys.readouterr().out
    model = tmp_path / "tuned"
    assert main(["train", "--config", str(out / "best_config.json"), "--data", str(small_slice),
                 "--out", str(model), "--threads", "1"]) == 0
    saved = json.loads((model / "config.json").read_text())
    assert saved["model"]["embedding_dim"] == best.model.embedding_dim and saved["preset"] == "tuned"


class FakeTrial:
    def __init__(self, prune_after: int):
        self.prune_after, self.reported, self.user_attrs = prune_after, [], {}

    def set_user_attr(self, key, value):
        self.user_attrs[key] = value

    def report(self, value, step):
        self.reported.append((step, value))

    def should_prune(self):
        return len(self.reported) >= self.prune_after


class Stop(Exception):
    pass


def _progress(epoch: int) -> Progress:
    return Progress(epoch=epoch, history=[{"val_accuracy": 0.5 + epoch / 100}] * epoch)


def test_pruning_reports_each_epoch_and_stops_when_told():
    trial = FakeTrial(prune_after=2)
    callback = pruning_callback(trial, Stop, deadline=time.monotonic() + 60)
    callback(_progress(1))
    with pytest.raises(Stop):
        callback(_progress(2))
    assert trial.reported == [(1, 0.51), (2, 0.52)]
    assert trial.user_attrs == {}  # pruned, not out of time
    # Past the time budget, a trial stops at its next epoch even if the pruner would go on.
    late = FakeTrial(prune_after=99)
    with pytest.raises(Stop):
        pruning_callback(late, Stop, deadline=time.monotonic() - 1)(_progress(1))
    assert late.user_attrs == {"stopped_by": "time budget"}


def test_tune_mistakes_are_one_line_errors(small_slice, tmp_path, capsys):
    assert main(["tune", "--data", str(small_slice), "--trials", "0", "--out", str(tmp_path)]) == 1
    assert main(["tune", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("stocksent: error:") for line in err)
