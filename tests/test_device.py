import json

import pytest
import torch

from conftest import TINY
from stocksent.cli import main
from stocksent.config import ModelConfig
from stocksent.errors import StocksentError
from stocksent.nets.device import autocast, bf16_used, resolve_device, to_device
from stocksent.nets.model import SentimentLSTM


def test_auto_is_the_cpu_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(StocksentError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_auto_and_cuda_pick_the_gpu_of_this_rank(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda", local_rank=3) == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")


def test_unknown_device_is_refused():
    with pytest.raises(StocksentError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_cpu_tensors_are_not_copied():
    tokens = torch.ones(2, 3, dtype=torch.int64)
    assert to_device(torch.device("cpu"), tokens)[0] is tokens


def test_bf16_only_where_the_device_computes_it(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": False, "amx_bf16": False})
    assert not bf16_used(cpu, True)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True})
    assert bf16_used(cpu, True) and not bf16_used(cpu, False)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: (7, 5))  # emulates it
    assert not bf16_used(torch.device("cuda", 0), True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: (9, 0))
    assert bf16_used(torch.device("cuda", 0), True)


def test_autocast_off_means_fp32():
    model = SentimentLSTM(ModelConfig(vocab_size=10, embedding_dim=4, lstm_sizes=[4]))
    with autocast(torch.device("cpu"), False):
        logits = model(torch.ones(2, 3, dtype=torch.int64), torch.tensor([3, 2]))
    assert logits.dtype == torch.float32


def test_train_says_whether_it_computes_in_bfloat16(data_slice, tmp_path, capsys, monkeypatch):
    assert main(["train", "--data", str(data_slice), "--out", str(tmp_path / "m"), *TINY, "--bf16"]) == 0
    device_line = next(line for line in capsys.readouterr().err.splitlines() if "; train " in line)
    assert device_line.endswith(", bfloat16") == bf16_used(torch.device("cpu"), True)
    precision = json.loads((tmp_path / "m" / "metrics.json").read_text())["precision"]
    assert precision == ("bfloat16" if bf16_used(torch.device("cpu"), True) else "float32")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {})  # a CPU without it: float32, said so
    assert main(["train", "--data", str(data_slice), "--out", str(tmp_path / "m"), *TINY, "--bf16", "--force"]) == 0
    device_line = next(line for line in capsys.readouterr().err.splitlines() if "; train " in line)
    assert device_line.endswith("device cpu")
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["precision"] == "float32"


def test_train_on_a_missing_gpu_is_one_line(data_slice, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code = main(["train", "--data", str(data_slice), "--out", str(tmp_path / "m"), *TINY, "--device", "cuda"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "no CUDA GPU" in err[0]
    assert not (tmp_path / "m").exists()
