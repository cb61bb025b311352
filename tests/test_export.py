import shutil

import numpy as np
import pytest

from stocksent.classifier import SentimentClassifier
from stocksent.cli import main
from stocksent.errors import StocksentError


@pytest.fixture(scope="module")
def exported(trained_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx") / "model"
    shutil.copytree(trained_model, folder)
    assert main(["export", str(folder), "--onnx"]) == 0
    return folder


@pytest.mark.parametrize("batch", [1, 7, 64, 300])
def test_onnx_matches_torch_on_real_messages(exported, real_rows, batch):
    # Real messages of every length: the shortest, the longest, and those between.
    texts = sorted((r["message"] for r in real_rows[:3000]), key=len)
    chosen = [texts[i] for i in np.linspace(0, len(texts) - 1, batch).astype(int)]
    torch_probs = SentimentClassifier.load(exported).positive_proba(chosen)
    onnx_probs = SentimentClassifier.load(exported, backend="onnx").positive_proba(chosen)
    assert onnx_probs.shape == (batch,)
    np.testing.assert_allclose(onnx_probs, torch_probs, rtol=0, atol=1e-5)


def test_onnx_single_string_and_labels(exported):
    clf = SentimentClassifier.load(exported, backend="onnx")
    both = clf.predict_proba("$SPY to the moon")
    assert both.shape == (2,) and both.sum() == pytest.approx(1.0)
    assert clf.predict("$SPY to the moon") in clf.labels


def test_missing_or_stale_onnx_is_one_clear_error(exported, trained_model, tmp_path, capsys):
    with pytest.raises(StocksentError, match="stocksent export"):
        SentimentClassifier.load(trained_model, backend="onnx")
    stale = tmp_path / "stale"
    shutil.copytree(exported, stale)
    (stale / "model.onnx").write_bytes((stale / "model.onnx").read_bytes()[:-10])
    with pytest.raises(StocksentError, match="corrupted"):
        SentimentClassifier.load(stale, backend="onnx")
    assert main(["export", str(tmp_path / "nothing"), "--onnx"]) == 1
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("variant", [["--bidirectional", "--pooling", "max"], ["--bigram-buckets", "1000"],
                                     ["--members", "2"]], ids=["bidirectional-max", "bigram-bag", "ensemble"])
def test_onnx_matches_torch_for_other_architectures(data_slice, real_rows, tmp_path, variant):
    from conftest import TINY

    folder = tmp_path / "variant"
    assert main(["train", "--data", str(data_slice), "--out", str(folder), *TINY, "--epochs", "1", *variant]) == 0
    assert main(["export", str(folder), "--onnx"]) == 0
    texts = [r["message"] for r in real_rows[:200]]
    np.testing.assert_allclose(SentimentClassifier.load(folder, backend="onnx").positive_proba(texts),
                               SentimentClassifier.load(folder).positive_proba(texts), rtol=0, atol=1e-5)
