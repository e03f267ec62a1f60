"""Import every charm module and every import statement in it, as a hook would.

Run by tests/pack with the python of a venv that holds only the locked runtime set:

    VENV/bin/python -I tests/pack/import_check.py SRC_DIR LIB_DIR

Each ``*.py`` under the given directories is imported as a module (``src/core/render.py``
is ``core.render``), and so is every module that any ``import`` statement in it names,
including the ones inside functions (the charm imports lightkube, pg8000, bcrypt and cosl
lazily, so importing the module alone proves nothing about them). ``from M import N``
also needs ``N`` to exist in ``M`` (or ``M.N`` to import): ``ops.testing`` imports
without ops[testing], ``ops.testing.Context`` does not. Imports under
``if TYPE_CHECKING:`` are skipped: they never run.

Prints one JSON object (python, modules, imports, errors) and exits 1 on any error.
Standard library only: the venv under test must not need anything else.
"""

from __future__ import annotations

import ast
import importlib
import json
import pathlib
import sys


def module_name(root: pathlib.Path, path: pathlib.Path) -> str:
    """``root/a/b.py`` -> ``a.b``; ``root/a/__init__.py`` -> ``a``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_type_checking(node: ast.If) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:``."""
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` outside ``if TYPE_CHECKING:`` bodies (their else runs)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                yield child
                yield from runtime_nodes(child)
            continue
        yield node
        yield from runtime_nodes(node)


def imports_of(path: pathlib.Path, module: str) -> list[tuple[str, str | None]]:
    """(module, name or None) for every import statement that runs in ``path``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, str | None]] = []
    for node in runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found += [(base, alias.name) for alias in node.names if alias.name != "*"]
    return found


def check(module: str, name: str | None) -> str | None:
    """Import ``module`` (and ``name`` from it); the error text, or None."""
    try:
        imported = importlib.import_module(module)
        if name is not None and not hasattr(imported, name):
            importlib.import_module(f"{module}.{name}")
    except Exception as exc:
        what = f"from {module} import {name}" if name else f"import {module}"
        return f"{what}: {type(exc).__name__}: {exc}"
    return None


def main(roots: list[pathlib.Path]) -> int:
    """Import everything under ``roots``; print the report; 1 if anything failed."""
    sys.path[:0] = [str(root) for root in roots]
    modules, imports, errors = [], set(), []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            module = module_name(root, path)
            modules.append(module)
            if error := check(module, None):
                errors.append(f"{path.relative_to(root.parent)}: {error}")
            for target in imports_of(path, module):
                imports.add(target)
                if error := check(*target):
                    errors.append(f"{path.relative_to(root.parent)}: {error}")
    report = {
        "python": sys.version.split()[0],
        "modules": modules,
        "imports": sorted(f"{m}:{n}" if n else m for m, n in imports),
        "errors": errors,
    }
    print(json.dumps(report, indent=1))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main([pathlib.Path(arg).resolve() for arg in sys.argv[1:]]))
