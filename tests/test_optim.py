import copy

import torch

from stocksent.config import ModelConfig, TrainConfig
from stocksent.nets.model import SentimentLSTM
from stocksent.training.optim import (
    LazyAdam,
    SparseAdadelta,
    SplitOptimizer,
    clip_gradients,
    layer_depth,
    learning_rate,
    make_optimizer,
    set_learning_rate,
)


def model_and_step(cfg: TrainConfig):
    torch.manual_seed(0)
    # No dropout: a mask that drops every unit the head reads would leave no gradient to apply.
    model = SentimentLSTM(ModelConfig(vocab_size=30, embedding_dim=4, lstm_sizes=[4], dropout=0.0))
    optimizer = make_optimizer(model, cfg)
    before = model.embedding.weight.detach().clone()
    logits = model(torch.tensor([[3, 4, 5]]), torch.tensor([3]))
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(1)).backward()
    clip_gradients(model, 1.0)
    optimizer.step()
    changed = (model.embedding.weight.detach() != before).any(dim=1).nonzero().flatten().tolist()
    return model, optimizer, changed


def test_sparse_embedding_moves_only_the_rows_in_the_batch():
    _, optimizer, changed = model_and_step(TrainConfig(optimizer="adamw", weight_decay=0.1, sparse_embedding=True))
    assert isinstance(optimizer, SplitOptimizer) and changed == [3, 4, 5]


def test_dense_adamw_decays_every_row():
    _, _, changed = model_and_step(TrainConfig(optimizer="adamw", weight_decay=0.1, sparse_embedding=False))
    assert len(changed) == 29  # all but the padding row, which has no gradient and starts at zero


def test_split_state_round_trips():
    model, optimizer, _ = model_and_step(TrainConfig(optimizer="adam", sparse_embedding=True))
    again = make_optimizer(model, TrainConfig(optimizer="adam", sparse_embedding=True))
    again.load_state_dict(optimizer.state_dict())
    assert again.state_dict()["sparse"]["state"][0]["step"] == 1


def test_adadelta_as_tensorflow():
    _, optimizer, _ = model_and_step(TrainConfig(optimizer="adadelta", lr=0.1))
    group = optimizer.param_groups[0]
    assert (group["lr"], group["rho"], group["eps"]) == (0.1, 0.95, 1e-8)


def test_sparse_adadelta_is_dense_adadelta_on_the_rows_it_touches():
    # One step from zero state: the rows in the batch move exactly as under dense Adadelta.
    dense_model, _, dense_changed = model_and_step(TrainConfig(optimizer="adadelta", lr=0.1))
    sparse_model, optimizer, changed = model_and_step(TrainConfig(optimizer="adadelta", lr=0.1, sparse_embedding=True))
    assert isinstance(optimizer.sparse, SparseAdadelta) and changed == [3, 4, 5] == dense_changed
    torch.testing.assert_close(sparse_model.embedding.weight, dense_model.embedding.weight)
    torch.testing.assert_close(sparse_model.head.weight, dense_model.head.weight)
    state = optimizer.sparse.state[sparse_model.embedding.weight]
    assert state["square_avg"][[0, 1, 2, 6]].abs().sum() == 0 and state["square_avg"][3].abs().sum() > 0


def test_lazy_adam_moves_the_rows_as_torch_s_sparse_adam_and_resumes_from_its_state():
    torch.manual_seed(0)
    start = torch.randn(40, 6)
    tables = [torch.nn.Embedding(40, 6, sparse=True) for _ in range(3)]
    for table in tables:
        table.weight.data.copy_(start)
    ours, torchs = LazyAdam([tables[0].weight], lr=0.01, eps=1e-8), torch.optim.SparseAdam([tables[1].weight], lr=0.01)
    for step in range(5):
        rows = torch.randint(0, 40, (3, 7))  # repeated rows within a batch: their gradients add up
        for table, optimizer in ((tables[0], ours), (tables[1], torchs)):
            optimizer.zero_grad()
            (table(rows) * torch.arange(6.0)).sum().backward()
            optimizer.step()
        if step == 2:  # resume the third from torch's state so far
            tables[2].weight.data.copy_(tables[1].weight.data)
            resumed = LazyAdam([tables[2].weight], lr=0.01, eps=1e-8)
            resumed.load_state_dict(copy.deepcopy(torchs.state_dict()))  # as read from a checkpoint
        elif step > 2:
            resumed.zero_grad()
            (tables[2](rows) * torch.arange(6.0)).sum().backward()
            resumed.step()
    torch.testing.assert_close(tables[0].weight, tables[1].weight)
    torch.testing.assert_close(tables[2].weight, tables[1].weight)
    untouched = (tables[0].weight == start).all(dim=1)
    assert untouched.any() and ours.state[tables[0].weight]["exp_avg"][untouched].abs().sum() == 0


def test_linear_schedule_falls_to_zero_and_reaches_both_halves():
    cfg = TrainConfig(optimizer="adamw", lr=0.01, sparse_embedding=True, schedule="linear")
    assert [learning_rate(cfg, step, 100) for step in (0, 50, 100)] == [0.01, 0.005, 0.0]
    assert learning_rate(TrainConfig(lr=0.01), 90, 100) == 0.01  # constant
    _, optimizer, _ = model_and_step(cfg)
    set_learning_rate(optimizer, 0.002)
    assert {g["lr"] for g in optimizer.sparse.param_groups + optimizer.dense.param_groups} == {0.002}


def test_layers_are_grouped_by_depth_below_the_head():
    names = ["head.weight", "bigrams.weight", "lstms.1.weight_hh_l0", "initial_states.1", "lstms.0.bias_ih_l0",
             "members.1.embedding.weight", "members.0.lstms.1.weight_ih_l0"]
    assert [layer_depth(name, 2) for name in names] == [0, 0, 1, 1, 2, 3, 1]


def test_layer_decay_scales_each_layer_and_warmup_rises_to_the_rate():
    cfg = TrainConfig(lr=0.01, layer_decay=0.5, sparse_embedding=True, warmup=0.1, schedule="linear")
    model, optimizer, _ = model_and_step(cfg)
    set_learning_rate(optimizer, 0.01)
    rates = {group["depth"]: group["lr"] for group in optimizer.param_groups}
    assert rates == {0: 0.01, 1: 0.005, 2: 0.0025}  # head, the LSTM, the embedding
    assert optimizer.sparse.param_groups[0]["params"][0] is model.embedding.weight
    assert [learning_rate(cfg, step, 100) for step in (0, 4, 9, 10, 55, 100)] == \
        [0.001, 0.005, 0.01, 0.01, 0.005, 0.0]


def test_gradual_unfreezing_stills_the_layers_below():
    model, optimizer, _ = model_and_step(TrainConfig(lr=0.01, sparse_embedding=True))
    set_learning_rate(optimizer, 0.01, unfrozen=1)  # the first epoch: the head only
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    logits = model(torch.tensor([[3, 4, 5]]), torch.tensor([3]))
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.zeros(1)).backward()
    optimizer.step()
    moved = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert moved == {"head.weight", "head.bias"}
