"""`make image`: build the Dockerfile's image as provider-compliance/authz:VERSION.

With a Docker engine, `docker build`. Without one (CI machines, this one), buildah, rootless
storage not needed: `buildah --storage-driver vfs bud --isolation chroot` works as root with no
daemon. When the base image cannot be pulled (no registry access), a base with the same
contents (Debian bookworm's python3 and python3-venv) is built from Debian packages with
mmdebstrap and imported once as localhost/authz-base:bookworm.

    python3 tools/image/build.py [--tag TAG] [--base IMAGE] [--oci-archive FILE]

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default=f"provider-compliance/authz:{version()}")
    parser.add_argument("--base", default=os.environ.get("BASE_IMAGE"), help=f"default {DEFAULT_BASE}")
    parser.add_argument("--oci-archive", help="also write the image to this OCI archive")
    args = parser.parse_args(argv)
    build_args = ["--build-arg", f"VERSION={version()}", "--build-arg", f"REVISION={revision()}"]
    if docker_works():
        if args.base:
            build_args += ["--build-arg", f"BASE={args.base}"]
        run("docker", "build", *build_args, "-t", args.tag, str(ROOT))
        if args.oci_archive:
            run("docker", "save", "-o", args.oci_archive, args.tag)
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
        args.tag,
        str(ROOT),
    )
    if args.oci_archive:
        run(*BUILDAH, "push", args.tag, f"oci-archive:{args.oci_archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
