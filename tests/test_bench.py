import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "padding.py"


def test_padding_benchmark_prints_its_table(tmp_path):
    out = tmp_path / "result.json"
    run = subprocess.run([sys.executable, str(BENCH), "--limit", "128", "--threads", "1", "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "padded to 244" in run.stdout and "bucketed" in run.stdout and "speed-up of bucketing" in run.stdout
    assert out.exists()
