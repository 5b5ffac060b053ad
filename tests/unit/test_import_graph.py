"""The package's import graph has no cycle: every module can be read, tested and changed from
its imports down. Every import counts, including those inside functions and TYPE_CHECKING
blocks (a lazy import only hides a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "authz"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "v1" not in p.relative_to(PACKAGE).parts}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    assert "authz.server.app" in graph and graph["authz.server.app"], "the graph was read"
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


# The packages as layers, bottom first: a module imports only from its own layer or below.
# Top-level modules (config, metrics, logs, clip, httpguard, reasons) are the shared bottom.
LAYERS = ("authz", "policy", "check", "state", "events", "alerts", "admin", "server", "cli")
# The Check pipeline is pure: no network, process or event-loop library below the server.
NO_IO = ("policy", "check")
IO_LIBRARIES = ("asyncio", "socket", "ssl", "subprocess", "redis", "aiohttp", "grpc", "urllib.request", "http")


def _layer(module: str) -> int:
    parts = module.split(".")
    if parts[1:2] == ["__main__"]:
        return LAYERS.index("cli")
    if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()):
        return LAYERS.index(parts[1])
    return 0


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} ({LAYERS[_layer(module)]}) imports {target} ({LAYERS[_layer(target)]})"
        for module, targets in graph.items()
        for target in targets
        if _layer(target) > _layer(module)
    )


# Beside the order: layers that never reach into the Check engine, although it sits below them.
# The state keeps what the Check reads (policy/ types), events store what it made (plain
# records), and the CLI administers; none of them needs the engine's internals.
NEVER_IMPORTS = {"state": "check", "events": "check", "cli": "check"}


def forbidden_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} ({LAYERS[_layer(module)]}) imports {target} ({LAYERS[_layer(target)]})"
        for module, targets in graph.items()
        for target in targets
        if NEVER_IMPORTS.get(LAYERS[_layer(module)]) == LAYERS[_layer(target)]
    )


def test_state_events_and_cli_never_import_the_check_engine():
    assert forbidden_imports(_graph()) == []


def test_the_rule_sees_the_state_importing_the_check():
    graph = {"authz.state.cache": {"authz.check.decision", "authz.policy.orgs"}, "authz.check.decision": set()}
    assert forbidden_imports(graph) == ["authz.state.cache (state) imports authz.check.decision (check)"]


def test_every_package_is_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists() and p.name != "v1"}
    assert packages == set(LAYERS[1:]), "a new package needs its place in LAYERS (and in docs/design.md)"


def test_no_module_imports_from_a_layer_above_it():
    assert upward_imports(_graph()) == []


def test_the_layer_rule_sees_an_upward_import():
    assert upward_imports({"authz.config": {"authz.check.request"}, "authz.check.request": {"authz.config"}}) == [
        "authz.config (authz) imports authz.check.request (check)"
    ]


def test_the_check_pipeline_does_no_io():
    found = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        if "v1" in path.relative_to(PACKAGE).parts or LAYERS[_layer(module)] not in NO_IO:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [f"{module}: {n}" for n in names if n.split(".")[0] in IO_LIBRARIES or n in IO_LIBRARIES]
    assert found == []


def private_imports(source: str) -> list[str]:
    """Names with a leading underscore imported from another authz module (__version__ aside)."""
    return sorted(
        f"{node.module}.{alias.name}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("authz")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    )


def test_no_module_imports_another_modules_private_names():
    found = {
        _module_name(p): names
        for p in PACKAGE.rglob("*.py")
        if "v1" not in p.relative_to(PACKAGE).parts and (names := private_imports(p.read_text()))
    }
    assert found == {}
    assert private_imports("from authz.check.decision import _judge, decide") == ["authz.check.decision._judge"]


def test_the_check_path_never_imports_the_catalog_import_tooling():
    # policy/imports/ is read by the CLI and the admin API; a Check reads the catalog it produced.
    graph = _graph()
    found = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.split(".")[1:2] in (["check"], ["server"], ["state"], ["events"])
        for target in targets
        if target.startswith("authz.policy.imports")
    )
    assert "authz.policy.imports.litellm_config" in graph, "the tooling is where this test looks"
    assert found == []
