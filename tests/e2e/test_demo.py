"""`make demo` keeps working: run it and check it walked every step."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_demo_runs_end_to_end():
    result = subprocess.run([sys.executable, "-m", "devstack.demo"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "catalog.json, LLMGateway's published data) loaded" in out  # the shipped catalog
    assert "x-compliance-allowed-providers: deepinfra\n" in out
    assert '"code": "provider_not_compliant"' in out and '"evidence"' in out
    assert "HTTP 200: ['gpt-4o'" in out and "-F model=openai/gpt-image-2" in out
    assert '"code": "provider_not_compliant"' in out and "routing_enforcement = strict" in out
    assert "/v1/audio/transcriptions" in out and "Compliant alternatives: acme-whisper/whisper-large-v3" in out
    assert out.count("ok:") == 14 and "FAILED" not in out
