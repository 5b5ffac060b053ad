"""Catalog validation names the bad entry; the shipped sample meets what the demo needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from authz.policy.catalog import CatalogError, CatalogIndex, parse

SAMPLE = Path(__file__).resolve().parents[2] / "catalog" / "sample-catalog.json"


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


def test_diff_names_every_kind_of_change():
    from authz.policy.catalog import diff

    old = parse(
        json.dumps(
            {
                "providers": {
                    "a": {"name": "A", "data_policy": {"gdpr": True}},
                    "b": {"name": "B"},
                    "gone": {"name": "G"},
                },
                "models": {
                    "m": {"providers": ["a"]},
                    "same": {"providers": ["b"], "deactivated": [{"provider": "a", "at": "2026-01-01T00:00:00Z"}]},
                    "old": {"providers": ["gone"]},
                },
            }
        )
    )
    new = parse(
        json.dumps(
            {
                "providers": {
                    "a": {"name": "A2", "data_policy": {"gdpr": False}},
                    "b": {"name": "B"},
                    "new": {"name": "N"},
                },
                "models": {
                    "m": {"providers": ["a", "b"]},
                    "same": {
                        "providers": ["b"],
                        "deactivated": [
                            {"provider": "a", "at": "2026-01-01T00:00:00Z"},
                            {"provider": "new", "at": "2026-12-31T00:00:00Z"},
                        ],
                    },
                    "fresh": {"providers": [], "deactivated": [{"provider": "new", "at": "2026-06-01T00:00:00Z"}]},
                },
            }
        )
    )
    assert diff(old, new) == {
        "providers_added": ["new"],
        "providers_removed": ["gone"],
        "providers_changed": {"a": {"before": {"gdpr": True}, "after": {"gdpr": False}}},
        "models_added": ["fresh"],
        "models_removed": ["old"],
        "models_changed": ["m"],
        # only what the old catalog did not deactivate yet, a mapping ending later included
        "mappings_deactivated": [
            {"model": "fresh", "provider": "new", "at": "2026-06-01T00:00:00Z"},
            {"model": "same", "provider": "new", "at": "2026-12-31T00:00:00Z"},
        ],
    }
    first = diff(None, new)
    assert first["providers_added"] == ["a", "b", "new"] and first["providers_changed"] == {}
    assert first["models_added"] == ["fresh", "m", "same"] and first["models_removed"] == []


def test_to_json_is_compact_and_round_trips():
    from authz.policy.catalog import to_json

    catalog = parse(SAMPLE.read_text())
    text = to_json(catalog)
    assert "\n" not in text and '"data_policy"' in text  # field names as in the files people write
    assert parse(text) == catalog


@pytest.mark.parametrize(
    ("data_policy", "message"),
    [
        ({"evidence": {"made_up": {"source": "x"}}}, "provider 'p': evidence for unknown attribute 'made_up' (known: "),
        (
            {"headquarters_country": "us"},
            "provider 'p': headquarters_country 'us' is not an ISO 3166-1 alpha-2 code in upper case (e.g. 'US', 'FR')",
        ),
        (
            {"soc2": True, "soc2_report": "SOC2_REPORT_NONE"},
            "provider 'p': soc2 is true but soc2_report is SOC2_REPORT_NONE; make them agree",
        ),
    ],
)
def test_data_policy_mistakes_are_named_exactly(data_policy, message):
    with pytest.raises(CatalogError) as refused:
        parse(
            json.dumps(
                {"providers": {"p": {"name": "P", "data_policy": data_policy}}, "models": {"m": {"providers": ["p"]}}}
            )
        )
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "catalog must be a JSON object with 'providers' and 'models'"),
        ({"providers": {}, "models": {"m": {"providers": ["p"]}}}, "catalog has no providers"),
        ({"providers": {"p": {"name": "P"}}, "models": {}}, "catalog has no models"),
        (
            {"providers": {"p": {"name": "P"}}, "models": {"p/x/y": {"providers": ["p"]}}},
            "model id 'p/x/y' starts with provider id 'p'/; it would read as a pinned request. List the model without "
            "the provider prefix",
        ),
    ],
)
def test_catalog_mistakes_are_named_exactly(document, message):
    with pytest.raises(CatalogError) as refused:
        parse(json.dumps(document))
    assert str(refused.value) == message


def test_unknown_evidence_lists_the_known_attributes():
    with pytest.raises(CatalogError) as refused:
        parse(
            json.dumps(
                {
                    "providers": {"p": {"name": "P", "data_policy": {"evidence": {"x": {"source": "s"}}}}},
                    "models": {"m": {"providers": ["p"]}},
                }
            )
        )
    assert str(refused.value) == (
        "provider 'p': evidence for unknown attribute 'x' (known: gdpr, headquarters_country, iso27001, iso42001, "
        "legal_entity, logs_prompts, processing_regions, prompt_retention_days, soc2, soc2_report, stealth, "
        "trains_on_prompts)"
    )


def test_diff_uses_the_field_names_people_write():
    from authz.policy.catalog import diff

    def catalog(trains: bool):
        return parse(
            json.dumps(
                {
                    "providers": {"p": {"name": "P", "data_policy": {"trains_on_prompts": trains}}},
                    "models": {"m": {"providers": ["p"]}},
                }
            )
        )

    assert diff(catalog(False), catalog(True))["providers_changed"] == {
        "p": {"before": {"trains_on_prompts": False}, "after": {"trains_on_prompts": True}}
    }


def test_the_index_keeps_the_catalog_version():
    from authz.policy.catalog import CatalogIndex

    catalog = parse(SAMPLE.read_text())
    catalog.version = 7
    assert CatalogIndex.build(catalog).version == 7


@pytest.mark.wall_clock
def test_catalog_age_warns_past_the_configured_age_and_when_unknown():
    from authz.policy.catalog import age_warning, published_epoch

    day = 86400.0
    fresh = CatalogIndex(version=3, providers={}, models={}, published_at=published_epoch("2026-11-01"))
    now = published_epoch("2026-11-26") or 0.0
    assert age_warning(fresh, 90, now) is None
    old = age_warning(fresh, 10, now)
    assert old and "v3 was compiled 25 days ago (catalog_max_age_days = 10)" in old and "authz catalog load" in old
    undated = CatalogIndex(version=4, providers={}, models={})
    assert "does not say when its facts were compiled (published_at)" in (age_warning(undated, 90, now) or "")
    assert published_epoch("2026-11-26T12:00:00Z") == now + day / 2


@pytest.mark.wall_clock
@pytest.mark.parametrize(
    "now",
    ["2026-11-26T00:00:00Z", "2026-11-26T11:59:00Z", "2026-11-26T12:01:00Z", "2026-11-26T23:59:59Z"],
)
def test_catalog_age_counts_whole_days_elapsed_at_any_hour(now):
    """The age is the same from midnight to 23:59:59 (issue 25: "201 days" after noon)."""
    from authz.policy.catalog import age_warning, published_epoch

    index = CatalogIndex(version=1, providers={}, models={}, published_at=published_epoch("2026-05-10"))
    warning = age_warning(index, 120, published_epoch(now) or 0.0)
    assert warning and "was compiled 200 days ago" in warning
    assert age_warning(index, 200, published_epoch(now) or 0.0) is None  # exactly 200 whole days is not past 200


@pytest.mark.wall_clock
@pytest.mark.parametrize(
    ("published", "now", "days"),
    [("2026-01-31", "2026-02-28T23:59:59Z", 28), ("2026-12-31T23:00:00Z", "2027-01-01T22:59:59Z", 0)],
)
def test_catalog_age_across_month_and_year_ends(published, now, days):
    from authz.policy.catalog import age_warning, published_epoch

    index = CatalogIndex(version=1, providers={}, models={}, published_at=published_epoch(published))
    at = published_epoch(now) or 0.0
    if days:
        assert f"compiled {days} days ago" in (age_warning(index, days - 1, at) or "")
    assert age_warning(index, days, at) is None


def test_an_unreadable_published_at_is_refused():
    with pytest.raises(CatalogError, match="published_at 'last week' is not an ISO 8601 date"):
        parse(
            json.dumps(
                {"published_at": "last week", "providers": {"p": {"name": "P"}}, "models": {"m": {"providers": ["p"]}}}
            )
        )


def test_a_model_needs_a_provider_or_a_deactivated_one_and_dates_must_read():
    base = {"providers": {"a": {"name": "A"}}}
    parse(json.dumps({**base, "models": {"m": {"deactivated": [{"provider": "a", "at": "2026-01-01T00:00:00Z"}]}}}))
    with pytest.raises(CatalogError, match="lists no providers"):
        parse(json.dumps({**base, "models": {"m": {}}}))
    with pytest.raises(CatalogError, match="not an ISO 8601 date-time"):
        parse(
            json.dumps(
                {**base, "models": {"m": {"providers": ["a"], "deactivated": [{"provider": "a", "at": "soon"}]}}}
            )
        )
    with pytest.raises(CatalogError, match="unknown provider 'b'"):
        parse(
            json.dumps(
                {**base, "models": {"m": {"providers": ["a"], "deactivated": [{"provider": "b", "at": "2026-01-01"}]}}}
            )
        )
