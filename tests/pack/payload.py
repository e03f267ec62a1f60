"""Which project files end up in the packed charm, from the parts of charmcraft.yaml.

What each plugin puts in its part's install directory (as charmcraft does it):

- ``uv``: ``venv/`` (the locked runtime set) and a copy of the part source's ``src/``
  and ``lib/``;
- ``charm``: every file of the part source that ``.jujuignore`` (with Juju's defaults)
  does not ignore;
- ``dump``: every file of the part source.

The part's ``stage`` and ``prime`` filesets then select what reaches the charm; they
are applied with craft-parts' own fileset code, as the real build applies them.
"""

from __future__ import annotations

import pathlib
import tempfile

from charmcraft.jujuignore import JujuIgnore, default_juju_ignore
from craft_parts.executor.filesets import Fileset, migratable_filesets
from craft_parts.utils.partition_utils import DEFAULT_PARTITION

# What the charm reads at run time from its own directory.
RUNTIME_DIRS = ("src", "lib", "templates")


def project_files(root: pathlib.Path) -> set[str]:
    """Every file under ``root``, relative, without Python caches."""
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def runtime_files(project: pathlib.Path) -> set[str]:
    """The project files the packed charm needs at run time."""
    return {
        f"{top}/{name}"
        for top in RUNTIME_DIRS
        if (project / top).is_dir()
        for name in project_files(project / top)
    }


def plugin_output(source: pathlib.Path, plugin: str, files: set[str]) -> set[str]:
    """Which of ``files`` (relative to the part's source) a plugin installs."""
    if plugin == "uv":
        return {name for name in files if name.split("/", 1)[0] in ("src", "lib")}
    if plugin == "dump":
        return set(files)
    if plugin == "charm":
        ignore = JujuIgnore(default_juju_ignore)
        if (source / ".jujuignore").is_file():
            ignore.extend_patterns((source / ".jujuignore").read_text().splitlines())
        return {
            name
            for name in files
            if not any(
                ignore.match("/".join(parts), is_dir=True) for parts in _parents(name.split("/"))
            )
            and not ignore.match(name, is_dir=False)
        }
    raise ValueError(f"plugin {plugin!r}: this check does not know what it installs")


def _parents(parts: list[str]) -> list[list[str]]:
    """``[a, b, c]`` -> ``[[a], [a, b]]``: the directories holding a file."""
    return [parts[:i] for i in range(1, len(parts))]


def primed(install: set[str], stage: list[str], prime: list[str]) -> set[str]:
    """The files of ``install`` that the part's stage and prime filesets let through."""
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        for name in install:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).touch()
        staged, _ = migratable_filesets(Fileset(stage, name="stage"), root, DEFAULT_PARTITION)
        prime_set = Fileset(prime, name="prime")
        if prime_set.entries == ["*"] or not prime_set.includes:  # as craft-parts does
            prime_set.combine(Fileset(stage, name="stage"))
        kept, _ = migratable_filesets(prime_set, root, DEFAULT_PARTITION)
    return {path.as_posix() for path in staged & kept}


def packed(project: pathlib.Path, parts: dict[str, dict], files: set[str]) -> set[str]:
    """Which of ``files`` (relative to ``project``) the packed charm holds at the same path.

    ``parts`` are the parts of the expanded charmcraft.yaml. Only ``files`` are followed
    through the parts (the rest of the project cannot change their fate).
    """
    found = set()
    for part in parts.values():
        source = (project / part.get("source", ".")).resolve()
        if part.get("organize"):
            raise ValueError("organize: this check does not model it")
        relative = source.relative_to(project.resolve()).as_posix()
        prefix = "" if relative == "." else f"{relative}/"
        under = {name.removeprefix(prefix) for name in files if name.startswith(prefix)}
        installed = plugin_output(source, part["plugin"], under)
        kept = primed(installed, part.get("stage", ["*"]), part.get("prime", ["*"]))
        found |= kept  # paths in the charm, relative to its root
    return found & files
