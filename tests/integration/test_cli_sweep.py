"""Every CLI verb, given a missing, a malformed and an unknown argument: one line naming what
was wrong, exit 2 for usage and 1 for a refused operation, never a traceback. The verbs are
walked from the parser itself, so a new one is swept too."""

from __future__ import annotations

import argparse
import contextlib
import io
import os

import pytest

from authz.cli import main as cli_main
from devstack.stack import SAMPLE_CATALOG, Admin, closed_port

SKIP = {("serve",), ("events", "tail")}  # serve runs the service; tail without --follow is swept below
FILLERS = {  # an unknown value for each positional, by its name
    "file": "/nonexistent/authz-sweep.json",
    "gateway_config": "/nonexistent/config.yaml",
    "policies": "/nonexistent/policies.yaml",
    "package_dir": "/nonexistent/package",
    "org": "no-such-org",
    "provider": "no-such-provider",
    "key_id": "no-such-key",
    "plan": "enterprise",
}


def verbs() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found.append((path, parser))
            return
        for name, child in subs[0].choices.items():
            walk(child, (*path, name))

    walk(cli_main.parser(), ())
    return [(path, parser) for path, parser in found if path not in SKIP]


def positionals(parser: argparse.ArgumentParser) -> list[str]:
    return [a.dest for a in parser._actions if not a.option_strings and not isinstance(a, argparse._HelpAction)]


@pytest.fixture(scope="module")
def environment(redis_server):
    Admin(redis_server.url, "sweep:").load_catalog(SAMPLE_CATALOG)
    return {
        "AUTHZ_REDIS_URL": redis_server.url,
        "AUTHZ_KEY_PREFIX": "sweep:",
        "AUTHZ_HTTP_LISTEN": f"127.0.0.1:{closed_port()}",  # no admin API is running: a refusal
        "AUTHZ_ADMIN_JWT_HS256_SECRET": "s" * 40,
    }


def run(argv: list[str], environment: dict[str, str], monkeypatch) -> tuple[int, str]:
    for key in [k for k in os.environ if k.startswith("AUTHZ_")]:
        monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = cli_main.main(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
    return code, err.getvalue()


def assert_one_line_answer(argv: list[str], code: int, err: str) -> None:
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if code:
        lines = [line for line in err.splitlines() if line.strip()]
        # The last line names the cause (before it, at most argparse's usage or where a write goes).
        assert lines and (lines[-1].startswith("authz:") or ": error: " in lines[-1]), (argv, err)
        assert len(lines[-1]) < 600 and len(lines) <= 8, (argv, err)


@pytest.mark.parametrize("path", [p for p, _ in verbs()], ids=lambda p: " ".join(p))
def test_every_verb_answers_a_missing_and_an_unknown_argument_in_one_line(path, environment, monkeypatch):
    parser = dict(verbs())[path]
    names = positionals(parser)
    if names:  # missing: argparse's usage error, exit 2
        code, err = run(list(path), environment, monkeypatch)
        assert code == 2, (path, code, err)
        assert_one_line_answer(list(path), code, err)
    argv = [*path, *(FILLERS.get(name, "no-such-thing") for name in names)]
    code, err = run(argv, environment, monkeypatch)
    assert_one_line_answer(argv, code, err)


@pytest.mark.parametrize(
    "argv",
    [
        ["events", "list", "--since", "yesterday"],
        ["events", "tail", "--count", "-3"],
        ["apikey", "list", "--org", "no-such-org"],
        ["catalog", "import", "--from", "litellm", "/nonexistent.yaml", "--base", "/nonexistent.json"],
        ["catalog", "check-routing", "--from", "litellm", "/nonexistent.yaml", "/nonexistent.yaml"],
        ["bootstrap", "--import-litellm", "/nonexistent.yaml"],
        ["token", "issue", "acme", "--role", "emperor", "--subject", "a@b"],
        ["org", "set-plan", "acme", ""],
    ],
    ids=lambda a: " ".join(a)[:60],
)
def test_malformed_options_are_answered_in_one_line(argv, environment, monkeypatch):
    code, err = run(argv, environment, monkeypatch)
    assert code in (1, 2) or (code == 0 and not err), (argv, code, err)
    assert_one_line_answer(argv, code, err)


def test_the_sweep_walks_every_group():
    assert {p[0] for p, _ in verbs()} >= {"catalog", "org", "policy", "token", "events", "bootstrap", "audit", "apikey"}
    assert len(verbs()) >= 25
