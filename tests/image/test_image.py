"""The built image (`make image-test`: `make image`, then these tests on IMAGE_UNDER_TEST).

Run with buildah (chroot isolation shares this machine's network, so the container's authz
reaches a Redis on loopback and the test reaches its ports): the command and version, the
unprivileged user, a real Check over gRPC answered from Redis, and no write outside its volumes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import grpc
import pytest
from envoy.service.auth.v3 import external_auth_pb2_grpc

from authz import __version__
from authz.server.ports import holder_of
from devstack.stack import Admin, RedisServer, free_port, wait_until
from support.checkrequests import check_request
from support.policies import DEMO_POLICY

IMAGE = os.environ.get("IMAGE_UNDER_TEST", f"ghcr.io/provider-compliance/authz:{__version__}")
BUILDAH = ["buildah", "--storage-driver", "vfs"]
VOLUMES = ("/var/spool/authz", "/tmp")  # what the manifests mount writable (emptyDir)


def buildah(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BUILDAH, *args], capture_output=True, text=True, timeout=120, **kwargs)


@pytest.fixture
def container():
    made = buildah("from", IMAGE)
    assert made.returncode == 0, f"no image {IMAGE}: run make image first\n{made.stderr}"
    name = made.stdout.strip()
    yield name
    buildah("rm", name)


def run_in(container: str, *command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
    return buildah("run", "--isolation", "chroot", *flags, container, "--", *command)


def test_the_image_says_its_version_and_runs_as_an_unprivileged_user(container):
    config = json.loads(buildah("inspect", "--type", "image", IMAGE).stdout)
    oci = config["OCIv1"]["config"]
    assert oci["User"] == "10001:10001" and oci["Entrypoint"] == ["authz"] and oci["Cmd"] == ["serve"]
    labels = oci["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert len(labels["org.opencontainers.image.revision"]) == 40  # the commit it was built from
    assert set(oci["Volumes"]) == {"/var/spool/authz"}
    assert {"9001/tcp", "9003/tcp", "9090/tcp"} <= set(oci["ExposedPorts"])
    version = run_in(container, "authz", "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"authz {__version__}", version.stderr
    who = run_in(container, "id", "-u")
    assert who.stdout.strip() == "10001"
    # Nothing of the build stage or the dev harness ships, and every module imports without it
    # (the image has no dev library to fall back on), the settings page included.
    shipped = run_in(container, "/opt/authz/bin/python", "-c", _IMPORT_EVERYTHING)
    assert shipped.returncode == 0, shipped.stderr[-3000:]
    modules, missing = shipped.stdout.split()
    assert int(modules) > 60 and missing == "grpc_tools,setuptools,devstack,pytest,httpx,openai", shipped.stdout


def test_the_image_carries_the_sbom_of_what_it_ships(container):
    """The SBOM (CycloneDX) in the image names authz at this version and every Python package the
    venv holds at the version installed, and nothing the build stage removed; `make image`
    copied the same file to dist/."""
    config = json.loads(buildah("inspect", "--type", "image", IMAGE).stdout)["OCIv1"]["config"]
    labels = config["Labels"]
    where = labels["io.provider-compliance.sbom"]
    assert labels["org.opencontainers.image.source"].startswith("https://github.com/")
    sbom = json.loads(run_in(container, "cat", where).stdout)
    assert sbom["bomFormat"] == "CycloneDX" and sbom["metadata"]["component"]["name"] == "authz"
    assert sbom["metadata"]["component"]["version"] == __version__
    listed = {c["name"].lower().replace("_", "-"): c["version"] for c in sbom["components"]}
    installed = run_in(
        container,
        "/opt/authz/bin/python",
        "-c",
        "import json, importlib.metadata as m;"
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
    )
    shipped = {
        k.lower().replace("_", "-"): v
        for k, v in json.loads(installed.stdout).items()
        if k.lower() not in ("pip", "authz")
    }
    assert shipped and {k: listed.get(k) for k in shipped} == shipped
    assert "grpcio-tools" not in listed and "cyclonedx-bom" not in listed
    copied = Path(__file__).resolve().parents[2] / "dist" / f"authz-{__version__}.cdx.json"
    assert json.loads(copied.read_text()) == sbom


_IMPORT_EVERYTHING = """
import importlib, importlib.util, pkgutil
from importlib import resources
import authz
names = [m.name for m in pkgutil.walk_packages(authz.__path__, "authz.") if m.name != "authz.__main__"]
for name in names:
    importlib.import_module(name)
web = resources.files("authz.admin.web")
assert web.joinpath("settings.html").read_text().startswith("<!doctype")
dev = ("grpc_tools", "setuptools", "devstack", "pytest", "httpx", "openai")
absent = [m for m in dev if importlib.util.find_spec(m) is None]
print(len(names), ",".join(absent))
"""


def test_authz_serve_in_the_image_answers_a_check_and_writes_only_its_volumes(container, tmp_path):
    redis = RedisServer(tmp_path).start()
    try:
        admin = Admin(redis.url)
        admin.load_catalog()
        admin.add_api_key("sk-image", "image-org")
        admin.set_policy("image-org", **DEMO_POLICY)
        before = _files(container)
        assert len(before) > 1000 and "/opt/authz/bin/authz" in before  # the whole root, read
        grpc_port, http_port = free_port(), free_port()
        env = {
            "AUTHZ_REDIS_URL": redis.url,
            "AUTHZ_GRPC_LISTEN": f"127.0.0.1:{grpc_port}",
            "AUTHZ_HTTP_LISTEN": f"127.0.0.1:{http_port}",
            "AUTHZ_ADMIN_GRPC_LISTEN": f"127.0.0.1:{free_port()}",
            "AUTHZ_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
        }
        flags = [f"--env={k}={v}" for k, v in env.items()]
        serve = subprocess.Popen(
            [*BUILDAH, "run", "--isolation", "chroot", *flags, container, "--", "authz", "serve"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            import httpx

            wait_until(lambda: _ready(f"http://127.0.0.1:{http_port}/readyz"), 60, "authz in the image ready")
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                check = external_auth_pb2_grpc.AuthorizationStub(channel)
                headers = {"authorization": "Bearer sk-image"}
                blocked = check.Check(check_request({"model": "deepseek/deepseek-v3.2"}, headers), timeout=10)
                allowed = check.Check(check_request({"model": "azure/gpt-4o"}, headers), timeout=10)
            assert blocked.status.code == 7 and b"deepseek" in blocked.denied_response.body.encode()
            assert allowed.status.code == 0
            assert httpx.get(f"http://127.0.0.1:{http_port}/healthz").status_code == 200
            # SIGTERM to authz itself, as the kubelet sends it (buildah run would kill it outright).
            holder = holder_of(grpc_port)
            assert holder and holder.startswith("pid "), holder
            os.kill(int(holder.split()[1]), signal.SIGTERM)
            out, _ = serve.communicate(timeout=60)
        finally:
            serve.kill()
        assert serve.returncode == 0 and '"event": "stopped"' in out, out[-3000:]
        changed = sorted(path for path in _files(container).items() - before.items())
        outside = [p for p, _ in changed if not p.startswith(VOLUMES)]
        assert outside == [], f"authz wrote outside its volumes: {outside}"
    finally:
        redis.stop()


def _ready(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _files(container: str) -> dict[str, tuple[int, float]]:
    """Every file of the container's root (size, mtime), by its path inside the container."""
    root = Path(buildah("mount", container).stdout.strip())
    assert root.is_dir(), root
    found = {}
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        stat = path.stat()
        found["/" + str(path.relative_to(root))] = (stat.st_size, stat.st_mtime)
    return found
