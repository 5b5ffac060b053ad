"""Synthetic but realistic benchmark data: 200 providers with tri-state attributes, 2,000
models served by 1-6 providers each, 1,000 orgs (no policy, enforced, dry run; policies drawn
from a few shapes, as real orgs share them), one API key per org, and a request mix of
automatic and pinned requests with bodies of a few KB. Deterministic (seeded)."""

from __future__ import annotations

import json
import random

ATTRIBUTES = ("soc2", "iso27001", "gdpr", "trains_on_prompts", "logs_prompts")
POLICY_SHAPES = [
    dict(
        require_soc2=True,
        require_iso27001=True,
        certifications=2,
        require_gdpr=True,
        require_no_prompt_training=True,
        require_no_prompt_logging=True,
    ),
    dict(require_gdpr=True, require_no_prompt_training=True),
    dict(require_soc2=True),
    dict(require_no_prompt_training=True, require_no_prompt_logging=True),
    dict(require_soc2=True, require_iso27001=True, require_gdpr=True),
]
WORDS = [
    "the",
    "quarterly",
    "revenue",
    "model",
    "forecast",
    "customer",
    "churn",
    "cohort",
    "analysis",
    "summarize",
    "explain",
    "draft",
]


def catalog(providers: int = 200, models: int = 2000, seed: int = 1) -> dict:
    rnd = random.Random(seed)
    out = {"description": "benchmark data", "providers": {}, "models": {}}
    ids = [f"p{i:03d}" for i in range(providers)]
    for pid in ids:
        policy = {}
        for attribute in ATTRIBUTES:
            roll = rnd.random()
            if roll < 0.2:
                continue  # unknown
            good = attribute not in ("trains_on_prompts", "logs_prompts")
            policy[attribute] = good if roll < 0.85 else not good
        out["providers"][pid] = {"name": pid.upper(), "data_policy": policy}
    for m in range(models):
        out["models"][f"m{m:04d}"] = {"providers": rnd.sample(ids, rnd.randint(1, 6))}
    return out


def orgs(count: int = 1000, seed: int = 2) -> list[tuple[str, str, dict | None]]:
    """(org id, API key, policy fields or None)."""
    rnd = random.Random(seed)
    result = []
    for i in range(count):
        roll = rnd.random()
        shape = rnd.choice(POLICY_SHAPES)
        policy = None if roll < 0.2 else dict(enabled=True, mode=2 if roll > 0.9 else 1, **shape)
        result.append((f"org{i:04d}", f"sk-bench-{i:04d}-{rnd.getrandbits(64):016x}", policy))
    return result


def requests(cat: dict, org_list: list, count: int = 4000, seed: int = 3) -> list[str]:
    """Lines 'api-key<TAB>json body': 55 % automatic, 45 % pinned, bodies of ~2-4 KB."""
    rnd = random.Random(seed)
    model_ids = list(cat["models"])
    lines = []
    for _ in range(count):
        _, key, _ = rnd.choice(org_list)
        model = rnd.choice(model_ids)
        if rnd.random() < 0.45:
            model = f"{rnd.choice(cat['models'][model]['providers'])}/{model}"
        content = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(250, 500)))
        body = {
            "model": model,
            "temperature": 0.2,
            "messages": [
                {"role": "system", "content": "You are a helpful analyst."},
                {"role": "user", "content": content},
            ],
        }
        lines.append(f"{key}\t{json.dumps(body, separators=(',', ':'))}")
    return lines
