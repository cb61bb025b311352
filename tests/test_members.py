"""members: an ensemble's networks trained on threads of their own."""
import numpy as np
import pytest
import torch

from stocksent.config import ModelConfig, PreprocessConfig, TrainConfig
from stocksent.data.batches import bucket_batches
from stocksent.data.corpus import tokenize_all
from stocksent.nets.model import build_model
from stocksent.text.vocab import Vocab
from stocksent.training.members import MemberThreads
from stocksent.training.optim import make_optimizer
from stocksent.training.train import seed_everything, train_one_epoch


@pytest.fixture()
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _encoded(real_rows):
    rows = real_rows[:600]
    tokens = tokenize_all([r["message"] for r in rows], PreprocessConfig())[0]
    vocab = Vocab.build(tokens, 1)
    encoded = [np.asarray(vocab.encode(t) or [1], dtype=np.int64) for t in tokens]
    labels = np.array([r["sentiment"] == "bullish" for r in rows], dtype=np.int64)
    return encoded, labels, len(vocab)


def _epoch(real_rows, dropout: float, threads: int) -> tuple[dict[str, torch.Tensor], float]:
    encoded, labels, words = _encoded(real_rows)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=words, embedding_dim=16, lstm_sizes=[16], members=2, pooling="max",
                                    dropout=dropout, embedding_dropout=dropout))
    cfg = TrainConfig(batch_size=64, sparse_embedding=True, grad_clip=1.0)
    optimizer = make_optimizer(model, cfg)
    rng = seed_everything(3, 0)
    batches = bucket_batches(np.fromiter(map(len, encoded), dtype=np.int64), cfg.batch_size, rng)
    loss, _ = train_one_epoch(model, optimizer, encoded, labels, batches, cfg)
    return {k: v.clone() for k, v in model.state_dict().items()}, loss


def test_members_on_threads_learn_what_one_pass_learns(real_rows, two_threads):
    assert MemberThreads.wanted(build_model(ModelConfig(vocab_size=9, members=2)), torch.device("cpu"))
    on_threads, loss = _epoch(real_rows, dropout=0.0, threads=2)
    assert torch.get_num_threads() == 2  # given back once the epoch is done
    one_pass, expected = _epoch(real_rows, dropout=0.0, threads=1)  # one thread: the single pass
    assert loss == pytest.approx(expected, rel=1e-5)
    for name, tensor in one_pass.items():
        torch.testing.assert_close(on_threads[name], tensor, rtol=1e-4, atol=1e-5)


def test_members_on_threads_draw_the_same_masks_on_every_run(real_rows, two_threads):
    first, _ = _epoch(real_rows, dropout=0.3, threads=2)
    second, _ = _epoch(real_rows, dropout=0.3, threads=2)
    assert all(torch.equal(first[name], second[name]) for name in first)
    members = [name for name in first if name.startswith("members.0.")]
    assert not all(torch.equal(first[name], first[name.replace("members.0.", "members.1.")]) for name in members)
