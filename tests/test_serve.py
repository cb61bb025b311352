import json
import shutil

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stocksent.classifier import SentimentClassifier
from stocksent.serve import ServeConfig, create_app

LIMITS = {"max_texts": 16, "max_chars": 500, "max_body_bytes": 20_000}


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
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("body", ['{"texts": ', '{"texts": "one"}', '{"texts": [1, 2]}', '{"texts": []}',
                                  '{"text": ["a"]}', '{"texts": ["a"], "extra": 1}', "[]", "null"])
def test_malformed_requests_are_422(client, body):
    reply = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 422 and reply.json()["detail"]


def test_limits_are_413(client):
    assert client.post("/v1/predict", json={"texts": ["a"] * 17}).status_code == 413
    assert client.post("/v1/predict", json={"texts": ["a" * 501]}).status_code == 413
    big = json.dumps({"texts": ["a" * 400] * 60})
    assert client.post("/v1/predict", content=big, headers={"content-type": "application/json"}).status_code == 413
    chunks = (big[i:i + 1000].encode() for i in range(0, len(big), 1000))  # no Content-Length
    assert client.post("/v1/predict", content=chunks, headers={"content-type": "application/json"}).status_code == 413


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
    # Near and over the limits (16 texts, 500 characters, 20,000 bytes).
    st.tuples(st.integers(10, 40), st.integers(300, 800))
        .map(lambda nc: json.dumps({"texts": ["x" * nc[1]] * nc[0]}).encode()),
)
FUZZ = 1200
fuzzed = []


@settings(max_examples=FUZZ, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE"]),
       path=st.sampled_from(["/v1/predict", "/v1/model", "/healthz", "/readyz", "/v1/predict/", "/x"]),
       body=bodies)
def test_fuzzed_requests_never_fail_the_server(client, method, path, body):
    reply = client.request(method, path, content=body, headers={"content-type": "application/json"})
    fuzzed.append(reply.status_code)
    assert reply.status_code in (200, 307, 404, 405, 413, 422), (method, path, body[:200], reply.text[:200])


def test_fuzzing_covered_enough_requests():
    # Runs after the fuzz test in file order: it sent the full count, and exercised every outcome.
    assert len(fuzzed) >= 1000
    assert {200, 404, 405, 413, 422} <= set(fuzzed)
