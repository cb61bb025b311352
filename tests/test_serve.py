import json
import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stocksent.classifier import SentimentClassifier
from stocksent.serving.serve import ServeConfig, create_app

LIMITS = {"max_texts": 16, "max_explain_texts": 4, "max_chars": 500, "max_body_bytes": 20_000}


@pytest.fixture(scope="module")
def client(trained_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve") / "model"
    shutil.copytree(trained_model, folder)
    with TestClient(create_app(ServeConfig(model_dir=str(folder), **LIMITS))) as client:
        yield client


def test_predict_in_order_with_label_probability_and_version(client, trained_model):
    texts = ["$SPY to the moon 🚀", "puts printing, crash incoming", "meh"]
    reply = client.post("/v1/predict", json={"texts": texts})
    assert reply.status_code == 200
    rows = reply.json()["predictions"]
    expected = SentimentClassifier.load(trained_model).positive_proba(texts)
    assert [r["prob_bullish"] for r in rows] == pytest.approx(expected.tolist(), abs=1e-6)
    assert [r["label"] for r in rows] == ["bullish" if p >= 0.5 else "bearish" for p in expected]
    assert len({r["model_version"] for r in rows}) == 1 and len(rows[0]["model_version"]) == 12


def test_model_health_and_ready(client):
    info = client.get("/v1/model").json()
    assert info["labels"] == ["bearish", "bullish"] and info["vocab_size"] > 100
    assert {"accuracy", "f1", "roc_auc"} <= set(info["test_metrics"]) and info["config"]["model"]
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_openapi_states_the_limits_and_the_error_bodies(client):
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {"/v1/predict", "/v1/explain", "/v1/model", "/healthz", "/readyz"}
    models = schema["components"]["schemas"]
    texts = [models[name]["properties"]["texts"] for name in ("PredictRequest", "ExplainRequest")]
    assert [field["maxItems"] for field in texts] == [16, 4]
    assert [field["items"]["maxLength"] for field in texts] == [500, 500]
    for path in ("/v1/predict", "/v1/explain"):
        assert {"200", "400", "413", "422"} <= set(schema["paths"][path]["post"]["responses"])


def test_explain_gives_each_token_its_effect_with_the_prediction(client, trained_model):
    texts = ["$SPY to the moon 🚀 moon", "puts printing, crash incoming", "?!"]
    explained = client.post("/v1/explain", json={"texts": texts}).json()["explanations"]
    predicted = client.post("/v1/predict", json={"texts": texts}).json()["predictions"]
    clf = SentimentClassifier.load(trained_model)
    for text, row, prediction in zip(texts, explained, predicted):
        assert {key: row[key] for key in prediction} == prediction
        expected = clf.explain(text, top=64, in_order=True)
        assert [t["token"] for t in row["tokens"]] == [token for token, _ in expected]
        assert sorted(expected, key=lambda te: -abs(te[1])) == clf.explain(text, top=64)
        assert [t["effect"] for t in row["tokens"]] == pytest.approx([e for _, e in expected], abs=1e-6)
    assert explained[2]["tokens"] == []  # nothing the model reads: a prediction, no tokens
    top = client.post("/v1/explain", json={"texts": texts, "top": 2.0}).json()["explanations"]
    strongest = [sorted(row["tokens"], key=lambda t: -abs(t["effect"]))[:2] for row in explained]
    assert [sorted(row["tokens"], key=lambda t: -abs(t["effect"])) for row in top] == strongest
    assert [t["token"] for t in top[0]["tokens"]] == [t["token"] for t in explained[0]["tokens"]
                                                      if t in top[0]["tokens"]]  # still in the message's order


def test_explain_has_its_own_lower_limit_checked_before_any_work(client):
    scored = _messages_scored(client)
    reply = client.post("/v1/explain", json={"texts": ["$AMD up"] * 5})
    assert reply.status_code == 413 and reply.json() == {"detail": "5 texts; at most 4 per request"}
    assert client.post("/v1/explain", json={"texts": ["a" * 501]}).status_code == 413
    assert _messages_scored(client) == scored
    assert client.post("/v1/predict", json={"texts": ["$AMD up"] * 5}).status_code == 200


def _messages_scored(client) -> float:
    line = next(line for line in client.get("/metrics").text.splitlines()
                if line.startswith("stocksent_messages_scored_total "))
    return float(line.split()[1])


@pytest.mark.parametrize("top", [0, 65, -1, 2.5, "3", True, None, [3]])
def test_explain_top_is_a_whole_number_from_1_to_64(client, top):
    reply = client.post("/v1/explain", json={"texts": ["calls"], "top": top})
    assert reply.status_code == 422 and reply.json()["detail"][0]["loc"] == ["body", "top"]


@pytest.mark.parametrize("body", ['{"texts": ', '{"texts": "one"}', '{"texts": [1, 2]}', '{"texts": []}',
                                  '{"text": ["a"]}', '{"texts": ["a"], "extra": 1}', "[]", "null"])
def test_malformed_requests_are_422(client, body):
    for path in ("/v1/predict", "/v1/explain"):
        reply = client.post(path, content=body, headers={"content-type": "application/json"})
        assert reply.status_code == 422 and reply.json()["detail"]


def test_a_body_that_is_not_utf8_is_422_with_a_reason(client):
    reply = client.post("/v1/predict", content=b'{"texts": ["\xff"]}', headers={"content-type": "application/json"})
    assert reply.status_code == 422 and reply.json() == {"detail": "the body is not valid UTF-8 JSON"}


def test_limits_are_413(client):
    assert client.post("/v1/predict", json={"texts": ["a"] * 17}).status_code == 413
    assert client.post("/v1/predict", json={"texts": ["a" * 501]}).status_code == 413
    big = json.dumps({"texts": ["a" * 400] * 60})
    assert client.post("/v1/predict", content=big, headers={"content-type": "application/json"}).status_code == 413
    chunks = (big[i:i + 1000].encode() for i in range(0, len(big), 1000))  # no Content-Length
    assert client.post("/v1/predict", content=chunks, headers={"content-type": "application/json"}).status_code == 413


def test_a_chunked_body_over_the_limit_is_413_while_it_is_read(client):
    # One text, so that neither the text count nor its length is what refuses it: the body is
    # cut off before it is parsed (the detail would otherwise name the 25,000 characters).
    big = json.dumps({"texts": ["a" * 25_000]})
    for path in ("/v1/predict", "/v1/explain"):
        chunks = (big[i:i + 1000].encode() for i in range(0, len(big), 1000))  # no Content-Length
        reply = client.post(path, content=chunks, headers={"content-type": "application/json"})
        assert reply.status_code == 413 and reply.json() == {"detail": "request body too large"}


def test_wrong_method_and_path(client):
    assert client.get("/v1/predict").status_code == 405
    assert client.post("/v2/predict", json={"texts": ["a"]}).status_code == 404


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: (st.lists(inner, max_size=4)
                                          | st.dictionaries(st.text(max_size=5), inner, max_size=4)),
                           max_leaves=12)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"texts": st.lists(st.text(max_size=600), max_size=20)})
        .map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"texts": st.lists(json_values, max_size=5)}).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"texts": st.lists(st.text(max_size=200), max_size=6)},
                          optional={"top": st.integers(-2, 70) | json_values}).map(lambda v: json.dumps(v).encode()),
    # Near and over the limits (16 texts, 4 to explain, 500 characters, 20,000 bytes).
    st.tuples(st.integers(10, 40), st.integers(300, 800))
        .map(lambda nc: json.dumps({"texts": ["x" * nc[1]] * nc[0]}).encode()),
)
FUZZ = 1600
SCORING = ("/v1/predict", "/v1/explain")


