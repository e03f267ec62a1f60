"""What `charmcraft pack` needs from the project, checked without LXD (`tox -e pack`).

Each check runs on the real project, and on a broken copy of it to show that the check
fails when it should: a Rust package without wheels, a lazily imported package missing
from the lock, a test-only import in src/, a part that drops the templates.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess

import payload
import pytest
import runtime_set
import yaml
from runtime_set import ROOT

# Rust or C extensions of the runtime set: built from source, they need a toolchain.
COMPILED = ("cryptography", "cffi", "pydantic-core", "bcrypt")
# Imported inside functions only (see `grep -rn 'import' src | grep noqa`).
LAZY = {"lightkube": "lightkube", "pg8000": "pg8000.native", "bcrypt": "bcrypt", "cosl": "cosl"}
TEST_AND_TOOL_PACKAGES = {
    "pytest",
    "hypothesis",
    "ops-scenario",
    "coverage",
    "promql-parser",
    "jubilant",
    "trino",
    "ruff",
    "codespell",
    "pyright",
    "tox",
    "charmcraft",
    "uv",
}
PROJECT_FILES = (
    "charmcraft.yaml",
    "metadata.yaml",
    "config.yaml",
    "actions.yaml",
    "pyproject.toml",
    "uv.lock",
    "requirements.txt",
    "src",
    "lib",
    "templates",
)


@pytest.fixture
def copy(tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of the project files that matter for packing, to break on purpose."""
    project = tmp_path / "project"
    project.mkdir()
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, project / name)
    return project


@pytest.fixture(scope="session")
def charm_python() -> str:
    """The interpreter of the runtime venvs (the charm's CPython 3.12 when present)."""
    return runtime_set.charm_python()


@pytest.fixture(scope="session")
def runtime_python(tmp_path_factory: pytest.TempPathFactory, charm_python: str) -> pathlib.Path:
    """The python of a venv holding the project's locked runtime set and nothing else."""
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    return runtime_set.build_runtime_venv(ROOT, venv, charm_python)


