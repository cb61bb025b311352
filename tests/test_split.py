import numpy as np
import pytest

from stocksent.config import DataConfig, PreprocessConfig
from stocksent.corpus import load_corpus
from stocksent.data import find_data
from stocksent.errors import StocksentError
from stocksent.split import split_indices


def test_article_sizes_and_disjoint_cover():
    parts = split_indices(96966, seed=42)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [77572, 9697, 9697]
    assert np.array_equal(np.sort(np.concatenate(list(parts.values()))), np.arange(96966))


def test_seeded_and_repeatable():
    a, b, c = (split_indices(1000, s) for s in (1, 1, 2))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])


def test_group_duplicates_keeps_copies_together(real_rows, data_slice):
    corpus = load_corpus(data_slice, DataConfig(), PreprocessConfig())
    keys = [" ".join(t) for t in corpus.tokens]
    assert len(set(keys)) < len(keys)  # the slice has duplicate texts
    parts = corpus.split(DataConfig(group_duplicates=True))
    seen = [{keys[i] for i in parts[name]} for name in ("train", "val", "test")]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert 0.75 < len(parts["train"]) / len(keys) < 0.85


def test_plain_split_leaks_duplicates_on_full_data():
    corpus = load_corpus(find_data(), DataConfig(), PreprocessConfig())
    keys = [" ".join(t) for t in corpus.tokens]
    parts = corpus.split(DataConfig())
    train = {keys[i] for i in parts["train"]}
    assert any(keys[i] in train for i in parts["test"])
    grouped = corpus.split(DataConfig(group_duplicates=True))
    train = {keys[i] for i in grouped["train"]}
    assert not any(keys[i] in train for i in grouped["test"])


def test_too_few_messages():
    with pytest.raises(StocksentError, match="too few messages"):
        split_indices(3, seed=1)
