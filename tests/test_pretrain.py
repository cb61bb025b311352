import csv
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY, write_csv
from stocksent.cli import main
from stocksent.config import ModelConfig
from stocksent.nets.lm import NextWordLSTM, initialise_from
from stocksent.nets.model import build_model
from stocksent.training.pretrain import load_pretrained

SHAPE = ["--embedding-dim", "16", "--lstm-sizes", "16", "8"]


@pytest.fixture(scope="module")
def texts_file(tmp_path_factory, real_rows):
    """Untagged text: real messages the slice's models never train on, as plain lines."""
    path = tmp_path_factory.mktemp("text") / "untagged.txt"
    path.write_text("\n".join(" ".join(r["message"].split()) for r in real_rows[40000:42000]) + "\n")
    return path


def _pretrain(out, text, *extra):
    return main(["pretrain", "--text", str(text), "--out", str(out), *SHAPE, "--threads", "1", *extra])


def test_pretrain_writes_a_readable_directory_and_learns(texts_file, tmp_path, capsys):
    table = tmp_path / "texts.csv"
    with table.open("w", newline="") as handle:
        csv.writer(handle).writerows([["body"], *([line] for line in texts_file.read_text().splitlines())])
    assert _pretrain(tmp_path / "lm", table, "--text-column", "body", "--epochs", "2") == 0
    captured = capsys.readouterr()
    epochs = [line for line in captured.err.splitlines() if line.startswith("epoch")]
    assert len(epochs) == 2 and "perplexity" in epochs[0]
    assert "stocksent train --init" in captured.out
    history = json.loads((tmp_path / "lm" / "history.json").read_text())
    assert history[1]["val_loss"] < history[0]["val_loss"]  # it learns something of the text
    vocab = json.loads((tmp_path / "lm" / "vocab.json").read_text())["tokens"]
    assert history[1]["val_perplexity"] < len(vocab)  # better than a guess among every word
    pretrained = load_pretrained(tmp_path / "lm")
    assert pretrained.model.embedding_dim == 16 and len(pretrained.vocab) == len(vocab)
    assert set(pretrained.body) >= {"embedding.weight", "lstms.0.weight_ih_l0", "lstms.1.weight_hh_l0"}
    assert not any(name.startswith("head.") for name in pretrained.body)
    assert set(load_file(tmp_path / "lm" / "model.safetensors")) >= {f"body.{n}" for n in pretrained.body}


def test_pretrain_resumes_to_the_same_weights(texts_file, tmp_path):
    assert _pretrain(tmp_path / "full", texts_file, "--epochs", "2") == 0
    assert _pretrain(tmp_path / "part", texts_file, "--epochs", "1") == 0
    assert _pretrain(tmp_path / "part", texts_file, "--epochs", "2", "--resume") == 0
    full, part = (load_file(tmp_path / name / "model.safetensors") for name in ("full", "part"))
    assert all(torch.equal(full[name], part[name]) for name in full)
    assert _pretrain(tmp_path / "part", texts_file, "--epochs", "2") == 1  # refused without --force


def test_a_resumed_pretraining_keeps_its_settings(texts_file, tmp_path, capsys):
    assert _pretrain(tmp_path / "lm", texts_file, "--epochs", "1", "--seed", "7") == 0
    capsys.readouterr()
    assert _pretrain(tmp_path / "lm", texts_file, "--epochs", "2", "--resume") == 1  # --seed 7 left out
    err = capsys.readouterr().err.strip()
    assert err.endswith("seed cannot change on --resume (the checkpoint has 7, this command 42); "
                        "only device, epochs, threads may")
    assert _pretrain(tmp_path / "lm", texts_file, "--epochs", "2", "--seed", "7", "--threads", "2", "--resume") == 0


def test_a_classifier_starts_from_the_pretrained_layers(texts_file, tmp_path):
    assert _pretrain(tmp_path / "lm", texts_file, "--epochs", "1") == 0
    pretrained = load_pretrained(tmp_path / "lm")
    model = build_model(ModelConfig(**{**pretrained.model.__dict__, "members": 2}))
    initialise_from(model, pretrained.body, "lm")
    for member in model.members():
        state = member.state_dict()
        assert all(torch.equal(state[name], tensor) for name, tensor in pretrained.body.items())
    heads = [member.head.weight for member in model.members()]
    assert not torch.equal(*heads)  # what is not pretrained keeps each member's own initialisation


