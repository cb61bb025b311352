import json
import shutil

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stocksent.classifier import SentimentClassifier
from stocksent.serve import ServeConfig, create_app

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
fuzzed = []


@settings(max_examples=FUZZ, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE"]),
       path=st.sampled_from([*SCORING * 5, "/v1/model", "/healthz", "/readyz", "/v1/predict/", "/x"]),
       body=bodies)
def test_fuzzed_requests_never_fail_the_server(client, method, path, body):
    reply = client.request(method, path, content=body, headers={"content-type": "application/json"})
    fuzzed.append((path, reply.status_code))
    assert reply.status_code in (200, 307, 404, 405, 413, 422), (method, path, body[:200], reply.text[:200])


def test_fuzzing_covered_enough_requests(client):
    # Runs after the fuzz test in file order: it sent the full count, mostly to the two scoring
    # routes, exercised every outcome on each, and left the server answering.
    # Two thirds of the paths drawn are scoring routes; Hypothesis skips inputs it has already
    # tried, so the count varies a little with what ran before: half of FUZZ is a safe floor.
    assert sum(path in SCORING for path, _ in fuzzed) >= FUZZ // 2
    for route in SCORING:
        assert {200, 405, 413, 422} <= {status for path, status in fuzzed if path == route}
    assert {404} <= {status for _, status in fuzzed}
    assert client.post("/v1/explain", json={"texts": ["still up"]}).status_code == 200
