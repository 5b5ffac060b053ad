"""Arguments as operators write them: one-line refusals with an example, never a traceback."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from authz.cli.events import since_moment

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("written", "moment"),
    [
        ("1h", datetime(2026, 12, 7, 11, 0, tzinfo=UTC)),
        ("24h", datetime(2026, 12, 6, 12, 0, tzinfo=UTC)),
        ("7d", datetime(2026, 11, 30, 12, 0, tzinfo=UTC)),
        ("30m", datetime(2026, 12, 7, 11, 30, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01T09:00:00Z", datetime(2026, 12, 1, 9, tzinfo=UTC)),
        ("2026-12-01T10:00:00+01:00", datetime(2026, 12, 1, 9, tzinfo=UTC)),
        ("2026-11-25T09:00", datetime(2026, 11, 25, 9, tzinfo=UTC)),
    ],
)
def test_since_takes_durations_dates_and_times(written, moment):
    assert since_moment(written, NOW) == moment


@pytest.mark.parametrize("written", ["yesterday", "1 day", "-1h", "", "2026-13-01"])
def test_since_refuses_anything_else_with_an_example(written):
    with pytest.raises(argparse.ArgumentTypeError, match="write e.g. 24h, 7d, 2026-12-01"):
        since_moment(written, NOW)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"policy": {"require_gpdr": true}}', "unknown field 'require_gpdr' in policy; did you mean 'require_gdpr'?"),
        (b'{"polcy": {}}', "unknown field 'polcy'; did you mean 'policy'?"),
        (b'{"policy": {"require_gdpr": "yes"}}', "policy.require_gdpr: Expected true or false without quotes"),
        (
            b'{"policy": {"mode": "ENFORCED"}}',
            "policy.mode: 'ENFORCED' is not one of POLICY_MODE_UNSPECIFIED, POLICY_MODE_ENFORCE, POLICY_MODE_DRY_RUN",
        ),
    ],
)
def test_a_policy_field_is_named_as_written_with_the_one_meant(body, said):
    """protobuf's own message listed camelCase names; the admin API, the CLI and policy files
    answer in the names people write."""
    from google.protobuf import json_format

    from authz.admin.validation import parse_error_text
    from authz.v1 import admin_pb2

    with pytest.raises(json_format.ParseError) as raised:
        json_format.Parse(body, admin_pb2.SetPolicyRequest())
    assert parse_error_text(raised.value) == said


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("europe", "did you mean 'eu'?"),
        ("EU", "is written 'eu'"),
        ("eu-west-1", "it lies in 'eu'"),  # AWS
        ("westeurope", "it lies in 'eu'"),  # Azure
        ("us-central1", "it lies in 'us'"),  # Google Cloud
        ("mars", "is no processing region code (one of: "),
    ],
)
def test_a_residency_region_nothing_is_in_is_refused_with_the_code_meant(written, said):
    """`data_residency: [europe]` was accepted and would have blocked every provider."""
    from authz.admin.validation import AdminError, validate
    from authz.v1 import policy_pb2

    with pytest.raises(AdminError) as refused:
        validate(policy_pb2.CompliancePolicy(enabled=True, data_residency=[written]))
    assert said in str(refused.value) and str(refused.value).startswith("data_residency: ")
    validate(policy_pb2.CompliancePolicy(enabled=True, data_residency=["eu", "uk", "apac"]))  # codes pass
