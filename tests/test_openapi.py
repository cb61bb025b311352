"""Schema truth: schemathesis generates requests from the live server's OpenAPI schema, valid and
invalid, and checks every answer against it (status codes, content types, bodies, headers)."""
import re
import subprocess
import sys

# A body over a limit the schema states (maxItems, maxLength) is refused with a 413, which
# schemathesis does not count as a rejection unless told.
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
"""
EXAMPLES = 500  # per operation, of which GET /v1/model, taking nothing, needs a handful


def test_every_response_matches_the_schema(live_server, tmp_path):
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    command = [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", "schemathesis.toml",
               "run", f"{live_server}/openapi.json", "--checks", "all", "--max-examples", str(EXAMPLES),
               "--include-path-regex", "^/v1/", "--generation-deterministic"]
    # In a folder of its own: schemathesis and hypothesis keep caches in the working directory.
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    report = result.stdout[-8000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "3 selected" in result.stdout, report  # /v1/predict, /v1/explain, /v1/model
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", result.stdout).groups())
    assert generated == passed >= 1000, report
