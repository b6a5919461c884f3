"""The layers of ARCHITECTURE.md hold: a package imports only the app packages its row allows
(every import statement counts, lazy ones inside functions too). Findings are plain data below
engine, analysis and report; viewstate is viewer logic without Qt; report draws with viewstate."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"

# Below every layer: the package itself (its version), the atomic writer, the user-error list,
# the pickle-free message format of the child processes.
SHARED = {"app", "app.atomic", "app.errors", "app.ipc"}
ALLOWED = {
    "findings": SHARED | {"app.findings", "app.study"},
    "viewstate": SHARED | {"app.viewstate", "app.findings", "app.study"},
    "report": SHARED | {"app.report", "app.findings", "app.study", "app.viewstate"},
    "study": SHARED | {"app.study"},
    "engine": SHARED | {"app.engine", "app.findings", "app.study"},
    "analysis": SHARED | {"app.analysis", "app.engine", "app.findings", "app.study", "app.report"},
    "editing": SHARED
    | {"app.editing", "app.engine", "app.findings", "app.study", "app.viewstate", "app.analysis"},
    "pacs": SHARED | {"app.pacs", "app.analysis", "app.engine", "app.findings", "app.study"},
}
NO_GUI = ("PySide6", "vtkmodules", "vtk", "pyqtgraph")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "app" and len(parts) > 1 else parts[0]


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_what_its_row_allows(layer):
    wrong = []
    for path in sorted((APP / layer).rglob("*.py")):
        for line, module in _imports(path):
            package = _package(module)
            if module.startswith("app") and package not in ALLOWED[layer]:
                wrong.append(f"{path.relative_to(APP.parent)}:{line} imports {module}")
            if module.split(".")[0] in NO_GUI:
                wrong.append(f"{path.relative_to(APP.parent)}:{line} imports {module} (GUI)")
    assert not wrong, "\n".join(wrong)
