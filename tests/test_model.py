import dataclasses

import pytest
import torch

from stocksent.config import ModelConfig
from stocksent.errors import StocksentError
from stocksent.nets.model import SentimentEnsemble, SentimentLSTM, build_model, grow_into
from stocksent.text.vocab import UNKNOWN


def make(**kw) -> SentimentLSTM:
    torch.manual_seed(0)
    return SentimentLSTM(ModelConfig(vocab_size=50, embedding_dim=8, lstm_sizes=[6, 4], **kw)).eval()


def test_one_logit_per_message():
    model = make()
    tokens = torch.randint(1, 50, (5, 7))
    assert model(tokens, torch.full((5,), 7)).shape == (5,)


def test_output_is_read_at_the_last_real_token():
    # Right padding of any width must not change a message's output.
    model = make()
    message = torch.tensor([[3, 9, 4]])
    alone = model(message, torch.tensor([3]))
    padded = torch.cat([message, torch.zeros(1, 20, dtype=torch.long)], dim=1)
    assert torch.allclose(model(padded, torch.tensor([3])), alone, atol=1e-6)


def test_no_state_carried_between_messages_or_batches():
    model = make()
    a = torch.tensor([[1, 2, 3, 4]])
    b = torch.tensor([[7, 7, 0, 0]])
    first = model(a, torch.tensor([4]))
    model(b, torch.tensor([2]))
    together = model(torch.cat([b, a]), torch.tensor([2, 4]))
    assert torch.allclose(model(a, torch.tensor([4])), first)
    assert torch.allclose(together[1], first[0], atol=1e-6)


def test_tensorflow_style_initialisation():
    model = make(forget_bias=1.0, embedding_init="uniform")
    lstm = model.lstms[0]
    assert torch.all(lstm.bias_ih_l0[6:12] == 1.0) and torch.all(lstm.bias_ih_l0[:6] == 0)
    assert torch.all(lstm.bias_hh_l0 == 0)
    emb = model.embedding.weight
    assert torch.all(emb[0] == 0) and emb[1:].abs().max() <= 1.0 and emb[1:].abs().max() > 0.9


def test_stacked_layer_sizes_from_the_list():
    model = make()
    assert [(lstm.input_size, lstm.hidden_size) for lstm in model.lstms] == [(8, 6), (6, 4)]
    assert model.head.in_features == 4


def test_glorot_initialisation_as_tensorflow():
    model = make(weight_init="glorot")
    limit = (6 / (8 + 6 + 24)) ** 0.5  # first layer: kernel over [input 8, hidden 6] -> 4 x 6 gates
    weights = torch.cat([model.lstms[0].weight_ih_l0.flatten(), model.lstms[0].weight_hh_l0.flatten()])
    assert weights.abs().max() <= limit and weights.abs().max() > 0.9 * limit
    assert torch.all(model.head.bias == 0)


def test_learned_initial_state_starts_at_zero_and_trains():
    torch.manual_seed(0)
    zero = SentimentLSTM(ModelConfig(vocab_size=20, embedding_dim=4, lstm_sizes=[5, 3]))
    torch.manual_seed(0)
    learned = SentimentLSTM(ModelConfig(vocab_size=20, embedding_dim=4, lstm_sizes=[5, 3], initial_state="learned"))
    learned.load_state_dict({**learned.state_dict(), **zero.state_dict()})
    tokens, lengths = torch.tensor([[3, 4, 0], [5, 6, 7]]), torch.tensor([2, 3])
    zero.eval(), learned.eval()
    torch.testing.assert_close(learned(tokens, lengths), zero(tokens, lengths))  # zero start = no start
    learned(tokens, lengths).sum().backward()
    assert [p.grad.abs().sum() > 0 for p in learned.initial_states] == [True, True]
    assert [tuple(p.shape) for p in learned.initial_states] == [(2, 1, 1, 5), (2, 1, 1, 3)]


def test_max_and_mean_pooling_ignore_padding():
    for pooling in ("max", "mean"):
        model = make(pooling=pooling)
        alone = model(torch.tensor([[5, 6, 7]]), torch.tensor([3]))
        padded = model(torch.tensor([[5, 6, 7, 0, 0], [9, 9, 9, 9, 9]]), torch.tensor([3, 5]))
        torch.testing.assert_close(padded[0], alone[0])


def test_bidirectional_scores_do_not_depend_on_padding():
    model = make(bidirectional=True, pooling="max")
    assert model.head.in_features == 8 and model.lstms[1].input_size == 12
    alone = model(torch.tensor([[5, 6, 7]]), torch.tensor([3]))
    padded = model(torch.tensor([[5, 6, 7, 0, 0], [9, 8, 7, 6, 5]]), torch.tensor([3, 5]))
    torch.testing.assert_close(padded[0], alone[0])
    # The backward direction feeds the score: changing only its weights changes the output.
    with torch.no_grad():
        model.backward_lstms[0].weight_ih_l0.add_(0.5)
    assert not torch.allclose(model(torch.tensor([[5, 6, 7]]), torch.tensor([3])), alone)