def test_fuzzed_requests_never_fail_the_server_and_reach_every_outcome(client):
    fuzzed = []

    @settings(max_examples=FUZZ, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE"]),
           path=st.sampled_from([*SCORING * 5, "/v1/model", "/healthz", "/readyz", "/v1/predict/", "/x"]),
           body=bodies)
    def send(method, path, body):
        reply = client.request(method, path, content=body, headers={"content-type": "application/json"})
        fuzzed.append((path, reply.status_code))
        assert reply.status_code in (200, 307, 404, 405, 413, 422), (method, path, body[:200], reply.text[:200])

    send()
    # It sent the full count, mostly to the two scoring routes, exercised every outcome on each,
    # and left the server answering. Two thirds of the paths drawn are scoring routes; Hypothesis
    # skips inputs it has already tried, so the count varies a little: half of FUZZ is a safe floor.
    assert sum(path in SCORING for path, _ in fuzzed) >= FUZZ // 2
    for route in SCORING:
        assert {200, 405, 413, 422} <= {status for path, status in fuzzed if path == route}
    assert {404} <= {status for _, status in fuzzed}
    assert client.post("/v1/explain", json={"texts": ["still up"]}).status_code == 200


def _padded(texts: list[str], size: int) -> bytes:
    """A /v1/predict body of exactly `size` bytes: the texts, then spaces before the closing brace."""
    body = json.dumps({"texts": texts})
    assert len(body) <= size
    return (body[:-1] + " " * (size - len(body)) + "}").encode()


