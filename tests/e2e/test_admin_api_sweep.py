"""Every admin API route, given a malformed body, an unknown field, a wrong type, an unknown org
and no or a foreign token: a 4xx JSON error whose message is one line naming what was wrong,
never a 500 or a traceback."""

from __future__ import annotations

import httpx
import pytest

from authz.admin import transports

pytestmark = pytest.mark.e2e

# The routes the module's own table lists (its docstring is the reference a test keeps true).
ROUTES = [
    tuple(line.split()[:2])
    for line in transports.__doc__.splitlines()
    if line.strip().startswith(("GET ", "POST ", "PUT ", "DEL "))
]
BODIES = [b"{", b"[]", b'{"policy": 5}', b'{"polcy": {}}', b'{"policy": {"require_gpdr": true}}', b'{"alerts": []}']


def url(stack, path: str, org: str) -> str:
    path = path.replace("{org}", org).replace("{id}", "no-such-provider").split("?")[0]
    return stack.authz_http + path


def assert_error(r: httpx.Response, what: str) -> None:
    assert r.status_code < 500, (what, r.status_code, r.text)
    if r.status_code >= 400:
        message = r.json()["error"]["message"]
        assert "\n" not in message and "Traceback" not in message and len(message) < 600, (what, message)


def test_the_route_table_is_read():
    assert len(ROUTES) >= 13 and ("PUT", "/v1/orgs/{org}/policy") in ROUTES


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=lambda x: str(x))
def test_every_route_answers_bad_input_with_a_4xx_json_error(stack, method, path):
    if not path.startswith("/v1/"):
        return
    method = "DELETE" if method == "DEL" else method
    org = "sweep-org"
    owner = {"authorization": f"Bearer {stack.token(org)}"}
    for body in BODIES if method in ("PUT", "POST") else [None]:
        r = httpx.request(method, url(stack, path, org), headers=owner, content=body, timeout=10)
        assert_error(r, f"{method} {path} {body!r}")
    for headers in ({}, {"authorization": "Bearer not-a-jwt"}, {"authorization": f"Bearer {stack.token('other-org')}"}):
        r = httpx.request(method, url(stack, path, org), headers=headers, content=b"{}", timeout=10)
        if "/orgs/" in path:  # another org's or no token: refused
            assert r.status_code in (401, 403), (method, path, headers, r.status_code, r.text)
        assert_error(r, f"{method} {path} {headers}")
    if "?limit" in path:
        for limit in ("abc", "-1", "99999999999999999999", ""):
            r = httpx.get(url(stack, path, org) + f"?limit={limit}", headers=owner, timeout=10)
            assert_error(r, f"{path} limit={limit}")
    unknown = httpx.request(method, url(stack, path, "no-such-org-\u00e9"), headers=owner, content=b"{}", timeout=10)
    assert_error(unknown, f"{method} {path} unknown org")
