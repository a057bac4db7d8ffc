"""The package's shape: dependencies point one way, every module is a module, recipes ship with it.

The import graph is read from the source with ``ast`` (imports inside functions included), so a cycle
cannot hide behind a late import.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "adain"

# Third-party or platform modules that may be imported inside a function: optional extras and
# platform-specific modules. Anything else belongs at the top of its module.
OPTIONAL_IMPORTS = {"tomllib", "tomli", "torchvision", "torch.distributed", "torch.nn.parallel",
                    "torch.utils.tensorboard", "resource", "sys", "onnx", "onnxscript", "onnxruntime",
                    "gradio", "gradio_client", "playwright", "av"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str) -> list[tuple[str, bool]]:
    """``(imported module, inside a function)`` for every import statement of module ``name``."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in in_function) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, id(node) in in_function))
            # ``from . import x`` / ``from .pkg import mod`` import submodules too.
            found += [(f"{target}.{alias.name}", id(node) in in_function) for alias in node.names
                      if f"{target}.{alias.name}" in MODULES]
    return found


def _internal(target: str) -> str | None:
    """The package module an import refers to (``adain.x.y.name`` -> ``adain.x.y``), or None if external."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name in MODULES:
        edges = {_internal(t) for t, _ in _imports(name)} - {None, name}
        # A module importing its own package's __init__ (e.g. ``from . import x``) is not a cycle.
        graph[name] = {e for e in edges if not name.startswith(e + ".")}
    return graph


def test_import_graph_is_acyclic_including_imports_inside_functions():
    graph, state, cycles = _graph(), {}, []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [node, nxt]))
            elif nxt not in state:
                visit(nxt, stack + [node])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert not cycles, f"import cycles: {cycles}"


def test_the_engine_never_imports_the_command_line():
    for name in MODULES:
        if name.startswith("adain.cli") or name == "adain.__main__":
            continue
        bad = [t for t, _ in _imports(name) if _internal(t) and _internal(t).startswith("adain.cli")]
        assert not bad, f"{name} imports {bad}: only the command line may import adain.cli"


def test_modeling_imports_only_torch():
    for name in MODULES:
        if not name.startswith("adain.modeling"):
            continue
        for target, _ in _imports(name):
            internal = _internal(target)
            ok = (internal or "").startswith("adain.modeling") or target.split(".")[0] in ("torch", "__future__",
                                                                                        "collections", "dataclasses",
                                                                                        "typing", "math")
            assert ok, f"{name} imports {target}: adain.modeling is pure tensor code (torch and the stdlib only)"


def test_the_model_does_not_import_its_exporter():
    # adain.export builds on adain.model; the deprecated AdaINModel.export_onnx reaches it through a slot.
    bad = [t for t, _ in _imports("adain.model") if (_internal(t) or "").startswith("adain.export")]
    assert not bad, f"adain.model imports {bad}: the export package imports the model side, not the reverse"
    assert "adain.model" in _graph()["adain.export"]


def test_imports_inside_functions_are_only_for_optional_dependencies():
    for name in MODULES:
        late = [t for t, inside in _imports(name) if inside]
        bad = [t for t in late if _internal(t) or not any(t == o or t.startswith(o + ".") for o in OPTIONAL_IMPORTS)]
        assert not bad, f"{name} imports {bad} inside a function; move them to the top of the module"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_submodule_imports_as_the_module_it_names(name):
    module = importlib.import_module(name)
    assert module.__name__ == name and Path(module.__file__) == MODULES[name]
    # ``import adain.x.y as m`` binds the attribute chain: no function may shadow a submodule.
    obj = importlib.import_module("adain")
    for part in name.split(".")[1:]:
        obj = getattr(obj, part)
    assert obj is module, f"adain.{'.'.join(name.split('.')[1:])} is {obj!r}, not the module"


def test_training_recipes_ship_in_the_wheel_and_load_by_name_anywhere(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(REPO_ROOT)], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = wheels.glob("adain-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    assert {"adain/training/recipes/paper.toml", "adain/training/recipes/reference_port.toml",
            "adain/training/recipes/torch_original.toml"} <= set(names)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import adain, adain.training._config as c; print(adain.__file__); "
            "print(c.read_toml('paper')['max_iter'], c.read_toml('reference-port')['style_weight'])")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0].startswith(str(site)), "the installed wheel, not the clone, must be imported"
    assert out[1].split()[0] == "160000"


@pytest.mark.parametrize("old, new", [("adain.stylizer", "adain.inference._stylizer"), ("adain.io", "adain._io"),
                                      ("adain.weights.hub", "adain.weights._hub"),
                                      ("adain.training.loop", "adain.training._loop")])
def test_a_module_of_the_first_layout_is_still_reachable_with_a_deprecation_warning(old, new):
    package, _, name = old.rpartition(".")
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated: it is the internal module {new} now"):
        module = getattr(importlib.import_module(package), name)
    assert module is importlib.import_module(new)


def test_an_unknown_attribute_of_a_package_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        importlib.import_module("adain.weights").nonexistent