def test_bigram_bag_reads_each_word_pair_of_the_message_only():
    model = make(bigram_buckets=97, bigram_dim=3)
    assert model.head.in_features == 4 + 3
    alone = model(torch.tensor([[5, 6, 7]]), torch.tensor([3]))
    padded = model(torch.tensor([[5, 6, 7, 0, 0], [9, 8, 7, 6, 5]]), torch.tensor([3, 5]))
    torch.testing.assert_close(padded[0], alone[0])
    # The bag is the mean of the rows of the pairs (5, 6) and (6, 7); one word has no pair.
    rows = [(a * 1_000_003 + b) % 97 + 1 for a, b in ((5, 6), (6, 7))]
    bag = model._bigram_bag(torch.tensor([[5, 6, 7, 0]]), torch.tensor([3]))
    torch.testing.assert_close(bag[0], model.bigrams.weight[rows].mean(dim=0))
    assert model._bigram_bag(torch.tensor([[5]]), torch.tensor([1])).abs().sum() == 0
    # Word order matters to a pair: "calls not puts" and "puts not calls" differ in the bag.
    a = model._bigram_bag(torch.tensor([[5, 6, 7]]), torch.tensor([3]))
    b = model._bigram_bag(torch.tensor([[7, 6, 5]]), torch.tensor([3]))
    assert not torch.allclose(a, b)


def test_ensemble_trains_one_logit_per_member_and_scores_their_mean():
    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=50, embedding_dim=8, lstm_sizes=[6], members=3))
    assert isinstance(model, SentimentEnsemble) and len(model.sparse_tables()) == 3
    first, second = model.members()[0].embedding.weight, model.members()[1].embedding.weight
    assert not torch.allclose(first, second)  # each member starts from its own initialisation
    tokens, lengths = torch.randint(1, 50, (5, 7)), torch.tensor([7, 3, 1, 5, 2])
    assert model.train()(tokens, lengths).shape == (5, 3)
    model.eval()
    each = torch.stack([member(tokens, lengths) for member in model.members()], dim=1)
    torch.testing.assert_close(model(tokens, lengths), each.mean(dim=1))
    assert isinstance(build_model(ModelConfig(vocab_size=50, members=1)), SentimentLSTM)


def test_each_ensemble_member_learns_from_its_own_loss_only():
    from stocksent.training.train import compute_loss

    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=50, embedding_dim=8, lstm_sizes=[6], members=2, dropout=0.0))
    tokens, lengths, targets = torch.randint(1, 50, (4, 5)), torch.full((4,), 5), torch.tensor([1.0, 0, 1, 0])
    compute_loss(model.train()(tokens, lengths), targets, "bce").backward()
    together = model.members()[0].head.weight.grad.clone()
    model.zero_grad()
    alone = compute_loss(model.members()[0](tokens, lengths), targets, "bce") / 2  # the loss is a mean over members
    alone.backward()
    torch.testing.assert_close(together, model.members()[0].head.weight.grad)


def test_a_grown_network_scores_as_the_trained_one_until_its_new_words_train():
    config = ModelConfig(vocab_size=30, embedding_dim=8, lstm_sizes=[6], members=2, pooling="max")
    trained = build_model(config).eval()
    grown = build_model(dataclasses.replace(config, vocab_size=45)).eval()
    grow_into(grown, trained.state_dict(), "src")
    tokens = torch.tensor([[3, 31, 44, 7], [40, 2, 0, 0]])  # ids 30 and up: words only the grown one knows
    lengths = torch.tensor([4, 2])
    as_trained_read_them = torch.where(tokens >= 30, UNKNOWN, tokens)
    torch.testing.assert_close(grown(tokens, lengths), trained(as_trained_read_them, lengths), rtol=0, atol=0)
    rows = grown.members()[0].embedding.weight
    assert torch.equal(rows[:30], trained.members()[0].embedding.weight) and torch.equal(rows[44], rows[UNKNOWN])


def test_growing_into_another_shape_is_one_clear_error():
    trained = build_model(ModelConfig(vocab_size=30, embedding_dim=8, lstm_sizes=[6]))
    for other in (ModelConfig(vocab_size=30, embedding_dim=8, lstm_sizes=[7]),
                  ModelConfig(vocab_size=20, embedding_dim=8, lstm_sizes=[6]),
                  ModelConfig(vocab_size=30, embedding_dim=8, lstm_sizes=[6], members=2)):
        with pytest.raises(StocksentError, match="src"):
            grow_into(build_model(other), trained.state_dict(), "src")
