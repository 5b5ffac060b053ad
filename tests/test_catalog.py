"""Catalog validation names the bad entry; the shipped sample meets what the demo needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from authz.catalog import CatalogError, parse

SAMPLE = Path(__file__).resolve().parents[1] / "catalog" / "sample-catalog.json"


def good() -> dict:
    return {
        "providers": {"a": {"name": "A", "data_policy": {"soc2": True}}, "b": {"name": "B"}},
        "models": {"m": {"providers": ["a", "b"]}},
    }


def test_sample_catalog_is_labelled_and_big_enough():
    cat = parse(SAMPLE.read_text())
    assert "SAMPLE DATA" in cat.description
    assert len(cat.providers) >= 8
    assert "deepseek" in cat.providers and "deepseek" in cat.models["deepseek-v3.2"].providers
    unknown = [
        (pid, attr)
        for pid, p in cat.providers.items()
        for attr in ("soc2", "iso27001", "gdpr", "trains_on_prompts", "logs_prompts")
        if not p.HasField("data_policy") or not p.data_policy.HasField(attr)
    ]
    assert len(unknown) >= 5
    # every published value says where it came from
    for pid, p in cat.providers.items():
        if p.HasField("data_policy"):
            for attr in ("soc2", "iso27001", "gdpr", "trains_on_prompts", "logs_prompts"):
                if p.data_policy.HasField(attr):
                    assert p.data_policy.evidence[attr].source, (pid, attr)


def test_ids_are_filled_from_keys():
    assert parse(json.dumps(good())).providers["a"].id == "a"


@pytest.mark.parametrize(
    ("mutate", "names"),
    [
        (lambda c: c["models"]["m"]["providers"].append("ghost"), ["'m'", "'ghost'"]),
        (lambda c: c["providers"]["a"]["data_policy"].update(soc2="yes"), ["providers[a]", "soc2"]),
        (lambda c: c["providers"]["a"].update(nme="x"), ["providers[a]", "nme"]),
        (lambda c: c["providers"].update({"Bad Id": {}}), ["'Bad Id'"]),
        (lambda c: c["models"].update({"a/m2": {"providers": ["a"]}}), ["'a/m2'", "provider id 'a'"]),
        (lambda c: c["models"].update({"m2": {"providers": []}}), ["'m2'", "no providers"]),
        (lambda c: c["models"].update({"m 3": {"providers": ["a"]}}), ["'m 3'"]),
        (lambda c: c["providers"]["b"].update(id="c"), ["'b'", "'c'"]),
        (lambda c: c["providers"]["a"]["data_policy"].update(evidence={"sox": {"source": "x"}}), ["'a'", "'sox'"]),
        (lambda c: c["models"]["m"]["providers"].append("a"), ["'m'", "twice"]),
        (lambda c: c.update(models={}), ["no models"]),
    ],
)
def test_errors_name_the_bad_entry(mutate, names):
    c = good()
    mutate(c)
    with pytest.raises(CatalogError) as err:
        parse(json.dumps(c))
    for name in names:
        assert name in str(err.value)


def test_not_json():
    with pytest.raises(CatalogError, match="not valid JSON"):
        parse("{")
