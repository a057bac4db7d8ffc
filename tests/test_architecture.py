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
OPTIONAL_IMPORTS = {
    "tomllib",
    "tomli",
    "torchvision",
    "torch.distributed",
    "torch.nn.parallel",
    "torch.utils.tensorboard",
    "resource",
    "sys",
    "onnx",
    "onnxscript",
    "onnxruntime",
    "gradio",
    "gradio_client",
    "playwright",
    "av",
    "h5py",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str) -> list[tuple[str, bool]]:
    """``(imported module, inside a function)`` for every import statement of module ``name``."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    in_function = {
        id(n)
        for f in ast.walk(tree)
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
        for n in ast.walk(f)
        if isinstance(n, (ast.Import, ast.ImportFrom))
    }
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
            found += [
                (f"{target}.{alias.name}", id(node) in in_function)
                for alias in node.names
                if f"{target}.{alias.name}" in MODULES
            ]
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
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [node, nxt]))
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


def _signal_handler_calls(name: str) -> list[int]:
    """Lines of module ``name`` that call ``signal.signal`` (under any alias, or imported from ``signal``)."""
    tree = ast.parse(MODULES[name].read_text())
    modules, functions = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.asname or alias.name for alias in node.names if alias.name == "signal"}
        elif isinstance(node, ast.ImportFrom) and node.module == "signal" and not node.level:
            functions |= {alias.asname or alias.name for alias in node.names if alias.name == "signal"}
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (
                isinstance(node.func, ast.Attribute)
                and node.func.attr == "signal"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in modules
            )
            or (isinstance(node.func, ast.Name) and node.func.id in functions)
        )
    ]


def test_no_library_module_installs_a_signal_handler():
    # Signals are the command line's: library functions stop through their callbacks (adain.cli._signals).
    assert _signal_handler_calls("adain.cli._signals"), "the detector must see the command line's own handlers"
    offenders = {
        name: lines for name in MODULES if not name.startswith("adain.cli") if (lines := _signal_handler_calls(name))
    }
    assert not offenders, f"signal.signal called outside adain.cli: {offenders}"


def test_inference_never_imports_the_optimization_backend_or_the_command_line():
    for name in MODULES:
        if not name.startswith("adain.inference"):
            continue
        bad = [t for t, _ in _imports(name) if (_internal(t) or "").startswith(("adain.optimization", "adain.cli"))]
        assert not bad, f"{name} imports {bad}: method='gatys' is dispatched by adain.methods, above both backends"


ENGINE_MODULES = (
    "adain.inference._engine",
    "adain.inference._features",
    "adain.inference._tile_grid",
    "adain.inference._tiling",
    "adain.inference._transfer",
)


@pytest.mark.parametrize("name", ENGINE_MODULES)
def test_the_engine_is_tensor_only(name):
    """No PIL, no files, no argument checks, no image-likes: those are the Stylizer's (the boundary's)."""
    for target, _ in _imports(name):
        internal = _internal(target)
        assert target.split(".")[0] != "PIL", f"{name} imports {target}: the engine knows no PIL"
        assert internal not in ("adain._io", "adain.inference._checks", "adain.inference._stylizer"), (
            f"{name} imports {target}: files, checks and image-likes belong to the Stylizer, not the engine"
        )


# Underscore attributes of third-party objects that are their documented way to read something.
EXTERNAL_PRIVATE_ATTRIBUTES = {"_version"}  # torch.Tensor._version: the in-place version counter


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own_private_names(tree: ast.AST) -> set[str]:
    """Underscore names a module defines itself: functions, classes, assignments, attributes it sets, keywords."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.keyword) and node.arg:
            names.add(node.arg)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {n for n in names if _private(n)}


