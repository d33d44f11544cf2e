"""The manifest package is a leaf, and its modules are floors: each imports only the ones below it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import squall.manifest
from squall.manifest.triggers import TRIGGER_KINDS

PACKAGE = Path(squall.manifest.__file__).parent

KIND_MODULES = [model.__module__.removeprefix("squall.manifest.") for model in TRIGGER_KINDS.values()]
"""The module of each trigger kind (a new kind needs no change here)."""
FLOORS = ["errors", "yaml_lines", "values", "sections", "filter_policy", "cron_fields",
          "schedule_expressions", "resources", "tables", "stages", "grants", "destinations", *KIND_MODULES,
          "triggers", "functions", "project", "__init__"]
"""The package's modules, lowest first, as squall/manifest/__init__.py lists them."""

OUTSIDE = {"squall.exceptions", "squall.route_auth"}
"""The only squall modules outside the package that it may import: leaves themselves."""


def _imports(module: str) -> set[str]:
    """Every squall module `module` names in an import, wherever the import is (TYPE_CHECKING too)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name == "squall" or name.startswith("squall.")}


def test_every_module_has_a_floor() -> None:
    assert sorted(FLOORS) == sorted(path.stem for path in PACKAGE.glob("*.py"))


def test_modules_import_only_modules_below_them() -> None:
    upward = []
    for index, module in enumerate(FLOORS):
        below = {f"squall.manifest.{name}" for name in FLOORS[:index]}
        for name in _imports(module):
            # `from squall.manifest.values import is_env_name` names the module and its attribute.
            if name.startswith("squall.manifest."):
                allowed = ".".join(name.split(".")[:3]) in below
            else:
                allowed = name in OUTSIDE or name.rsplit(".", 1)[0] in OUTSIDE
            if not allowed:
                upward.append(f"{module} imports {name}")
    assert upward == []


def test_importing_the_manifest_loads_no_upper_package() -> None:
    upper = ("squall.events", "squall.runtime", "squall.tables", "squall.store", "squall.node",
             "squall.server", "squall.cli", "squall.sdk")
    code = ("import sys, squall.manifest; "
            f"print(sorted(name for name in sys.modules if name.startswith({upper!r})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
