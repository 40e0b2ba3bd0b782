"""The collector's modules import one another without a cycle, and the HTTP layer never reaches
for the service that wires it: routes receive narrow objects through ``collector.http.deps``.

Read from the source with ``ast`` (imports under ``TYPE_CHECKING`` count too: they were how the
old api <-> service cycle hid), so the check needs no services and imports nothing it checks.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "collector", "common", "devtools")


def module_files() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the repo's modules it imports (absolute imports; the repo uses no relative ones)."""
    files = module_files()
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                assert node.level == 0, f"{path}: relative import"
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            graph[name] |= {target for target in targets if target in files and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_two_module_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_repo_modules_import_one_another_without_a_cycle() -> None:
    graph = import_graph()
    assert "collector.http.app" in graph and "collector.service" in graph, sorted(graph)
    assert cycles(graph) == []


def test_http_layer_never_imports_the_service() -> None:
    graph = import_graph()
    wiring = {"collector.service", "collector.cli"}
    reaching = sorted(name for name, targets in graph.items() if name.startswith("collector.http") and targets & wiring)
    assert reaching == []


def reaching_up(graph: dict[str, set[str]], layer: tuple[str, ...], above: tuple[str, ...]) -> list[tuple[str, str]]:
    """(module, target) pairs where a module of ``layer`` imports one of the layers ``above`` it."""
    return sorted((name, target) for name, targets in graph.items() if name.startswith(layer)
                  for target in targets if target.startswith(above))  # fmt: skip


def test_fleet_and_alerting_never_import_reports_or_http() -> None:
    graph = import_graph()
    assert "collector.fleet.outages" in graph and "collector.reports.build" in graph, sorted(graph)
    upper = ("collector.reports", "collector.http")
    assert reaching_up(graph, ("collector.fleet", "collector.alerting"), upper) == []


def test_the_shared_calendar_imports_nothing_of_the_collector() -> None:
    """Office hours, holidays, the local day and month lie below every layer that needs them."""
    graph = import_graph()
    assert graph["collector.localtime"] == set()
    assert (
        "collector.localtime" in graph["collector.fleet.outages"] and "collector.localtime" in graph["collector.config"]
    )


def test_nothing_under_collector_imports_devtools() -> None:
    """The service never imports a dev tool: the simulator and the backfill have their own entry
    point (``commune-sim``), so a collector install runs without ``devtools/``."""
    graph = import_graph()
    assert "devtools.simulate.cli" in graph and "collector.cli" in graph, sorted(graph)
    assert reaching_up(graph, ("collector",), ("devtools",)) == []
