import json
import subprocess
import sys

import numpy as np

from stocksent.cli import main
from stocksent.nets.distributed import World, all_sum, from_main, shard

# No dropout: the ranks draw their own dropout masks, which would add noise to the comparison.
RECIPE = ["--embedding-dim", "16", "--lstm-sizes", "16", "--epochs", "4", "--min-freq", "1", "--dropout", "0",
          "--embedding-dropout", "0", "--lr", "0.01", "--threads", "1", "--device", "cpu"]


def test_every_rank_gets_the_same_number_of_whole_batches():
    batches = [np.arange(i * 4, i * 4 + 4) for i in range(11)]
    shares = [shard(batches, World(rank, 3)) for rank in range(3)]
    assert [len(s) for s in shares] == [3, 3, 3]
    taken = np.concatenate([b for s in shares for b in s])
    assert len(set(taken.tolist())) == len(taken) == 36
    assert shard(batches, World()) == batches


def test_a_lone_process_reduces_to_itself():
    assert all_sum([1.0, 2.0], World()) == [1.0, 2.0]
    assert from_main([3.0], World()) == [3.0]


def test_torchrun_two_processes_matches_one(data_slice, tmp_path, capsys):
    # Two ranks of 32 messages each take one optimizer step per 64 messages, as one process of 64.
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
              "-m", "stocksent.cli", "train", "--data", str(data_slice), "--out", str(tmp_path / "ddp"),
              *RECIPE, "--batch-size", "32", "--force"]  # --force: a retried launch replaces what the first left
    done = subprocess.run(launch, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and ("Signal 6 (SIGABRT)" in done.stderr or "Signal 11 (SIGSEGV)" in done.stderr):
        # A rank has been seen to die of a signal at random (SIGABRT twice, SIGSEGV once, in about 40
        # launches, all in a fresh clone's first test run; not reproduced alone): that launch is
        # tried once more, and the second must pass.
        done = subprocess.run(launch, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 processes" in done.stderr
    assert done.stderr.count("epoch   1/4") == 1  # only rank 0 reports
    assert main(["train", "--data", str(data_slice), "--out", str(tmp_path / "one"), *RECIPE,
                 "--batch-size", "64"]) == 0
    ddp, one = (json.loads((tmp_path / name / "metrics.json").read_text())["test"] for name in ("ddp", "one"))
    assert ddp["n"] == one["n"]
    assert one["accuracy"] > one["majority_accuracy"] + 0.05  # it learned something to compare
    assert abs(ddp["accuracy"] - one["accuracy"]) < 0.04
    assert abs(ddp["roc_auc"] - one["roc_auc"]) < 0.04
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "ddp"), "--data", str(data_slice), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == ddp["accuracy"]  # the saved model reloads