def test_train_init_and_unlabelled(texts_file, data_slice, tmp_path, capsys):
    assert _pretrain(tmp_path / "lm", texts_file, "--epochs", "1") == 0
    out = tmp_path / "clf"
    assert main(["train", "--data", str(data_slice), "--out", str(out), *TINY, "--init", str(tmp_path / "lm")]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["init"] == str(tmp_path / "lm") and "init" not in config["train"]
    assert json.loads((out / "vocab.json").read_text()) == json.loads((tmp_path / "lm" / "vocab.json").read_text())
    capsys.readouterr()
    adapted = tmp_path / "adapted"
    command = ["train", "--data", str(data_slice), "--out", str(adapted), *TINY, "--unlabelled", str(texts_file),
               "--pretraining", "next-word"]
    assert main(command) == 0
    assert "pretraining (next-word) on 2400 training messages and 2000 from" in capsys.readouterr().err
    assert (adapted / "pretrained" / "model.safetensors").is_file()
    assert main([*command, "--force"]) == 0  # the same text and settings: pretrained once
    assert "pretrained before on the same text and settings; reused" in capsys.readouterr().err
    assert main([*command, "--epochs", "3", "--resume"]) == 0  # the same command retyped continues the run
    err = capsys.readouterr().err
    assert "resuming after epoch 2 of 3" in err and "pretraining on" not in err


def test_fit_pretrains_on_unlabelled_text_first(real_rows):
    from stocksent import SentimentClassifier

    rows = real_rows[:600]
    texts, labels = [r["message"] for r in rows], [r["sentiment"] for r in rows]
    untagged = [r["message"] for r in real_rows[50000:51500]]
    small = dict(embedding_dim=16, lstm_sizes=[16], batch_size=64, epochs=1, min_freq=1, threads=1)
    plain = SentimentClassifier(**small).fit(texts, labels)
    adapted = SentimentClassifier(**small).fit(texts, labels, unlabelled=untagged)
    only_untagged = set(adapted.vocab.itos) - set(plain.vocab.itos)
    assert only_untagged  # words of the untagged text are in the vocabulary it learned
    assert adapted.predict_proba(untagged[:5]).shape == (5, 2)
    assert 0.4 < adapted.score(texts, labels) <= 1


def test_pretraining_mistakes_are_one_line(tmp_path, trained_model, data_slice, capsys):
    def fails(argv, match):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("stocksent: error:") and match in err and "\n" not in err

    fails(["pretrain", "--text", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "a")], "not found")
    (tmp_path / "one.txt").write_text("moon\n")
    fails(["pretrain", "--text", str(tmp_path / "one.txt"), "--out", str(tmp_path / "b")], "too little text")
    fails(["pretrain", "--text", str(tmp_path / "one.txt"), "--out", str(tmp_path / "c"), "--held-out", "0.9"],
          "held_out must be in")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"kind": "something else"}')
    fails(["train", "--data", str(data_slice), "--out", str(tmp_path / "d"), "--init", str(tmp_path / "other")],
          "is neither a pretrained language model (stocksent pretrain) nor a trained classifier")
    fails(["train", "--data", str(data_slice), "--out", str(tmp_path / "f"), "--init", str(tmp_path / "a"),
           "--unlabelled", str(tmp_path / "one.txt")], "not both")
    rows = write_csv(tmp_path / "rows.csv", [{"message": "a b"}, {"message": "c d"}], ["message"])
    fails(["pretrain", "--text", str(rows), "--text-column", "body", "--out", str(tmp_path / "e")], "no column 'body'")


def test_only_the_layers_a_language_model_trains_carry_over():
    from stocksent.nets.lm import body_state

    model = NextWordLSTM(ModelConfig(vocab_size=50, embedding_dim=8, lstm_sizes=[8], bigram_buckets=16), [10])
    carried = body_state(model.state_dict())
    assert "embedding.weight" in carried and not any(n.startswith(("bigrams.", "head.")) for n in carried)


def test_the_language_model_scores_only_words_that_have_a_next_word():
    torch.manual_seed(0)
    model = NextWordLSTM(ModelConfig(vocab_size=50, embedding_dim=8, lstm_sizes=[8]), [10, 30]).eval()
    tokens = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0], [4, 0, 0, 0]])
    nll, words = model(tokens, torch.tensor([3, 2, 1]))
    assert float(words) == 3  # 6, 7 after the first message's words; 9 after the second's
    alone, _ = model(tokens[:1, :3], torch.tensor([3]))
    second, _ = model(tokens[1:2, :2], torch.tensor([2]))
    assert float(nll) == pytest.approx(float(alone + second), rel=1e-5)  # padding changes nothing
    assert np.isfinite(float(nll))


