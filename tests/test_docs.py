"""The documentation: the site builds strictly, its API index is exactly the public API, and the README
is short and links only to files that exist.

The site is built once per session (``mkdocs build --strict`` into a temporary folder); the tests read its
object inventory (``objects.inv``, the Sphinx inventory format: four header lines, then zlib-compressed
``name domain:role priority uri dispname`` lines) and its rendered API pages.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
README_MAX_BYTES = 12 * 1024

# The modules with a page in the API reference (docs/api/), each rendering what its __all__ lists.
DOCUMENTED_MODULES = [
    "adain",
    "adain.methods",
    "adain.inference",
    "adain.optimization",
    "adain.video",
    "adain.datasets",
    "adain.augment",
    "adain.training",
    "adain.weights",
    "adain.export",
    "adain.modeling",
    "adain.errors",
    "adain.metrics",
    "adain.demo",
]
# Public names whose definitions have no docstring yet: mkdocstrings renders documented objects only.
UNDOCUMENTED: set[str] = set()


@dataclass(frozen=True)
class Entry:
    name: str
    role: str
    priority: str
    uri: str


@dataclass(frozen=True)
class Site:
    folder: Path
    entries: list[Entry]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the documentation needs the docs extra: pip install -e '.[dev]'")
    folder = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(REPO_ROOT / "mkdocs.yml"),
            "--site-dir",
            str(folder),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return Site(folder, read_inventory(folder / "objects.inv"))


def read_inventory(path: Path) -> list[Entry]:
    header, _, rest = path.read_bytes().partition(b"zlib.\n")
    assert header.startswith(b"# Sphinx inventory version 2\n"), header[:80]
    entries = []
    for line in zlib.decompress(rest).decode("utf-8").splitlines():
        name, role, priority, uri, _ = line.split(" ", 4)
        entries.append(Entry(name, role, priority, uri))
    return entries


def resolve(path: str):
    """Import the longest importable module prefix of a dotted path, then getattr the rest."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            if importlib.util.find_spec(module_name) is None:
                continue
        except ImportError:  # a parent is not a package (a class, a plain module): a shorter prefix
            continue
        obj = importlib.import_module(module_name)
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def is_private(path: str) -> bool:
    return any(part.startswith("_") and not (part.startswith("__") and part.endswith("__")) for part in path.split("."))


@pytest.mark.slow
def test_the_api_index_holds_only_public_paths(site):
    assert site.entries, "the inventory is empty"
    private = [e.name for e in site.entries if is_private(e.name)]
    assert not private, f"private paths in the API index: {private}"
    # Secondary entries (a private defining module, a module that merely imports the name) are dropped.
    assert {e.priority for e in site.entries} == {"1"}


def test_every_documented_name_exists(site):
    missing = []
    for entry in site.entries:
        try:
            resolve(entry.name)
        except (ImportError, AttributeError):
            missing.append(entry.name)
    assert not missing, f"documented but not in the package: {missing}"


def test_each_documented_module_shows_exactly_its_all(site):
    documented = {e.name for e in site.entries}
    modules = {e.name for e in site.entries if e.role == "py:module"}
    assert modules == set(DOCUMENTED_MODULES)
    for module_name in DOCUMENTED_MODULES:
        exported = set(importlib.import_module(module_name).__all__)
        shown = {name.rpartition(".")[2] for name in documented - modules if name.rpartition(".")[0] == module_name}
        assert shown <= exported, f"{module_name}: rendered but not in __all__: {sorted(shown - exported)}"
        absent = {f"{module_name}.{name}" for name in exported - shown} - UNDOCUMENTED
        assert not absent, f"{module_name}: in __all__ but not in the API reference: {sorted(absent)}"


def test_rendered_api_pages_have_no_private_anchor(site):
    pages = sorted((site.folder / "api").glob("*/index.html"))
    assert len(pages) >= len(DOCUMENTED_MODULES)
    for page in pages:
        anchors = re.findall(r'id="(adain[^"]*)"', page.read_text(encoding="utf-8"))
        assert not [a for a in anchors if is_private(a)], page