def _foreign_private_uses(name: str) -> list[str]:
    """Where module ``name`` uses another module's underscore names: ``from x import _name`` (not a module),
    or ``obj._name`` where ``obj`` is neither ``self``/``cls``/``super()`` nor a third-party module and
    ``_name`` is not the module's own."""
    tree = ast.parse(MODULES[name].read_text())
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    external, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            external |= {(a.asname or a.name).split(".")[0] for a in node.names if not a.name.startswith("adain")}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                if not target.startswith("adain"):
                    external.add(alias.asname or alias.name)
                elif _private(alias.name) and f"{target}.{alias.name}" not in MODULES:
                    found.append(f"line {node.lineno}: from {target} import {alias.name}")
    own = _own_private_names(tree)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and _private(node.attr)):
            continue
        if node.attr in own or node.attr in EXTERNAL_PRIVATE_ATTRIBUTES:
            continue
        value = node.value
        if isinstance(value, ast.Name) and value.id in ("self", "cls"):
            continue
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super":
            continue
        root = value
        while isinstance(root, (ast.Attribute, ast.Call, ast.Subscript)):
            root = root.func if isinstance(root, ast.Call) else root.value
        if isinstance(root, ast.Name) and root.id in external:
            continue  # torch._dynamo, sys._getframe...: a third-party module's own business
        found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_uses_another_modules_underscore_names(name):
    """Private means private to its module: ``stylizer._encode()`` from tiling, ``from ._tiling import _grid``
    or ``prepared._cache`` from elsewhere would be a door that the import graph cannot see."""
    found = _foreign_private_uses(name)
    assert not found, f"{name} uses underscore names of other modules: {found}"


def test_the_private_use_detector_sees_the_doors_it_forbids(tmp_path, monkeypatch):
    code = (
        "from adain.inference._tile_grid import _spans\nfrom adain.inference import _tiling as tiling\n"
        "import torch\n\ndef f(stylizer, t):\n    stylizer._encode(t)\n    tiling._batches(t)\n"
        "    torch._dynamo.reset()\n    return self_made._own\n\nself_made = None\n_own = 1\n"
    )
    fake = tmp_path / "fake.py"
    fake.write_text(code)
    monkeypatch.setitem(MODULES, "adain.fake", fake)
    found = _foreign_private_uses("adain.fake")
    assert [f.split(": ", 1)[1] for f in found] == [
        "from adain.inference._tile_grid import _spans",
        "stylizer._encode",
        "tiling._batches",
    ]


def test_modeling_imports_only_torch():
    for name in MODULES:
        if not name.startswith("adain.modeling"):
            continue
        for target, _ in _imports(name):
            internal = _internal(target)
            ok = (internal or "").startswith("adain.modeling") or target.split(".")[0] in (
                "torch",
                "__future__",
                "collections",
                "dataclasses",
                "typing",
                "math",
            )
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


@pytest.mark.slow
def test_training_recipes_ship_in_the_wheel_and_load_by_name_anywhere(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(REPO_ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("adain-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    assert {
        "adain/training/recipes/paper.toml",
        "adain/training/recipes/reference_port.toml",
        "adain/training/recipes/torch_original.toml",
    } <= set(names)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import adain, adain.training._config as c; print(adain.__file__); "
        "print(c.read_toml('paper')['max_iter'], c.read_toml('reference-port')['style_weight'])"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0].startswith(str(site)), "the installed wheel, not the clone, must be imported"
    assert out[1].split()[0] == "160000"


@pytest.mark.parametrize(
    "old, new",
    [
        ("adain.stylizer", "adain.inference._stylizer"),
        ("adain.io", "adain._io"),
        ("adain.weights.hub", "adain.weights._hub"),
        ("adain.compiled", "adain.inference._prepared"),
        ("adain.training.loop", "adain.training._loop"),
    ],
)
def test_a_module_of_the_first_layout_is_still_reachable_with_a_deprecation_warning(old, new):
    package, _, name = old.rpartition(".")
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated: it is the internal module {new} now"):
        module = getattr(importlib.import_module(package), name)
    assert module is importlib.import_module(new)


def test_an_unknown_attribute_of_a_package_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        getattr(importlib.import_module("adain.weights"), "nonexistent")  # noqa: B009 -- the attribute protocol itself


def test_the_package_root_holds_at_most_twelve_modules_and_the_engine_has_its_own_package():
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= 12, f"{len(root)} modules at the package root: group them by concern into subpackages: {root}"
    import adain.inference as inference

    assert {"Engine", "Style", "Stylizer", "TileProgress"} <= set(inference.__all__)
    assert {
        MODULES[n].parent.name
        for n in ("adain.inference._engine", "adain.inference._tiling", "adain.inference._stylizer")
    } == {"inference"}
