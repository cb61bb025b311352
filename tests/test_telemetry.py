import os
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from stocksent.classifier import SentimentClassifier
from stocksent.serving.serve import ServeConfig, create_app


def samples(families) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for family in families for s in family.samples}


def scraped(text: str) -> dict[tuple[str, frozenset], float]:
    return samples(text_string_to_metric_families(text))


def value(metrics: dict, name: str, /, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def client(trained_model):
    # An app of its own: its counts start at zero.
    with TestClient(create_app(ServeConfig(model_dir=str(trained_model), max_body_bytes=2000))) as client:
        yield client


def test_counts_requests_messages_and_batches(client, trained_model):
    for n in range(1, 6):  # 15 messages in 5 requests, one after another: 5 batches
        assert client.post("/v1/predict", json={"texts": ["$AAPL breaking out"] * n}).status_code == 200
    assert client.post("/v1/explain", json={"texts": ["calls", "puts"]}).status_code == 200
    assert client.post("/v1/predict", json={"texts": []}).status_code == 422
    assert client.post("/v1/predict", json={"texts": ["a" * 3000]}).status_code == 413  # refused by BodyLimit
    assert client.get("/v1/predict").status_code == 405
    for path in ("/nowhere", "/v1/predict/x", "/metrics/2"):
        assert client.get(path).status_code == 404
    reply = client.get("/metrics")
    assert reply.headers["content-type"].startswith("text/plain")
    metrics = scraped(reply.text)
    requests = "stocksent_requests_total"
    assert value(metrics, requests, route="/v1/predict", status="200") == 5
    assert value(metrics, requests, route="/v1/predict", status="422") == 1
    assert value(metrics, requests, route="/v1/predict", status="413") == 1
    assert value(metrics, requests, route="/v1/predict", status="405") == 1
    assert value(metrics, requests, route="/v1/explain", status="200") == 1
    assert value(metrics, requests, route="other", status="404") == 3  # one label for every unknown path
    assert value(metrics, "stocksent_request_seconds_count", route="/v1/predict") == 8
    assert value(metrics, "stocksent_messages_scored_total") == 17
    assert value(metrics, "stocksent_batch_size_count") == 6 and value(metrics, "stocksent_batch_size_sum") == 17
    assert value(metrics, "stocksent_batch_size_bucket", le="4.0") == 5  # 1, 2, 3, 4 and the explained 2
    version = SentimentClassifier.load(trained_model).version_
    assert value(metrics, "stocksent_model_info", name=trained_model.name, version=version, backend="torch") == 1


def test_metrics_are_out_of_the_schema(client):
    assert not {"/metrics", "/"} & set(client.get("/openapi.json").json()["paths"])


def test_counts_add_up_across_workers(start_server, trained_model, tmp_path):
    # TMPDIR puts the metrics folder `stocksent serve` makes where this test can read each worker's file.
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"} | {"TMPDIR": str(tmp_path)}
    url = start_server(trained_model, "--workers", "2", env=env)
    sent = 0
    for i in range(40):
        with httpx.Client() as fresh:  # a connection each: the two workers take turns accepting them
            texts = ["$TSLA calls printing"] * (i % 3 + 1)
            assert fresh.post(f"{url}/v1/predict", json={"texts": texts}).status_code == 200
            sent += len(texts)
    metrics = scraped(httpx.get(f"{url}/metrics").text)
    assert value(metrics, "stocksent_requests_total", route="/v1/predict", status="200") == 40
    assert value(metrics, "stocksent_messages_scored_total") == sent
    assert value(metrics, "stocksent_batch_size_sum") == sent
    version = SentimentClassifier.load(trained_model).version_
    assert value(metrics, "stocksent_model_info", name=trained_model.name, version=version, backend="torch") == 1
    (folder,) = tmp_path.glob("stocksent-metrics-*")
    per_worker = [value(samples(MultiProcessCollector.merge([str(f)])), "stocksent_requests_total",
                        route="/v1/predict", status="200") for f in Path(folder).glob("counter_*.db")]
    assert len(per_worker) == 2 and sum(per_worker) == 40 and min(per_worker) > 0, per_worker
