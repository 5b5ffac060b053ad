"""`make image`: build the Dockerfile's image as REPOSITORY:VERSION, and its SBOM beside it.

REPOSITORY is `ghcr.io/provider-compliance/authz` unless IMAGE_REPOSITORY or --repository names
another (a fork publishes under its own owner: `ghcr.io/OWNER/authz`). The image carries its
SBOM (CycloneDX JSON, made in the build stage from the venv it ships) at
/usr/share/doc/authz/sbom.cdx.json; the build copies it out to dist/authz-VERSION.cdx.json, what
the release workflow attests and attaches.

With a Docker engine, `docker build`. Without one (CI machines, this one), buildah, rootless
storage not needed: `buildah --storage-driver vfs bud --isolation chroot` works as root with no
daemon. When the base image cannot be pulled (no registry access), a base with the same
contents (Debian bookworm's python3 and python3-venv) is built from Debian packages with
mmdebstrap and imported once as localhost/authz-base:bookworm.

    python3 tools/image/build.py [--repository REPO] [--tag TAG] [--base IMAGE] [--oci-archive FILE] [--sbom FILE]

The image is left in the builder's storage (`buildah images`); --oci-archive also writes it to a
file (what a registry push would send).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BASE = "python:3.11.7-slim-bookworm"
LOCAL_BASE = "localhost/authz-base:bookworm"
# What the local base holds: the Python the Dockerfile's stages run, and what they call.
BASE_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates,passwd"
BUILDAH = ["buildah", "--storage-driver", "vfs"]
REPOSITORY = "ghcr.io/provider-compliance/authz"
SBOM_IN_IMAGE = "/usr/share/doc/authz/sbom.cdx.json"


def version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def revision() -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def run(*cmd: str, **kwargs: object) -> None:
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def docker_works() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def buildah_has(image: str) -> bool:
    return subprocess.run([*BUILDAH, "inspect", "--type", "image", image], capture_output=True).returncode == 0


def buildah_base(requested: str | None) -> str:
    """The base to build on: the one asked for, else the Dockerfile's default if it can be
    pulled, else the local base (built once from Debian packages)."""
    if requested:
        return requested
    if (
        buildah_has(DEFAULT_BASE)
        or subprocess.run(
            [*BUILDAH, "pull", "--quiet", f"docker.io/library/{DEFAULT_BASE}"], capture_output=True, timeout=120
        ).returncode
        == 0
    ):
        return DEFAULT_BASE
    if not buildah_has(LOCAL_BASE):
        print(f"{DEFAULT_BASE} cannot be pulled here: building {LOCAL_BASE} from Debian packages", flush=True)
        with tempfile.TemporaryDirectory(prefix="authz-base-") as tmp:
            tar = Path(tmp) / "base.tar"
            run("mmdebstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(tar))
            container = subprocess.run(
                [*BUILDAH, "from", "scratch"], check=True, capture_output=True, text=True
            ).stdout.strip()
            try:
                run(*BUILDAH, "add", container, str(tar), "/")
                run(*BUILDAH, "commit", "--quiet", container, LOCAL_BASE)
            finally:
                subprocess.run([*BUILDAH, "rm", container], capture_output=True)
    return LOCAL_BASE


def source_url(repository: str) -> str:
    """The org.opencontainers.image.source label: the GitHub repository a ghcr.io image is
    published from (ghcr.io links the package to it), else the project's."""
    parts = repository.split("/")
    if len(parts) == 3 and parts[0] == "ghcr.io":
        return f"https://github.com/{parts[1]}/{parts[2]}"
    return "https://github.com/provider-compliance/authz"


def docker_sbom(tag: str, out: Path) -> None:
    container = subprocess.run(["docker", "create", tag], check=True, capture_output=True, text=True).stdout.strip()
    try:
        run("docker", "cp", f"{container}:{SBOM_IN_IMAGE}", str(out))
    finally:
        subprocess.run(["docker", "rm", container], capture_output=True)


def buildah_sbom(tag: str, out: Path) -> None:
    container = subprocess.run(
        [*BUILDAH, "from", "--quiet", tag], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        root = subprocess.run([*BUILDAH, "mount", container], check=True, capture_output=True, text=True).stdout.strip()
        shutil.copyfile(Path(root) / SBOM_IN_IMAGE.lstrip("/"), out)
        print(f"SBOM: {out}", flush=True)
    finally:
        subprocess.run([*BUILDAH, "umount", container], capture_output=True)
        subprocess.run([*BUILDAH, "rm", container], capture_output=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", default=os.environ.get("IMAGE_REPOSITORY") or REPOSITORY)
    parser.add_argument("--tag", help="default REPOSITORY:VERSION")
    parser.add_argument("--base", default=os.environ.get("BASE_IMAGE"), help=f"default {DEFAULT_BASE}")
    parser.add_argument("--oci-archive", help="also write the image to this OCI archive")
    parser.add_argument("--sbom", type=Path, default=ROOT / "dist" / f"authz-{version()}.cdx.json")
    args = parser.parse_args(argv)
    tag = args.tag or f"{args.repository}:{version()}"
    args.sbom.parent.mkdir(parents=True, exist_ok=True)
    build_args = ["--build-arg", f"VERSION={version()}", "--build-arg", f"REVISION={revision()}"]
    build_args += ["--build-arg", f"SOURCE={source_url(tag.rsplit(':', 1)[0])}"]
    if docker_works():
        if args.base:
            build_args += ["--build-arg", f"BASE={args.base}"]
        run("docker", "build", *build_args, "-t", tag, str(ROOT))
        docker_sbom(tag, args.sbom)
        if args.oci_archive:
            run("docker", "save", "-o", args.oci_archive, tag)
        return 0
    if not shutil.which("buildah"):
        print("make image: neither a Docker engine nor buildah here (apt-get install buildah)", file=sys.stderr)
        return 1
    base = buildah_base(args.base)
    volumes = []
    # A machine whose TLS to PyPI goes through its own CA (set in pip's cert): the build's pip
    # trusts the same bundle, read-only, for the build only (it is not in the image).
    cert = os.environ.get("PIP_CERT")
    if cert and Path(cert).is_file():
        inside = "/etc/ssl/certs/host-ca.crt"
        volumes = ["--volume", f"{cert}:{inside}:ro", "--build-arg", f"PIP_CERT={inside}"]
    run(
        *BUILDAH,
        "bud",
        "--isolation",
        "chroot",
        "--layers=false",
        *build_args,
        "--build-arg",
        f"BASE={base}",
        *volumes,
        "-t",
        tag,
        str(ROOT),
    )
    buildah_sbom(tag, args.sbom)
    if args.oci_archive:
        run(*BUILDAH, "push", tag, f"oci-archive:{args.oci_archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
