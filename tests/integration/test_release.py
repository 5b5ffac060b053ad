"""The release: the workflow a tag runs, and the digest pinning it applies to the manifests
(tools/release/pin_images.py), rendered afterwards by the real kustomize."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from support.kustomize import KUSTOMIZE

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
AUTHZ = "ghcr.io/provider-compliance/authz"

_spec = importlib.util.spec_from_file_location("pin_images", ROOT / "tools" / "release" / "pin_images.py")
assert _spec and _spec.loader
pin_images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pin_images)


def fake_digest(ref: str) -> str:
    return "sha256:" + hashlib.sha256(ref.encode()).hexdigest()


@pytest.fixture
def deploy_copy(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "deploy" / "k8s", root / "deploy" / "k8s", ignore=shutil.ignore_patterns("node_modules"))
    return root / "deploy" / "k8s"


def images_rendered(overlay: Path) -> set[str]:
    out = subprocess.run(
        [str(KUSTOMIZE), "build", str(overlay)], capture_output=True, text=True, check=True, timeout=60
    )
    found = set()
    for doc in yaml.safe_load_all(out.stdout):
        spec = (doc or {}).get("spec", {})
        pod = spec.get("template", {}).get("spec", {}) if "template" in spec else {}
        for c in [*pod.get("containers", []), *pod.get("initContainers", [])]:
            found.add(c["image"])
    return found


def test_main_names_images_by_tag_and_the_check_lists_each_one(deploy_copy):
    """On main nothing is pinned (no registry to read a digest from): --check names every
    third-party image and every overlay, so a release cannot ship them unpinned."""
    left = pin_images.unpinned(pin_images.manifests(deploy_copy), root=deploy_copy.parents[1])
    assert any("envoyproxy/envoy:distroless-" in line for line in left), left
    assert any(line.endswith(f"{AUTHZ} (no digest in images:)") for line in left), left
    assert not any("example.com/" in line for line in left)  # a placeholder the user replaces


@pytest.mark.parametrize("repository", [AUTHZ, "ghcr.io/someorg/authz"])
def test_a_release_pins_every_image_the_examples_render(deploy_copy, repository):
    files = pin_images.manifests(deploy_copy)
    authz_digest = fake_digest("authz")
    pin_images.resolve(files, authz_digest, repository, lookup=fake_digest)
    assert pin_images.unpinned(files, root=deploy_copy.parents[1]) == []
    examples = sorted(p for p in (deploy_copy / "examples").iterdir() if (p / "kustomization.yaml").exists())
    assert len(examples) >= 9
    for overlay in examples:
        images = images_rendered(overlay)
        assert images, overlay.name
        for image in images:
            if image.startswith("example.com/"):
                continue
            name, _, digest = image.partition("@")
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), (overlay.name, image)
            if name.split(":")[0] in (AUTHZ, repository):
                assert name.split(":")[0] == repository and digest == authz_digest, (overlay.name, image)
            else:
                assert digest == fake_digest(name), (overlay.name, image)
    # Pinning twice changes nothing (a re-run of the release job).
    before = {p: p.read_text() for p in files}
    pin_images.resolve(files, authz_digest, repository, lookup=fake_digest)
    assert {p: p.read_text() for p in files} == before


def test_a_lookup_that_returns_no_digest_stops_the_release(deploy_copy):
    files = pin_images.manifests(deploy_copy)
    with pytest.raises(SystemExit, match="no sha256 digest"):
        pin_images.resolve(files, None, lookup=lambda ref: "latest")


def test_the_release_workflow_tests_pushes_and_signs_by_digest():
    flow = yaml.safe_load(WORKFLOW.read_text())
    assert flow[True]["push"]["tags"] == ["v*.*.*"]  # YAML 1.1 reads the key `on` as true
    assert flow["permissions"] == {"contents": "write", "packages": "write", "id-token": "write"}
    steps = flow["jobs"]["release"]["steps"]
    script = "\n".join(s.get("run", "") for s in steps)
    order = [script.index(x) for x in (".ci/run", "push --digestfile", "cosign sign", "cosign attest", "--check")]
    assert order == sorted(order), "test, then push, sign, attest, then check the pinning"
    assert '"${IMAGE_REPOSITORY}@${DIGEST}"' in script and 'cosign sign --yes "${IMAGE_REPOSITORY}:' not in script
    assert 'test "${GITHUB_REF_NAME}" = "v${version}"' in script
    assert "pin_images.py --resolve" in script and '--authz-digest "${DIGEST}"' in script
    assert '--predicate "dist/authz-${VERSION}.cdx.json"' in script
    for step in steps:
        if "uses" in step:
            assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]