def _visible_text(html_page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", html_page))


def test_rendered_docstrings_name_no_internal_module(site):
    """Public docstrings say what the user needs, or link public names and guides: no ``adain._runtime``,
    ``adain.inference._tiling``, bare ``_options``, nor the README sections and DESIGN.md of the first layout."""
    for page in sorted((site.folder / "api").glob("*/index.html")):
        source = page.read_text(encoding="utf-8")
        text = _visible_text(source)
        assert not re.findall(r"\badain(?:\.\w+)*\._[a-z]\w*", text), page
        assert not re.findall(r"<code>_[a-z]\w*</code>", source), page
        assert not re.findall(r"DESIGN\.md|\bthe README\b(?!\.md)|README's", text), page


def test_rendered_docstring_sections_are_parsed(site):
    """A Google-style section griffe did not recognise (e.g. ``Returns:`` with no blank line before it, or a
    reStructuredText ``Usage::``) is rendered as a plain paragraph starting with its title."""
    for page in sorted((site.folder / "api").glob("*/index.html")):
        raw = re.findall(
            r"<p>(Arguments|Args|Parameters|Returns|Raises|Attributes|Examples|Yields|Usage):",
            page.read_text(encoding="utf-8"),
        )
        assert not raw, f"{page}: sections rendered as text: {raw}"


def _public_objects(griffe):
    """Every object the API pages render: the ``__all__`` names of the documented modules and the public
    members of their classes, as griffe (mkdocstrings' loader) reads them."""
    package = griffe.load("adain", search_paths=[str(REPO_ROOT)], docstring_parser="google")
    seen: dict[str, object] = {}

    def visit(obj) -> None:
        obj = obj.final_target if obj.is_alias else obj
        if obj.path in seen:
            return
        seen[obj.path] = obj
        if obj.is_class:
            for name, member in obj.members.items():
                if not name.startswith("_") or name == "__call__":
                    visit(member)

    for module_name in DOCUMENTED_MODULES:
        module = package if module_name == "adain" else package[module_name.removeprefix("adain.")]
        for name in importlib.import_module(module_name).__all__:
            visit(module[name])
    return seen.values()


def test_documented_parameters_and_fields_are_complete():
    """The Arguments/Attributes sections are the options reference: a docstring that documents parameters
    documents each one (one entry per parameter), and a public dataclass documents each field."""
    griffe = pytest.importorskip("griffe", reason="the documentation needs the docs extra")
    missing = []
    for obj in _public_objects(griffe):
        sections = obj.docstring.parse(griffe.Parser.google) if obj.docstring else []
        documented = {
            item.name.lstrip("*")
            for section in sections
            if section.kind.value in ("parameters", "attributes")
            for item in section.value
        }
        function = obj if obj.is_function else obj.members.get("__init__") if obj.is_class else None
        if function is not None and not function.is_alias and any(s.kind.value == "parameters" for s in sections):
            names = {p.name for p in function.parameters} - {"self", "cls"}
            missing += [f"{obj.path}({name})" for name in sorted(names - documented)]
        if obj.is_class and "dataclass" in obj.labels:
            fields = {
                name
                for name, m in obj.members.items()
                if not m.is_alias
                and m.is_attribute
                and not name.startswith("_")
                and "property" not in m.labels
                and m.annotation is not None
            }
            missing += [f"{obj.path}.{name}" for name in sorted(fields - documented)]
    assert not missing, f"undocumented parameters or fields: {missing}"


def test_names_waiting_for_other_branches_are_switched_on_once_they_exist():
    """Guides mention API that lands with other branches in ``<!-- after-merge ... -->`` comments (plain text
    in the page meanwhile, so the strict build passes): once a name exists, its reference must be switched on."""
    waiting = []
    for page in sorted((REPO_ROOT / "docs").rglob("*.md")):
        for comment in re.findall(r"<!-- after-merge(.*?)-->", page.read_text(encoding="utf-8"), flags=re.S):
            names = re.findall(r"\]\[([\w.]+)\]", comment) + re.findall(r"^::: ([\w.]+)", comment, flags=re.M)
            for name in names:
                try:
                    resolve(name)
                except (ImportError, AttributeError):
                    continue
                waiting.append(f"{page.relative_to(REPO_ROOT)}: {name}")
    assert not waiting, f"these exist now: switch on their references (and drop the comment): {waiting}"


def _readme_links(text: str) -> list[str]:
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)


def test_readme_is_short():
    size = README.stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move detail to docs/ (at most {README_MAX_BYTES})"


def test_readme_links_only_to_files_that_exist():
    links = _readme_links(README.read_text(encoding="utf-8"))
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        assert "://" not in link and not link.startswith(("/", "mailto:")), f"not a file of the repository: {link}"
        target = link.split("#", 1)[0]
        assert (README.parent / target).exists(), f"README.md links to {link}, which does not exist"


def test_ci_runs_the_readme_install_and_test_commands_and_the_checks_it_lists():
    readme = README.read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", readme, flags=re.S).group(1).strip().splitlines()
    assert first_block == ['pip install -e ".[dev]"', "python -m pytest -q"]
    checks = ["ruff check .", "ruff format --check .", "mypy", "mkdocs build --strict"]
    assert all(f"`{check}`" in readme for check in checks), "the README lists what CI runs"
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    for command in [*first_block, *checks]:
        assert command in ci, f".ci/run does not run {command!r}"
    assert ci.index(first_block[0]) < ci.index(first_block[1]) < min(ci.index(check) for check in checks)
