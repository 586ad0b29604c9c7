"""The import graph of ``src/voxhelm``: no cycle between packages or between modules, and no
import from the framework-free core into a Django app.

Read with ``ast`` (module- and function-level imports; ``if TYPE_CHECKING:`` blocks left
out, since they never run). A node is a top-level package or module of ``voxhelm``
(``api.views`` counts on its own: the console may use the API's helpers, not its views);
the module test takes every module as its own node.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "voxhelm"

CORE = frozenset(
    {
        "audio",
        "batch",
        "boundedjson",
        "capacity",
        "config",
        "diarization",
        "edge",
        "encode",
        "envparse",
        "errors",
        "fetch",
        "formats",
        "lanes",
        "logformat",
        "modelcache",
        "modelstore",
        "netpolicy",
        "remote_worker",
        "secretfile",
        "storage",
        "stt",
        "tokens",
        "transcript",
        "tts",
        "units",
        "workdirs",
        "worker_protocol",
        "wyoming_server",
    }
)
"""Packages and modules that never import a Django app (the remote worker and the Wyoming
server run without Django)."""
APPS = frozenset(
    {"api", "api.views", "artifacts", "console", "jobs", "search", "studio", "uploads", "workers"}
)


@dataclass(frozen=True)
class Imported:
    source: str  # dotted module name below voxhelm, e.g. "jobs.pipeline"
    target: str  # dotted module name below voxhelm
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _skipped_blocks(tree: ast.AST) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def module_imports(path: Path) -> Iterator[Imported]:
    source = module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _skipped_blocks(tree)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                module = ".".join([*base, node.module] if node.module else base)
                names = [f"voxhelm.{module}" if module else "voxhelm"]
            else:
                names = [node.module or ""]
            if names[0] in ("voxhelm",) or names[0].startswith("voxhelm."):
                # ``from voxhelm.x import y`` names a submodule y or an attribute of x:
                # :func:`existing` keeps the longest part that is a module.
                names = [f"{names[0]}.{alias.name}" for alias in node.names]
        for name in names:
            if name.startswith("voxhelm."):
                yield Imported(source, name.removeprefix("voxhelm."), node.lineno)


def existing(name: str) -> str | None:
    """The longest prefix of ``name`` that is a module or package of voxhelm."""
    parts = name.split(".")
    while parts:
        candidate = ROOT.joinpath(*parts)
        if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return None


def node_of(module: str) -> str:
    if module.startswith("api.views"):
        return "api.views"
    return module.split(".", 1)[0]


def all_imports() -> list[Imported]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for imported in module_imports(path):
            target = existing(imported.target)
            if target is not None:
                found.append(Imported(imported.source, target, imported.line))
    return found


def package_edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for imported in all_imports():
        source, target = node_of(imported.source), node_of(imported.target)
        if source != target:
            where = f"{imported.source.replace('.', '/')}.py:{imported.line}"
            edges.setdefault((source, target), []).append(where)
    return edges


def module_edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for imported in all_imports():
        if imported.source != imported.target:
            where = f"{imported.source.replace('.', '/')}.py:{imported.line}"
            edges.setdefault((imported.source, imported.target), []).append(where)
    return edges


def on_a_cycle(edges: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The edges that lie on a cycle (both ends in one strongly connected part)."""
    edges = set(edges)
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
        graph.setdefault(target, set())

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            for following in graph[node]:
                if following not in seen:
                    seen.add(following)
                    todo.append(following)
        return seen

    reach = {node: reachable(node) for node in graph}
    return {(a, b) for a, b in edges if a in reach[b]}


def cycle_edges() -> set[tuple[str, str]]:
    """Edges that lie on a cycle between packages."""
    return on_a_cycle(package_edges())


def core_leaks() -> set[tuple[str, str]]:
    """(core module, app module) for each import from the core into a Django app."""
    leaks = set()
    for imported in all_imports():
        if node_of(imported.source) in CORE and node_of(imported.target) in APPS:
            leaks.add((imported.source, imported.target))
    return leaks


def test_no_package_imports_another_in_a_cycle() -> None:
    edges = package_edges()
    found = {edge: edges[edge] for edge in cycle_edges()}
    assert not found, f"imports that close a cycle between packages: {found}"


def test_no_module_imports_another_in_a_cycle() -> None:
    """Within a package too: a circle of modules (even through a function-level import) means
    one of them cannot be read, or loaded, without the others."""
    edges = module_edges()
    found = {edge: edges[edge] for edge in on_a_cycle(edges)}
    assert not found, f"imports that close a cycle between modules: {found}"


def test_the_core_imports_no_django_app_module() -> None:
    assert not core_leaks(), "the core imports a Django app"


def test_the_model_cache_imports_no_engine() -> None:
    """The engines find pulled models through ``modelcache``; the store above it uses them."""
    targets = {node_of(i.target) for i in all_imports() if node_of(i.source) == "modelcache"} - {
        "modelcache"
    }
    assert targets <= {"errors"}, targets


def test_the_storage_and_the_worker_protocol_import_no_django() -> None:
    """``voxhelm-remote-worker`` runs without Django and uses both."""
    for package in ("storage", "worker_protocol"):
        for path in sorted((ROOT / package).glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            skipped = _skipped_blocks(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import | ast.ImportFrom) and node.lineno not in skipped:
                    modules = (
                        [alias.name for alias in node.names]
                        if isinstance(node, ast.Import)
                        else [node.module or ""]
                    )
                    for module in modules:
                        assert not module.startswith("django"), (path.name, module)


def test_the_graph_reader_sees_imports_inside_functions() -> None:
    """A control: a function-level import between packages is an edge too."""
    found = {(i.source, i.target) for i in all_imports()}
    assert ("cli", "jobs.worker") in found  # inside the ``worker`` command


def test_only_jobs_submit_creates_job_rows() -> None:
    """Every transcription or synthesis job, sync ones included, is made by one module."""
    creators = set()
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("create", "bulk_create", "get_or_create")
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "objects"
                and isinstance(node.func.value.value, ast.Name)
                and node.func.value.value.id == "Job"
            ):
                creators.add(path.relative_to(ROOT).as_posix())
    assert creators == {"jobs/submit.py"}