def expand(project: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """`charmcraft expand-extensions` in ``project``."""
    return subprocess.run(
        ["charmcraft", "expand-extensions"],
        cwd=project,
        env=runtime_set.clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )


def expanded_project(project: pathlib.Path = ROOT) -> dict:
    result = expand(project)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def without_wheels(project: pathlib.Path, name: str) -> None:
    """Drop every wheel of package ``name`` from ``project``'s uv.lock (its sdist stays)."""
    lock = project / "uv.lock"
    blocks = lock.read_text().split("\n[[package]]\n")
    (i,) = (i for i, block in enumerate(blocks) if block.startswith(f'name = "{name}"\n'))
    stripped = re.sub(r"\nwheels = \[\n.*?\n\]\n", "\n", blocks[i], flags=re.DOTALL)
    assert stripped != blocks[i], f"{name} has no wheels to drop"
    blocks[i] = stripped
    lock.write_text("\n[[package]]\n".join(blocks))


def without_dependency(project: pathlib.Path, name: str) -> None:
    """Remove ``name`` from pyproject.toml's dependencies and re-lock ``project``."""
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    edited = re.sub(rf'\n    "{re.escape(name)}==[^"]*",', "", text)
    assert edited != text, f"{name} is not a dependency"
    pyproject.write_text(edited)
    relocked = runtime_set.uv(project, "lock", "--quiet")
    assert relocked.returncode == 0, relocked.stderr


def import_report(python: pathlib.Path, project: pathlib.Path) -> tuple[int, dict]:
    result = runtime_set.import_check(python, project)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


# charmcraft reads the project --------------------------------------------------------


def test_charmcraft_expands_the_project():
    project = expanded_project()

    assert project["base"] == "ubuntu@24.04"
    assert set(project["platforms"]) == set(runtime_set.ARCHES)
    plugins = {part["plugin"] for part in project["parts"].values()}
    assert "uv" in plugins
    assert project["name"] == "trino-k8s"


def test_charmcraft_rejects_a_misspelt_part(copy: pathlib.Path):
    charmcraft_yaml = copy / "charmcraft.yaml"
    charmcraft_yaml.write_text(charmcraft_yaml.read_text().replace("build-snaps", "build-snap"))

    result = expand(copy)

    assert result.returncode != 0
    assert "build-snap" in result.stderr


# the lock ------------------------------------------------------------------------------


def test_lock_agrees_with_pyproject():
    result = runtime_set.uv(ROOT, "lock", "--check")

    assert result.returncode == 0, result.stderr


def test_lock_check_fails_when_pyproject_changes(copy: pathlib.Path):
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"jinja2==3.1.6",', '"jinja2==3.1.5",'))

    result = runtime_set.uv(copy, "lock", "--check")

    assert result.returncode != 0
    assert "needs to be updated" in result.stderr


def test_requirements_txt_is_the_lock_export():
    """The tox environments install requirements.txt: the same pins as the charm."""
    exported = runtime_set.requirement_lines(runtime_set.export(ROOT, hashes=False))

    assert runtime_set.requirement_lines((ROOT / "requirements.txt").read_text()) == exported


@pytest.mark.parametrize("arch", list(runtime_set.ARCHES))
def test_runtime_set_is_one_version_of_each_runtime_package(arch: str):
    pins = runtime_set.runtime_set(ROOT, arch)
    names = [pin.name for pin in pins]

    assert len(names) == len(set(names))
    assert not set(names) & TEST_AND_TOOL_PACKAGES
    assert {*COMPILED, *LAZY} <= set(names)


def test_lock_holds_no_dependency_group_or_extra():
    packages = runtime_set.lock_packages(ROOT)
    (root,) = (p for (name, _), p in packages.items() if name == "trino-k8s")

    assert not root.get("dev-dependencies")
    assert not root.get("optional-dependencies")
    assert not {name for name, _ in packages} & TEST_AND_TOOL_PACKAGES


# wheels --------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", list(runtime_set.ARCHES))
def test_lock_has_a_cp312_wheel_for_every_runtime_package(arch: str):
    pins = runtime_set.runtime_set(ROOT, arch)

    assert [pin.name for pin in pins if pin.wheel is None] == []
    assert all(pin.size > 0 for pin in pins)


@pytest.mark.parametrize("name", COMPILED)
def test_lock_wheel_check_names_a_compiled_package_without_wheels(copy: pathlib.Path, name: str):
    without_wheels(copy, name)

    for arch in runtime_set.ARCHES:
        pins = runtime_set.runtime_set(copy, arch)
        assert [pin.name for pin in pins if pin.wheel is None] == [name]


@pytest.mark.parametrize("arch", list(runtime_set.ARCHES))
def test_runtime_set_downloads_as_wheels(arch: str, tmp_path: pathlib.Path):
    target = tmp_path / "site-packages"

    result = runtime_set.download_wheels(ROOT, arch, target)

    assert result.returncode == 0, result.stderr
    installed = runtime_set.installed_wheel_tags(target)
    assert set(installed) == {pin.name for pin in runtime_set.runtime_set(ROOT, arch)}
    accepted = {str(tag) for tag in runtime_set.platform_tags(arch)}
    assert {name: tags for name, tags in installed.items() if not tags & accepted} == {}


def test_download_fails_when_a_rust_package_has_no_wheel(copy: pathlib.Path):
    without_wheels(copy, "cryptography")

    result = runtime_set.download_wheels(copy, "amd64", copy / "site-packages")

    assert result.returncode != 0
    assert "cryptography" in result.stderr


# imports -------------------------------------------------------------------------------


def test_runtime_venv_imports_every_module(runtime_python: pathlib.Path):
    code, report = import_report(runtime_python, ROOT)

    assert report["errors"] == []
    assert code == 0
    assert {"charm", "metastore", "k8s_resources", "charms.trino_k8s.v0.trino_cluster"} <= set(
        report["modules"]
    )
    imported = {entry.partition(":")[0] for entry in report["imports"]}
    assert set(LAZY.values()) <= imported


def test_runtime_venv_holds_no_test_package(runtime_python: pathlib.Path):
    probe = "import importlib.util as u; print([m for m in MODS if u.find_spec(m)])"
    mods = ["pytest", "hypothesis", "scenario", "coverage"]
    result = subprocess.run(
        [str(runtime_python), "-I", "-c", probe.replace("MODS", repr(mods))],
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("package", list(LAZY))
def test_import_check_fails_when_a_lazy_import_leaves_the_lock(
    copy: pathlib.Path, charm_python: str, package: str
):
    without_dependency(copy, package)
    python = runtime_set.build_runtime_venv(copy, copy.parent / "venv", charm_python)

    code, report = import_report(python, copy)

    assert code == 1
    top = LAZY[package].split(".")[0]
    assert any(f"No module named '{top}'" in error for error in report["errors"]), report
    assert LAZY[package] in {entry.partition(":")[0] for entry in report["imports"]}


def test_import_check_fails_on_a_runtime_import_of_a_test_package(
    copy: pathlib.Path, runtime_python: pathlib.Path
):
    (copy / "src" / "debugging.py").write_text(
        '"""A module that needs test packages at run time."""\n\n\n'
        "def context():\n"
        '    """Lazily import what only ops[testing] and hypothesis provide."""\n'
        "    import hypothesis\n"
        "    from ops.testing import Context\n\n"
        "    return Context, hypothesis\n"
    )

    code, report = import_report(runtime_python, copy)

    assert code == 1
    assert sorted(e.split(": ", 2)[1] for e in report["errors"]) == [
        "from ops.testing import Context",
        "import hypothesis",
    ]


# files of the packed charm -------------------------------------------------------------


def test_packed_charm_holds_every_runtime_file():
    files = payload.runtime_files(ROOT)

    packed = payload.packed(ROOT, expanded_project()["parts"], files)

    assert {"templates", "src", "lib"} <= {name.split("/")[0] for name in files}
    assert any(name.startswith("src/prometheus_alert_rules/") for name in files)
    assert any(name.startswith("src/grafana_dashboards/") for name in files)
    assert sorted(files - packed) == []


def test_payload_check_finds_templates_left_out(copy: pathlib.Path):
    parts = expanded_project(copy)["parts"]
    del parts["templates"]

    missing = payload.runtime_files(copy) - payload.packed(
        copy, parts, payload.runtime_files(copy)
    )

    assert missing
    assert {name.split("/")[0] for name in missing} == {"templates"}


def test_payload_check_applies_prime_rules(copy: pathlib.Path):
    parts = expanded_project(copy)["parts"]
    parts["charm"]["prime"] = ["-src/prometheus_alert_rules"]

    missing = payload.runtime_files(copy) - payload.packed(
        copy, parts, payload.runtime_files(copy)
    )

    assert missing
    assert all(name.startswith("src/prometheus_alert_rules/") for name in missing)


def test_payload_check_applies_jujuignore_to_the_charm_plugin(copy: pathlib.Path):
    parts = {"charm": {"plugin": "charm", "source": "."}}
    files = payload.runtime_files(copy)
    assert payload.packed(copy, parts, files) == files
    (copy / ".jujuignore").write_text("/templates\n*.rules\n")

    missing = files - payload.packed(copy, parts, files)

    assert {name.split("/")[0] for name in missing} == {"templates", "src"}
    assert all(name.startswith("templates/") or name.endswith(".rules") for name in missing), (
        missing
    )
