"""Load test of `stocksent serve`: start the server on loopback, drive it with wrk, print a table.

    python bench/load.py MODEL_DIR [--seconds 20] [--clients 32] [--workers 2] [--backends torch onnx]

For each backend: single-text requests and 256-text requests to /v1/predict, and /v1/explain
requests of one 13-word message, each from --clients concurrent connections for --seconds,
cycling through real messages of the test split; reports requests/s, messages/s, p50 / p99
latency, and every non-2xx response or socket error, and checks the server is still the same
process at the end. Then it reads /metrics and sets the requests the server counted per route
beside those wrk completed (the server also counts the few still in flight when wrk stops).
Needs wrk (`apt-get install wrk`); the onnx backend needs
MODEL_DIR/model.onnx (`stocksent export MODEL_DIR --onnx`).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from stocksent.classifier import SentimentClassifier
from stocksent.data.corpus import load_corpus
from stocksent.data.dataset import find_data

BATCH = 256


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: str, backend: str, workers: int, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "stocksent.cli", "serve", model_dir, "--port", str(port),
           "--workers", str(workers), "--backend", backend, "--threads", "1"]
    server = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"server failed to start: {server.stderr.read().strip()[-500:]}")
            time.sleep(0.2)
    raise SystemExit("server did not become ready in 120 s")


def lua_script(bodies: list[str], path: Path, route: str = "/v1/predict") -> Path:
    items = ",\n".join(f"[==[{b}]==]" for b in bodies)
    path.write_text(f"""local bodies = {{{items}}}
local i = 0
local headers = {{["Content-Type"] = "application/json"}}
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "{route}", headers, bodies[i])
end
""")
    return path


def run_wrk(port: int, script: Path, clients: int, seconds: int) -> dict:
    out = subprocess.run(["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency", "--timeout", "30s",
                          "-s", str(script), f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, check=True).stdout
    def grab(pattern: str, default: str = "0") -> str:
        found = re.search(pattern, out)
        return found.group(1) if found else default
    return {"requests_per_s": float(grab(r"Requests/sec:\s+([\d.]+)")),
            "p50_ms": _ms(grab(r"\s50%\s+([\d.]+\w+)")), "p99_ms": _ms(grab(r"\s99%\s+([\d.]+\w+)")),
            "requests": int(grab(r"(\d+) requests in")),
            "non_2xx": int(grab(r"Non-2xx or 3xx responses:\s+(\d+)")),
            "socket_errors": sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)",
                                                            grab(r"Socket errors:(.*)", "")))}


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups() if value != "0" else ("0", "ms")
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx"])
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench/load.py needs wrk: apt-get install wrk")
    clf = SentimentClassifier.load(args.model_dir)
    corpus = load_corpus(find_data(), clf.config.data, clf.config.preprocess)
    texts = [corpus.texts[i] for i in corpus.split(clf.config.data)["test"]]
    results, counted = [], []
    with tempfile.TemporaryDirectory() as tmp:
        single = lua_script([json.dumps({"texts": [t]}) for t in texts[:2000]], Path(tmp) / "single.lua")
        words13 = [t for t in texts if len(t.split()) == 13][:2000]
        explain = lua_script([json.dumps({"texts": [t]}) for t in words13], Path(tmp) / "explain.lua", "/v1/explain")
        batched = lua_script([json.dumps({"texts": texts[i:i + BATCH]}) for i in range(0, 20 * BATCH, BATCH)],
                             Path(tmp) / "batch.lua")
        for backend in args.backends:
            port = free_port()
            server = start_server(args.model_dir, backend, args.workers, port)
            try:
                runs = (("1 text", single, 1, "/v1/predict"), (f"{BATCH} texts", batched, BATCH, "/v1/predict"),
                        ("explain", explain, 1, "/v1/explain"))
                for name, script, per, route in runs:
                    r = run_wrk(port, script, args.clients, args.seconds)
                    results.append({"backend": backend, "request": name, "route": route,
                                    "messages_per_s": r["requests_per_s"] * per, **r})
                alive = server.poll() is None
                counted.append({"backend": backend, **served_counts(port, results[-len(runs):])})
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
            for r in results[-len(runs):]:
                r["server_alive"] = alive
    print(f"{args.clients} concurrent connections, {args.seconds} s each, {args.workers} worker(s), "
          f"1 thread each; {os.cpu_count()} CPUs; server and wrk on the same machine")
    print(f"{'backend':<8}{'request':<11}{'req/s':>9}{'msg/s':>10}"
          f"{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}  server alive")
    for r in results:
        print(f"{r['backend']:<8}{r['request']:<11}{r['requests_per_s']:>9.0f}{r['messages_per_s']:>10.0f}"
              f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['non_2xx'] + r['socket_errors']:>8}  {r['server_alive']}")
    print(f"{'backend':<8}{'route':<13}{'wrk completed':>14}{'server counted':>15}")
    for c in counted:
        for route in ("/v1/predict", "/v1/explain"):
            print(f"{c['backend']:<8}{route:<13}{c['wrk'][route]:>14}{c['server'][route]:>15}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "metrics": counted}, indent=2))


def served_counts(port: int, runs: list[dict]) -> dict:
    """Requests per route as /metrics counts them (every status), beside those wrk completed."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    server = {}
    for route in ("/v1/predict", "/v1/explain"):
        pattern = rf'^stocksent_requests_total{{[^}}]*route="{re.escape(route)}"[^}}]*}} ([\d.e+]+)$'
        server[route] = int(sum(float(n) for n in re.findall(pattern, text, re.M)))
    wrk = {route: sum(r["requests"] for r in runs if r["route"] == route) for route in server}
    return {"server": server, "wrk": wrk}


if __name__ == "__main__":
    main()
