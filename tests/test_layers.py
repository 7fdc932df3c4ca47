"""The layout tells the architecture (DESIGN.md §3): the terminal talks to a host over the
protocol and shares no code with the sandbox host, so it works the same against any host.
Checked on the source: no module the terminal imports, directly or through others (at
module level or inside a function), is part of ``smartpos.host``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "smartpos"


def _module_of(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = ROOT) -> set[str]:
    found: set[str] = set()
    module = _module_of(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m == "smartpos" or m.startswith("smartpos.")}


def _reached_from(starts: list[str], root: Path = ROOT) -> dict[str, str]:
    """Every smartpos module reached from ``starts``, with the module that imported it."""
    modules = {_module_of(p, root): p for p in root.rglob("*.py")}
    seen = dict.fromkeys(starts, "")
    todo = list(starts)
    while todo:
        name = todo.pop()
        path = modules.get(name)
        if path is None:
            continue
        for imported in _imports(path, root):
            # "from smartpos.x import y" names y, a module or an attribute of smartpos.x.
            target = imported if imported in modules else imported.rpartition(".")[0]
            if target in modules and target not in seen:
                seen[target] = name
                todo.append(target)
    return seen


def _host_modules_reached(root: Path = ROOT) -> dict[str, str]:
    terminal = [_module_of(path, root) for path in (root / "terminal").rglob("*.py")]
    reached = _reached_from(terminal, root)
    return {m: by for m, by in reached.items() if m.split(".")[:2] == ["smartpos", "host"]}


def test_the_terminal_imports_nothing_of_the_host() -> None:
    assert _host_modules_reached() == {}


def test_the_check_finds_a_host_import_two_modules_away(tmp_path: Path) -> None:
    """The walker itself: a terminal module importing a shared one that imports the host
    inside a function is caught, with who imported it."""
    root = tmp_path / "smartpos"
    for name, text in {
        "__init__.py": "",
        "terminal/__init__.py": "",
        "terminal/link.py": "from ..protocol import shared\n",
        "protocol/__init__.py": "",
        "protocol/shared.py": "def f():\n    from smartpos.host.tls import server_context\n",
        "host/__init__.py": "",
        "host/tls.py": "server_context = None\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    assert _host_modules_reached(root) == {"smartpos.host.tls": "smartpos.protocol.shared"}
