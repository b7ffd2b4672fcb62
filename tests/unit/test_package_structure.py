"""The package's import rules (docs/architecture.md): imports run one way down the pipeline, and no
module imports itself back through another (no import cycle), function-local imports included."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "autopatch"

# Lowest first: a module may import its own package and packages of lower layers, nothing else.
LAYERS = [
    {"", "errors", "_lazy"},
    {"device", "files", "image_size"},
    {"data"},
    {"metrics"},
    {"backbones"},
    {"features"},
    {"bank"},
    {"segmenter"},
    {"baselines"},
    {"search"},
    {"report"},
    {"experiment"},
    {"deploy"},
    {"api"},
    {"cli"},
]
LAYER = {name: index for index, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = ["autopatch", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in SRC.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """Every autopatch module `name` imports (a `from package import submodule` counts the submodule)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("autopatch")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("autopatch"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
    return found - {name}


def package_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_has_a_layer():
    assert {package_of(name) for name in MODULES} == set(LAYER)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_run_down_the_pipeline(name):
    own = package_of(name)
    upward = sorted(
        target for target in imports_of(name)
        if package_of(target) != own and LAYER[package_of(target)] >= LAYER[own]
    )  # fmt: skip
    assert not upward, f"{name} (layer {LAYER[own]}) imports {upward}"


def test_no_import_cycle():
    graph = {name: imports_of(name) for name in MODULES}
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
