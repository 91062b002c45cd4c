"""ARCHITECTURE.md stays true: every module it names exists, and imports follow its layers."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fastapi_cachekit"
MAP = (ROOT / "ARCHITECTURE.md").read_text()

# Where a path written in the map may start: the repository, the package, or a subpackage.
BASES = [
    ROOT,
    PACKAGE,
    PACKAGE / "fastapi",
    PACKAGE / "fastapi" / "middleware",
    PACKAGE / "backends",
    PACKAGE / "backends" / "redis",
]

# The layers of the map: a module may import from the package only what its layer allows.
VOCABULARY = {"errors", "models", "checks", "keys", "patterns", "ttl", "events"}
# The modules the service is made of, beside service.py itself.
SERVICE_PARTS = {
    "accounting",
    "backend_io",
    "batch",
    "fills",
    "flights",
    "invalidations",
    "lifetime",
    "maintenance",
    "misses",
    "observing",
    "refresh",
    "switch",
}
ALLOWED: list[tuple[str, set[str]]] = [
    ("observers", VOCABULARY | {"observers"}),
    ("fastapi.http", VOCABULARY | {"fastapi.http"}),
    ("fastapi", {"*"}),
    ("factory", {"*"}),
    # An app's current service (`@cached(app)`), looked up through the FastAPI wiring.
    (
        "decorators",
        VOCABULARY | {"service", "settings", "serialization", "fastapi.dependencies", "refresh"},
    ),
    ("service", VOCABULARY | SERVICE_PARTS | {"settings", "serialization", "backends.base"}),
    ("flights", VOCABULARY),
    (
        "refresh",
        VOCABULARY
        | {"accounting", "backend_io", "flights", "observing", "serialization", "backends.base"},
    ),
    (
        "invalidations",
        VOCABULARY | {"backend_io", "batch", "flights", "observing", "backends.base"},
    ),
    ("lifetime", VOCABULARY | {"accounting", "maintenance", "backends.base"}),
    ("switch", {"backend_io"}),
    (
        "misses",
        VOCABULARY
        | {
            "accounting",
            "backend_io",
            "fills",
            "flights",
            "observing",
            "serialization",
            "backends.base",
        },
    ),
    ("accounting", VOCABULARY | {"backends.base"}),
    ("observing", VOCABULARY | {"accounting"}),
    ("maintenance", VOCABULARY),
    ("backend_io", VOCABULARY | {"accounting", "maintenance", "backends.base"}),
    ("fills", VOCABULARY | {"accounting", "backend_io", "serialization", "backends.base"}),
    (
        "batch",
        VOCABULARY
        | {
            "accounting",
            "backend_io",
            "maintenance",
            "observing",
            "serialization",
            "backends.base",
        },
    ),
    ("backends", VOCABULARY | {"settings", "serialization", "backends"}),
    ("settings", VOCABULARY),
    ("serialization", VOCABULARY),
    ("errors", VOCABULARY),
    ("models", VOCABULARY),
    ("checks", VOCABULARY),
    ("keys", VOCABULARY),
    ("patterns", VOCABULARY),
    ("ttl", VOCABULARY),
    ("events", VOCABULARY),
    ("__init__", {"*"}),
    ("__main__", {"*"}),
    ("testing", {"*"}),
    ("cli", {"*"}),
]
STANDARD_ONLY = "fastapi.http"  # the pure rules: no third-party import at all


def named_paths() -> set[str]:
    """Paths in backticks, and the files of the layout tree."""
    paths = {p for p in re.findall(r"`([\w/]+(?:\.py|/))`", MAP)}
    tree = MAP.split("```", 2)[1]
    stack: list[tuple[int, str]] = []
    for line in tree.splitlines():
        match = re.match(r"( *)(\S+)", line)
        if not match:
            continue
        indent, name = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        for word in line.split("  "):
            word = word.strip()
            if re.fullmatch(r"[\w]+(\.py|/)", word):
                paths.add("".join(part for _, part in stack) + word)
        if name.endswith("/"):
            stack.append((indent, name))
    return paths


@pytest.mark.parametrize("path", sorted(named_paths()))
def test_every_module_the_map_names_exists(path: str) -> None:
    assert any((base / path).exists() for base in BASES), f"ARCHITECTURE.md names {path!r}"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def package_imports(path: Path) -> set[str]:
    """The package modules `path` imports, as dotted names relative to the package."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(target)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            for alias in (
                [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            ):
                if alias and alias.startswith("fastapi_cachekit"):
                    found.add(alias.removeprefix("fastapi_cachekit").lstrip("."))
    return {f for f in found if f}


def third_party_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "__future__"}


def allowed_for(name: str) -> set[str]:
    layer = next(allowed for prefix, allowed in ALLOWED if name.startswith(prefix))
    return layer


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path: Path) -> None:
    name = module_name(path)
    allowed = allowed_for(name)
    if "*" in allowed:
        return
    wrong = {
        target
        for target in package_imports(path)
        if not any(target == a or target.startswith(a + ".") for a in allowed)
    }
    assert not wrong, f"{name} imports {sorted(wrong)}; its layer allows {sorted(allowed)}"


@pytest.mark.parametrize(
    "path", sorted((PACKAGE / "fastapi" / "http").glob("*.py")), ids=lambda p: p.name
)
def test_the_http_rules_import_no_third_party_package(path: Path) -> None:
    assert not third_party_imports(path), STANDARD_ONLY


SUBPACKAGES = ("fastapi.http", "fastapi.middleware", "backends.redis")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_other_packages_import_a_subpackage_not_its_modules(path: Path) -> None:
    name = module_name(path)
    reaching_in = {
        target
        for target in package_imports(path)
        for sub in SUBPACKAGES
        if target.startswith(sub + ".") and not name.startswith(sub)
    }
    assert not reaching_in, f"{name} imports {sorted(reaching_in)}: import the subpackage"
