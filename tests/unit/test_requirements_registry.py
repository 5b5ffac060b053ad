"""The requirement registry is the one place a requirement is declared: everything else either
derives from it or is checked against it here, so a step of docs/contributing.md's "Add a
requirement" recipe that is skipped fails a test instead of silently weakening one."""

from __future__ import annotations

from pathlib import Path

import pytest

from authz.policy import requirements
from authz.policy import rules as policy_rules
from authz.v1 import catalog_pb2, policy_pb2
from support import generated, oracle

ROOT = Path(__file__).resolve().parents[2]
ATTRIBUTE_REQUIREMENTS = [r.name for r in requirements.ATTRIBUTE_REQUIREMENTS]


def test_names_are_unique_and_every_row_is_complete():
    names = [r.name for r in requirements.REQUIREMENTS]
    assert len(names) == len(set(names))
    for r in requirements.REQUIREMENTS:
        assert r.label and r.group, r.name
        assert (r.check is None) == bool(r.clause), f"{r.name}: a list rule has a clause, a data rule a check"
        assert r.check is None or r.attributes, f"{r.name}: name the DataPolicy fields the check reads"


@pytest.mark.parametrize("name", ATTRIBUTE_REQUIREMENTS)
def test_every_requirement_has_an_oracle_clause(name):
    assert name in oracle.CLAUSES, f"tests/oracle.py has no clause restating {name!r}"


@pytest.mark.parametrize("name", ATTRIBUTE_REQUIREMENTS)
def test_the_oracle_knows_which_policy_asks_for_it(name):
    """oracle.asked() restates which policy fields ask for each requirement: one policy per
    requirement must make the oracle ask for it."""
    r = requirements.BY_NAME[name]
    p = {f: False for f in generated.FLAGS} | {"certifications": 0, "allowed_countries": [], "data_residency": []}
    if r in requirements.FLAGGED:
        p[r.policy_field] = True
    elif r.policy_field:
        p[r.policy_field] = generated.VALUE_FIELD_CHOICES[r.policy_field][:1]
    else:  # derived: SOC 2 or ISO 27001 is both flags with certifications "any"
        p.update(require_soc2=True, require_iso27001=True, certifications=2)
    assert name in oracle.asked(p)
    assert name in policy_rules.rules_of(policy_pb2.CompliancePolicy(enabled=True, **p)).requirements


@pytest.mark.parametrize("name", ATTRIBUTE_REQUIREMENTS)
def test_every_attribute_a_requirement_reads_has_a_strategy(name):
    r = requirements.BY_NAME[name]
    for attribute in r.attributes:
        assert attribute in catalog_pb2.DataPolicy.DESCRIPTOR.fields_by_name, f"{name}: no DataPolicy.{attribute}"
        assert attribute in generated.ATTRIBUTE_CHOICES, f"tests/generated.py draws no values for {attribute!r}"


def test_every_policy_field_is_drawn_by_the_strategies():
    drawn = set(generated.FLAGS) | set(generated.VALUE_FIELD_CHOICES) | set(generated.ID_LIST_FIELDS)
    for r in requirements.REQUIREMENTS:
        if r.policy_field:
            assert r.policy_field in policy_pb2.CompliancePolicy.DESCRIPTOR.fields_by_name, r.name
            assert r.policy_field in drawn, f"tests/generated.py never sets {r.policy_field!r}"


def test_every_require_flag_of_the_policy_message_is_a_requirement():
    """A require_* field added to the proto without a registry row would be ignored by rules_of."""
    flags = {f.name for f in policy_pb2.CompliancePolicy.DESCRIPTOR.fields if f.type == f.TYPE_BOOL} - {"enabled"}
    assert flags == {r.policy_field for r in requirements.FLAGGED}


def test_every_requirement_is_documented():
    doc = (ROOT / "docs" / "policy.md").read_text()
    for r in requirements.REQUIREMENTS:
        assert f"`{r.name}`" in doc, f"docs/policy.md does not describe {r.name!r}"


def test_each_requirement_can_fail_unknown_and_not_met_and_pass():
    """Against the oracle: for every data requirement, some drawn data policy meets it, some
    leaves it unknown (fails closed), and the check and the oracle agree on each."""
    import itertools

    for r in requirements.ATTRIBUTE_REQUIREMENTS:
        values = policy_rules.Rules(
            requirements=frozenset({r.name}), countries=frozenset({"US"}), regions=frozenset({"us"})
        )
        causes = set()
        for combo in itertools.product(*(generated.ATTRIBUTE_CHOICES[a] for a in r.attributes)):
            attrs = dict(zip(r.attributes, combo, strict=True))
            dp = catalog_pb2.DataPolicy(**{k: v for k, v in attrs.items() if v not in (None, "")})
            cause = r.check(dp, values)
            p = {"allowed_countries": ["US"], "data_residency": ["us"]}
            assert (cause is None) == oracle.CLAUSES[r.name](attrs, p), (r.name, attrs, cause)
            causes.add(cause)
        assert causes == {None, requirements.UNKNOWN, requirements.NOT_MET}, r.name
        assert r.check(None, values) == requirements.UNKNOWN, f"{r.name}: no data policy must be unknown"
