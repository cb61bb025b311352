"""members: an ensemble's networks trained on threads of their own."""
import numpy as np
import pytest
import torch

from stocksent.config import ModelConfig, PreprocessConfig, TrainConfig
from stocksent.data.batches import bucket_batches, pad_batch
from stocksent.data.corpus import tokenize_all
from stocksent.nets.device import autocast, bf16_used
from stocksent.nets.model import build_model
from stocksent.text.vocab import Vocab
from stocksent.training.members import MemberThreads
from stocksent.training.optim import make_optimizer
from stocksent.training.train import compute_loss, seed_everything, train_one_epoch


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


def _step_against_one_pass(real_rows, bf16: bool):
    """One batch's loss and gradients on the members' threads, and in one pass over the ensemble."""
    encoded, labels, words = _encoded(real_rows)
    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=words, embedding_dim=16, lstm_sizes=[16], members=2, pooling="max",
                                    dropout=0.0, embedding_dropout=0.0)).train()
    assert MemberThreads.wanted(model, torch.device("cpu"))
    tokens, lengths = pad_batch(encoded, np.arange(64))
    targets = torch.from_numpy(labels[:64]).float()

    def loss(logits, y):
        return compute_loss(logits, y, "bce")

    with autocast(torch.device("cpu"), bf16):
        logits = model(tokens, lengths).float()
    expected = loss(logits, targets)
    expected.backward()
    gradients = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    threads = MemberThreads(model, bf16)
    try:
        got, logits = threads.step(tokens, lengths, targets, loss)
        assert torch.get_num_threads() == 1  # one intra-op thread for each member's thread
    finally:
        threads.close()
    assert torch.get_num_threads() == 2  # given back
    assert logits.shape == (64, 2)
    return float(got), float(expected.detach()), {name: p.grad for name, p in model.named_parameters()}, gradients


def test_a_step_on_threads_is_one_pass_s_mean_loss_and_its_gradients(real_rows, two_threads):
    got, expected, gradients, expected_gradients = _step_against_one_pass(real_rows, bf16=False)
    assert got == pytest.approx(expected, rel=1e-6)
    for name, gradient in gradients.items():
        torch.testing.assert_close(gradient, expected_gradients[name], rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not bf16_used(torch.device("cpu"), True), reason="this CPU has no native bfloat16")
def test_a_step_on_threads_in_bfloat16_is_one_pass_under_autocast(real_rows, two_threads):
    got, expected, gradients, expected_gradients = _step_against_one_pass(real_rows, bf16=True)
    fp32, *_ = _step_against_one_pass(real_rows, bf16=False)
    assert got == pytest.approx(expected, rel=1e-6) and got != fp32  # each thread under autocast, not float32
    for name, gradient in gradients.items():
        torch.testing.assert_close(gradient, expected_gradients[name], rtol=1e-4, atol=1e-6)


def test_members_draw_the_same_masks_on_every_run_and_on_any_number_of_threads(real_rows, two_threads):
    first, loss = _epoch(real_rows, dropout=0.3, threads=2)
    second, again = _epoch(real_rows, dropout=0.3, threads=2)
    assert loss == again and all(torch.equal(first[name], second[name]) for name in first)
    taking_turns, alone = _epoch(real_rows, dropout=0.3, threads=1)  # one thread: the members take turns
    assert alone == pytest.approx(loss, rel=1e-4)
    for name, tensor in taking_turns.items():
        torch.testing.assert_close(tensor, first[name], rtol=1e-3, atol=1e-4)
