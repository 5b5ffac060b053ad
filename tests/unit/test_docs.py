"""The repository explains itself: the README stays a quickstart, every document it or the code
points to exists, and nothing cites a design document the repository does not hold."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = (
    "src",
    "tests",
    "fuzz",
    "bench",
    "deploy/k8s",
    "envoy",
    "docs",
    "Makefile",
    "pyproject.toml",
    "README.md",
    "CHANGELOG.md",
    ".ci",
    "Dockerfile",
)
_SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".js", ".html", ".proto", ""}


def _files():
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            yield path
        for f in path.rglob("*") if path.is_dir() else ():
            if f.is_file() and f.suffix in _SUFFIXES and "__pycache__" not in f.parts and "/v1/" not in str(f):
                yield f


def test_the_readme_is_a_quickstart():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 12 * 1024
    assert "make demo" in readme and "make test" in readme


def test_every_markdown_link_resolves():
    for doc in [ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (doc.parent / target).exists(), f"{doc.relative_to(ROOT)} links to missing {target}"


def test_no_file_cites_a_document_the_repository_lacks():
    cited = re.compile(r"\b((?:docs/)?[A-Za-z_-]+\.md)\b")
    for f in _files():
        text = f.read_text(errors="replace")
        assert "DESIGN.md" not in text or f == Path(__file__), f"{f.relative_to(ROOT)} cites DESIGN.md"
        for name in cited.findall(text):
            if name.startswith("docs/"):
                assert (ROOT / name).exists(), f"{f.relative_to(ROOT)} cites missing {name}"


def _endpoint_line(row) -> str:
    where = {
        "body": f"JSON `{row.field}`",
        "form": f"form field `{row.field}`",
        "query": f"query `{row.field}`",
        "path": "path `{model}`",
        "deployment": "`{deployment}` → model",
        "batch_file": "JSONL lines (`purpose=batch`)",
        "batch_requests": "`requests[].params.model`",
        "no_batch": "none (a batch upload is refused)",
        "none": "none",
    }[row.model]
    return f"| {', '.join(sorted(row.methods))} | `{row.path}` | {where} |"


def test_every_shipped_endpoint_is_listed_in_the_docs():
    from authz import endpoints

    doc = (ROOT / "docs" / "requests.md").read_text()
    for row in endpoints.default_table().endpoints:
        line = _endpoint_line(row)
        assert line in doc, f"docs/requests.md, 'Shipped endpoints': add the line\n{line}"
