"""A small run of both fuzzers in `make test` (the documented run is 1M inputs: README)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
sys.path.insert(0, str(FUZZ))

import fuzz_check  # noqa: E402


def test_hypothesis_fuzz_small_run():
    fuzz_check.run(examples=300)


def test_atheris_fuzz_small_run(tmp_path):
    result = subprocess.run([sys.executable, str(FUZZ / "atheris_check.py"), "-runs=20000", "-max_len=1024",
                             f"-artifact_prefix={tmp_path}/"], capture_output=True, text=True, timeout=300,
                            cwd=FUZZ)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 20000 runs" in result.stderr
