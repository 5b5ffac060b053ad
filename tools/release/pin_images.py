"""Pin every image the manifests name by digest, for a release (the release workflow runs it).

A tag can be moved by whoever controls the registry; a digest cannot. On `main` the manifests
name images by tag (a digest can only be read from the registry, and this project's CI has no
registry access); the release workflow resolves each tag once, writes `REF@sha256:...` in
deploy/k8s, sets the authz image's digest (the one it just pushed) in every example overlay,
and then checks that nothing is left unpinned before it packages the manifests.

    python3 tools/release/pin_images.py --resolve [--authz-digest sha256:... [--repository REPO]]
    python3 tools/release/pin_images.py --check
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "k8s"
AUTHZ = "ghcr.io/provider-compliance/authz"
# Stand-ins a user replaces with their own image: never pinned, never resolved.
PLACEHOLDER_REGISTRIES = ("example.com/",)
IMAGE_LINE = re.compile(r"^(?P<lead>\s*(?:-\s+)?image:\s*)(?P<ref>[^\s#]+)(?P<rest>.*)$", re.MULTILINE)
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def third_party(ref: str) -> bool:
    """An image this project does not build and the user does not replace."""
    return not ref.startswith((f"{AUTHZ}:", f"{AUTHZ}@")) and not ref.startswith(PLACEHOLDER_REGISTRIES)


def image_refs(text: str) -> list[str]:
    return [m["ref"] for m in IMAGE_LINE.finditer(text)]


def pin(text: str, digests: dict[str, str]) -> str:
    """Each `image: REF` whose REF has a digest in `digests` becomes `image: REF@DIGEST`."""

    def one(m: re.Match[str]) -> str:
        ref = m["ref"]
        if "@" in ref or ref not in digests:
            return m.group(0)
        return f"{m['lead']}{ref}@{digests[ref]}{m['rest']}"

    return IMAGE_LINE.sub(one, text)


def pin_authz(kustomization: str, digest: str, repository: str = AUTHZ) -> str:
    """Set `digest:` (and `newName:` when the release publishes under another owner) in the
    overlay's `images:` entry for the authz image: kustomize then writes REPOSITORY@sha256:...
    in every container and the Job."""
    entry = re.compile(
        rf"^(?P<head>-[ \t]+name:[ \t]*{re.escape(AUTHZ)}[ \t]*\n)(?P<body>(?:[ \t]+\S.*\n)*)", re.MULTILINE
    )

    def one(m: re.Match[str]) -> str:
        body = re.sub(r"^[ \t]+(?:digest|newName):.*\n", "", m["body"], flags=re.MULTILINE)
        renamed = f"  newName: {repository}\n" if repository != AUTHZ else ""
        return f"{m['head']}{body}{renamed}  digest: {digest}\n"

    return entry.sub(one, kustomization)


def unpinned(files: Iterable[Path], root: Path = ROOT) -> list[str]:
    """`file: ref` for every third-party image without a digest, and every overlay that sets the
    authz image without one."""
    found = []
    for path in files:
        text = path.read_text()
        found += [f"{path.relative_to(root)}: {ref}" for ref in image_refs(text) if third_party(ref) and "@" not in ref]
        sets_authz = path.name == "kustomization.yaml" and re.search(rf"name:\s*{re.escape(AUTHZ)}\b", text)
        if sets_authz and not re.search(r"^[ \t]+digest:[ \t]*sha256:[0-9a-f]{64}[ \t]*$", text, re.MULTILINE):
            found.append(f"{path.relative_to(root)}: {AUTHZ} (no digest in images:)")
    return found


def skopeo_digest(ref: str) -> str:
    """The registry's digest of REF (the manifest list's, so every platform keeps working)."""
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", "--no-tags", f"docker://{ref}"], capture_output=True, timeout=120
    )
    if out.returncode != 0:
        raise SystemExit(f"cannot read {ref} from its registry: {out.stderr.decode(errors='replace').strip()}")
    return "sha256:" + hashlib.sha256(out.stdout).hexdigest()


def manifests(root: Path = MANIFESTS) -> list[Path]:
    return sorted(root.rglob("*.yaml"))


def resolve(
    files: list[Path], authz_digest: str | None, repository: str = AUTHZ, lookup: Callable[[str], str] = skopeo_digest
) -> None:
    refs = sorted({r for p in files for r in image_refs(p.read_text()) if third_party(r) and "@" not in r})
    digests = {ref: lookup(ref) for ref in refs}
    for ref, digest in digests.items():
        if not DIGEST.match(digest):
            raise SystemExit(f"{ref}: {digest!r} is no sha256 digest")
    for path in files:
        text = pin(path.read_text(), digests)
        if authz_digest and path.name == "kustomization.yaml":
            text = pin_authz(text, authz_digest, repository)
        path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--resolve", action="store_true", help="read each tag's digest (skopeo) and pin it")
    action.add_argument("--check", action="store_true", help="exit 1 when an image is not pinned")
    parser.add_argument("--authz-digest", help="the digest of the authz image the release pushed")
    parser.add_argument("--repository", default=AUTHZ, help=f"where the release pushed it (default {AUTHZ})")
    args = parser.parse_args(argv)
    if args.authz_digest and not DIGEST.match(args.authz_digest):
        parser.error(f"--authz-digest {args.authz_digest!r} is no sha256 digest")
    files = manifests()
    if args.resolve:
        resolve(files, args.authz_digest, args.repository)
        return 0
    left = unpinned(files)
    for line in left:
        print(f"not pinned by digest: {line}", file=sys.stderr)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