def test_word2vec_pretrains_the_embedding_alone(texts_file, real_rows, tmp_path, capsys):
    from stocksent import SentimentClassifier

    assert _pretrain(tmp_path / "w2v", texts_file, "--objective", "word2vec", "--epochs", "2") == 0
    captured = capsys.readouterr()
    assert "perplexity" not in captured.out + captured.err  # a skip-gram loss is no word's probability
    history = json.loads((tmp_path / "w2v" / "history.json").read_text())
    assert history[1]["val_loss"] < history[0]["val_loss"]
    pretrained = load_pretrained(tmp_path / "w2v")
    assert set(pretrained.body) == {"embedding.weight"}
    rows = real_rows[:300]
    clf = SentimentClassifier(init=str(tmp_path / "w2v"), epochs=1, threads=1, layer_decay=1e-6)
    clf.fit([r["message"] for r in rows], [r["sentiment"] for r in rows])
    assert clf.vocab.itos == pretrained.vocab.itos
    members = clf.predictor_.network.members()
    torch.testing.assert_close(members[0].embedding.weight, pretrained.body["embedding.weight"])
    assert not torch.equal(members[0].lstms[0].weight_ih_l0, members[1].lstms[0].weight_ih_l0)


def test_word2vec_repeats_on_one_thread_and_trains_the_unknown_word(texts_file, tmp_path):
    for name in ("a", "b"):
        assert _pretrain(tmp_path / name, texts_file, "--objective", "word2vec", "--epochs", "2") == 0
    first, second = (load_pretrained(tmp_path / name) for name in ("a", "b"))
    table = first.body["embedding.weight"]
    assert torch.equal(table, second.body["embedding.weight"])  # gensim seeded, one worker, stable hashes
    assert not table[0].any()  # padding
    # Words seen once are the unknown word to the vocabulary and to gensim alike, so its row is
    # trained as theirs rather than left at its random start.
    untrained = np.random.default_rng(42).normal(0.0, 16 ** -0.5, tuple(table.shape)).astype(np.float32)
    assert not np.allclose(table[1].numpy(), untrained[1])


def test_fit_starts_from_a_pretrained_model_or_pretrains_not_both(texts_file, real_rows, tmp_path):
    from stocksent import SentimentClassifier
    from stocksent.errors import StocksentError

    assert _pretrain(tmp_path / "lm", texts_file, "--epochs", "1") == 0
    texts, labels = [r["message"] for r in real_rows[:300]], [r["sentiment"] for r in real_rows[:300]]
    clf = SentimentClassifier(init=str(tmp_path / "lm"), epochs=1, threads=1).fit(texts, labels)
    assert clf.config.model.lstm_sizes == [16, 8] and clf.config.run.init == str(tmp_path / "lm")
    with pytest.raises(StocksentError, match="not both"):
        SentimentClassifier(init=str(tmp_path / "lm")).fit(texts, labels, unlabelled=texts)


def test_train_unlabelled_with_word2vec(texts_file, data_slice, tmp_path):
    out = tmp_path / "w2v"
    command = ["train", "--data", str(data_slice), "--out", str(out), *TINY, "--unlabelled", str(texts_file),
               "--pretraining", "word2vec"]
    assert main(command) == 0
    saved = json.loads((out / "pretrained" / "config.json").read_text())
    assert saved["pretrain"]["objective"] == "word2vec" and saved["pretrain"]["epochs"] == 5
    assert set(load_pretrained(out / "pretrained").body) == {"embedding.weight"}
    assert json.loads((out / "config.json").read_text())["train"]["pretraining"] == "word2vec"
    assert main([*command, "--pretraining", "bigram", "--force"]) == 1


def test_a_recipe_that_pretrains_does_so_on_its_own_training_text(data_slice, real_rows, tmp_path, capsys):
    from stocksent import SentimentClassifier

    out = tmp_path / "seeds"
    command = ["train", "--data", str(data_slice), "--out", str(out), *TINY, "--pretraining", "word2vec",
               "--seeds", "1", "2"]
    assert main(command) == 0
    err = capsys.readouterr().err
    assert err.count("pretraining (word2vec) on 2400 training messages\n") == 2  # no other text: none named
    first, second = (load_pretrained(out / f"seed-{n}" / "pretrained") for n in (1, 2))
    assert first.vocab.itos != second.vocab.itos  # each seed's own training split
    saved = json.loads((out / "seed-2" / "config.json").read_text())
    assert saved["train"]["pretraining"] == "word2vec" and saved["run"]["init"] == str(out / "seed-2" / "pretrained")
    assert main([*command, "--resume"]) == 0 and "finished before" in capsys.readouterr().err
    rows = real_rows[:300]
    SentimentClassifier(pretraining="word2vec", epochs=1, threads=1, verbose=True).fit(
        [r["message"] for r in rows], [r["sentiment"] for r in rows])
    assert "pretraining on" in capsys.readouterr().err