def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_413(client):
    texts = ["$SPY to the moon " + "a" * 400] * 16  # as many texts as allowed, each within the length
    headers = {"content-type": "application/json"}
    reply = client.post("/v1/predict", content=_padded(texts, 20_000), headers=headers)
    assert reply.status_code == 200 and len(reply.json()["predictions"]) == 16
    reply = client.post("/v1/predict", content=_padded(texts, 20_001), headers=headers)
    assert reply.status_code == 413 and reply.json() == {"detail": "request body too large"}
    chunks = (piece for piece in [_padded(texts, 20_000)[:9_000], _padded(texts, 20_000)[9_000:]])  # no length
    assert client.post("/v1/predict", content=chunks, headers=headers).status_code == 200


def test_each_limit_is_inclusive(client):
    assert client.post("/v1/predict", json={"texts": ["a" * 500] * 16}).status_code == 200
    assert client.post("/v1/explain", json={"texts": ["a" * 500] * 4, "top": 1}).status_code == 200
    reply = client.post("/v1/predict", json={"texts": ["a" * 501]})
    assert reply.status_code == 413 and reply.json() == {"detail": "a text of 501 characters; at most 500"}
    reply = client.post("/v1/predict", json={"texts": ["a"] * 17})
    assert reply.status_code == 413 and reply.json() == {"detail": "17 texts; at most 16 per request"}


def test_a_probability_of_one_half_is_labelled_bullish_as_predict_labels_it(client, monkeypatch):
    classifier = client.app.state.classifier
    monkeypatch.setattr(classifier, "positive_proba", lambda texts: np.array([0.5, 0.49999, 0.50001][:len(texts)]))
    rows = client.post("/v1/predict", json={"texts": ["flat", "down", "up"]}).json()["predictions"]
    assert [(r["label"], r["prob_bullish"]) for r in rows] == [("bullish", 0.5), ("bearish", 0.49999),
                                                               ("bullish", 0.50001)]


@pytest.mark.parametrize("limit", ["max_texts", "max_explain_texts", "max_chars", "max_body_bytes"])
def test_a_limit_of_zero_is_refused(limit):
    from stocksent.errors import StocksentError

    with pytest.raises(StocksentError, match="limits must be positive"):
        ServeConfig(**{limit: 0})


class _Scorer:
    """Scores each text by its first character, and records how many texts each call scored."""

    def __init__(self):
        self.calls = []

    def positive_proba(self, texts):
        self.calls.append(len(texts))
        return np.array([ord(text[0]) / 1000 for text in texts])


