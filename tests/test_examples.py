import subprocess
import sys
from pathlib import Path

from stocksent.cli import main

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "examples" / "notebook.py"


def test_the_notebook_example_fits_the_weights_stocksent_train_fits(data_slice, tmp_path):
    assert main(["train", "--data", str(data_slice), "--out", str(tmp_path / "cli"), "--epochs", "1"]) == 0
    done = subprocess.run([sys.executable, str(NOTEBOOK), "--data", str(data_slice), "--epochs", "1",
                           "--compare", str(tmp_path / "cli"), "--save", str(tmp_path / "nb")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "fit on 2,400 messages" in done.stdout
    assert f"weights identical to {tmp_path / 'cli'}: True" in done.stdout
    assert (tmp_path / "nb" / "model.safetensors").is_file()


def test_the_notebook_example_cross_validates(data_slice):
    done = subprocess.run([sys.executable, str(NOTEBOOK), "--data", str(data_slice), "--cross-validate", "600"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    scores = done.stdout.split("one epoch each: ")[1].split(" (")[0].split()
    assert len(scores) == 3 and all(0.3 < float(s) < 1 for s in scores)
