"""The layers only call downwards: an import from a lower layer into a higher one fails this test.

    sensors (radiometry)      tiling (raster I/O, plans, runner)      <- know nothing of diffusion
    geodiff core (errors, device, priors, likelihoods, operators, solvers)  <- torch in, torch out
    geodiff.apps (despeckle, fuse, qa, info, plan)                     <- compose the layers below
    fronts (geodiff.cli, geodiff.commands, geodiff.api, geodiff.accessors)

Every import is scanned, function-level ones included (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FRONTS = ("geodiff.cli", "geodiff.commands", "geodiff.api", "geodiff.accessors")
CORE = (
    "geodiff.errors",
    "geodiff.device",
    "geodiff.priors",
    "geodiff.likelihoods",
    "geodiff.operators",
    "geodiff.solvers",
)

# (modules the rule applies to, imports they must not make)
RULES: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("sensors",), ("rasterio", "tiling", "geodiff")),
    (("tiling",), ("sensors", "geodiff")),
    (CORE, ("sensors", "tiling", "geodiff.apps", *FRONTS)),
    (("geodiff.apps",), FRONTS),
    (("geodiff.apps.despeckle",), ("geodiff.apps.fuse",)),  # fusion uses despeckling, not the reverse
]

# (module, import) pairs allowed despite RULES: geodiff.errors re-exports the lower layers' exceptions
# (modules that hold nothing but exception classes), so a caller needs one errors module.
ALLOWED = {("geodiff.errors", "sensors.errors"), ("geodiff.errors", "tiling.errors")}


def module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
    return found


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(root: Path = REPO, packages: tuple[str, ...] = ("sensors", "tiling", "geodiff")) -> list[str]:
    """Every import in ``packages`` under ``root`` that breaks one of :data:`RULES`."""
    bad = []
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            module = module_name(path, root)
            for lineno, imported in imports_of(path, module):
                if (module, imported) in ALLOWED:
                    continue
                for applies_to, forbidden in RULES:
                    if _within(module, applies_to) and _within(imported, forbidden):
                        bad.append(f"{path.relative_to(root)}:{lineno}: {module} imports {imported}")
    return bad


def test_layers_only_import_downwards() -> None:
    bad = violations()
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("where", "line"),
    [
        ("sensors/units.py", "import rasterio"),
        ("tiling/plan.py", "def f():\n    from geodiff.apps import facts\n"),
        ("geodiff/solvers/sar.py", "from tiling.blend import BlendHook"),
        ("geodiff/priors/x.py", "from ..apps import qa"),
        ("geodiff/apps/qa.py", "from geodiff.cli import emit_json"),
        ("geodiff/apps/despeckle/scene.py", "from ..fuse import arrays"),
    ],
)
def test_the_scan_catches_an_upward_import(tmp_path: Path, where: str, line: str) -> None:
    """The checker itself can fail: a planted upward import (function-level or relative) is found."""
    target = tmp_path / where
    target.parent.mkdir(parents=True, exist_ok=True)
    for parent in target.relative_to(tmp_path).parents:
        if str(parent) != ".":
            (tmp_path / parent / "__init__.py").touch()
    target.write_text(line + "\n")
    assert violations(tmp_path, packages=(where.split("/")[0],)), f"missed: {where}: {line}"
