"""docs/contributing.md, "Recipe: add a gateway": a gateway is one module of
src/authz/policy/gateways/, and each step of the recipe missed fails here."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import get_args

import pytest

from authz import config
from authz.policy import gateways, naming
from authz.policy.gateways.description import Description

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(
    p.stem
    for p in (ROOT / "src" / "authz" / "policy" / "gateways").glob("*.py")
    if p.stem not in ("__init__", "description")
)
GATEWAY_DOC = (ROOT / "docs" / "gateways.md").read_text()


@pytest.mark.parametrize("module", MODULES)
def test_step_1_each_module_declares_one_gateway_named_as_the_module(module):
    described = importlib.import_module(f"authz.policy.gateways.{module}").GATEWAY
    assert isinstance(described, Description)
    assert described.name == module and described.contract.profile == module


def test_step_2_the_registry_and_the_setting_list_every_gateway():
    names = [g.name for g in gateways.GATEWAYS]
    assert sorted(names) == MODULES, "list the module's GATEWAY in authz.policy.gateways.GATEWAYS"
    assert len(set(names)) == len(names)
    assert set(get_args(config.NamingProfile)) == set(names), "add the name to config.NamingProfile"


@pytest.mark.parametrize("described", gateways.GATEWAYS, ids=lambda g: g.name)
def test_step_3_the_docs_name_each_gateway(described):
    rows = [line for line in GATEWAY_DOC.splitlines() if line.startswith("|")]
    assert any(f"| `{described.name}` |" in row for row in rows), "a row in docs/gateways.md's table"
    if described.name != naming.NATIVE:  # our own spelling: the rows of gateways that use it say so
        assert re.search(rf"^## {re.escape(described.title)}$", GATEWAY_DOC, re.M), "a section in docs/gateways.md"


@pytest.mark.parametrize("described", gateways.GATEWAYS, ids=lambda g: g.name)
def test_step_4_each_gateway_has_its_own_unit_tests(described):
    for path in ("tests/unit/test_naming.py", "tests/unit/test_contracts.py"):
        assert f'"{described.name}"' in (ROOT / path).read_text(), f"{path} tests {described.name}"


@pytest.mark.parametrize("described", gateways.GATEWAYS, ids=lambda g: g.name)
def test_a_gateways_spelling_reads_back_what_it_suggests(described):
    # What a deny body suggests (naming.spell) is read back as the same provider (naming.resolve).
    providers = frozenset(described.spelling.providers.values())
    names = naming.Names(providers, frozenset({"m"}), {}, {})
    for provider in providers:
        spelled = naming.spell(provider, "m", described.name)
        assert naming.resolve(spelled, names, described.name) == (provider, "m"), spelled


def test_the_recipe_names_its_steps_and_this_test():
    recipe = (ROOT / "docs" / "contributing.md").read_text().split("## Recipe: add a gateway", 1)[1].split("\n## ")[0]
    for step in (
        "src/authz/policy/gateways/",
        "GATEWAYS",
        "NamingProfile",
        "docs/gateways.md",
        "test_gateway_recipe.py",
    ):
        assert step in recipe