@pytest.mark.parametrize("max_batch, calls", [(100, [6]), (2, [2, 4])])
def test_the_batcher_scores_queued_requests_together_and_gives_each_its_own(max_batch, calls):
    import asyncio

    from stocksent.serving.serve import Batcher

    scorer, batched = _Scorer(), []
    requests = [["a", "b"], ["c"], ["d", "e", "f"]]

    async def score_at_once():
        batcher = Batcher(scorer, max_batch, batched.append)
        loop = asyncio.create_task(batcher.run())
        try:
            return await asyncio.wait_for(asyncio.gather(*(batcher.score(texts) for texts in requests)), 10)
        finally:
            loop.cancel()

    results = asyncio.run(score_at_once())
    for texts, probs in zip(requests, results):
        assert probs.tolist() == [ord(text) / 1000 for text in texts]
    # Queued together: one call while it holds fewer than max_batch texts, and then it stops adding.
    assert scorer.calls == batched == calls


def test_a_request_cancelled_while_it_waits_leaves_the_batcher_serving_the_others():
    import asyncio

    from stocksent.serving.serve import Batcher

    async def cancel_one():
        batcher = Batcher(_Scorer(), 100)
        gone = asyncio.create_task(batcher.score(["a"]))
        kept = asyncio.create_task(batcher.score(["b"]))
        await asyncio.sleep(0)  # both queued
        gone.cancel()
        loop = asyncio.create_task(batcher.run())
        try:
            first = await asyncio.wait_for(kept, 10)
            later = await asyncio.wait_for(batcher.score(["c"]), 10)  # the loop still runs
            return first.tolist(), later.tolist()
        finally:
            loop.cancel()

    assert asyncio.run(cancel_one()) == ([ord("b") / 1000], [ord("c") / 1000])


LIVE_LIMIT = 2_000


@pytest.fixture(scope="module")
def uvicorn_port(trained_model):
    """A real uvicorn server on a free loopback port, running the app in a thread of this process
    with a body limit of LIVE_LIMIT bytes; stopped when the module's tests are done."""
    import socket
    import threading
    import time

    import uvicorn

    settings = ServeConfig(model_dir=str(trained_model), max_texts=16, max_explain_texts=8, max_chars=500,
                           max_body_bytes=LIVE_LIMIT)
    listening = socket.socket()
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield listening.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        listening.close()
    assert not thread.is_alive(), "uvicorn did not stop"


def _post_chunked(port: int, path: str, pieces: list[bytes]) -> tuple[int, dict]:
    """POST `pieces` as a chunked body over a socket, each piece sent on its own after a pause
    (so that the server reads it apart from the others), the last with the closing empty chunk."""
    import socket
    import time

    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode())
        for number, piece in enumerate(pieces, start=1):
            time.sleep(0.1)
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) + (b"0\r\n\r\n" if number == len(pieces) else b""))
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"content-length" in head.lower(), head  # a JSON answer in one piece
    return int(head.split()[1]), json.loads(body)


def _pieces(size: int, last: int) -> list[bytes]:
    """A body of `size` bytes (five texts a request may hold) in pieces of at most 400 bytes, the
    last `last` bytes long."""
    body = _padded(["$SPY calls " + "a" * 300] * 5, size)
    head = body[:-last]
    return [head[i:i + 400] for i in range(0, len(head), 400)] + [body[-last:]]


@pytest.mark.parametrize("path", ["/v1/predict", "/v1/explain"])
def test_a_live_server_adds_up_every_chunk_of_a_chunked_upload(uvicorn_port, path):
    # Over the limit only with its last piece, which alone is small: each piece is within it.
    pieces = _pieces(LIVE_LIMIT + 100, last=200)
    assert len(pieces) >= 5 and max(map(len, pieces)) < LIVE_LIMIT
    assert _post_chunked(uvicorn_port, path, pieces) == (413, {"detail": "request body too large"})
    status, reply = _post_chunked(uvicorn_port, path, _pieces(LIVE_LIMIT, last=200))  # exactly the limit
    assert status == 200 and len(reply["predictions" if path == "/v1/predict" else "explanations"]) == 5
