"""A non-editable install works: the wheel ships the JS templates and `sitebeacon build` runs.

Slow (a wheel build and a fresh virtualenv, about ten seconds) but never skipped: a wheel
without `sitebeacon/js_templates` would pass every other test in a source checkout and fail
every user.

The fresh virtualenv brings its own pip (ensurepip), which builds the wheel (hatchling comes
from the package index into pip's isolated build environment) and installs it with
`--no-deps`. The wheel's dependencies come from the running interpreter's site-packages through
a `.pth` file written *after* the install, so pip never sees the development copy of
sitebeacon. Directories named in a `.pth` file are added to `sys.path` but their own `.pth`
files are not run, so an editable install of the checkout stays invisible; commands run from a
temporary directory, so the source tree is not importable either (checked below).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from sitebeacon.config import Config
from sitebeacon.site.generate import build_module

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SCRIPT_MARK = "data-sitebeacon"


def run(command: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with its own pip (from ensurepip: no download, no pip needed here)."""
    root = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=True).create(root)
    bindir = root / ("Scripts" if os.name == "nt" else "bin")
    return bindir / ("python.exe" if os.name == "nt" else "python")


@pytest.fixture(scope="module")
def wheel(fresh_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from the checkout (hatchling comes from the package index)."""
    dist = tmp_path_factory.mktemp("dist")
    command = [str(fresh_python), "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(REPO)]
    run(command, cwd=dist)
    wheels = list(dist.glob("sitebeacon-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def fresh_env(fresh_python: Path, wheel: Path) -> Path:
    """The virtualenv with the wheel installed and the test run's dependencies visible."""
    pip = [str(fresh_python), "-m", "pip"]
    run([*pip, "install", "--no-deps", "--no-index", str(wheel)], cwd=wheel.parent)
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site_packages = Path(run([str(fresh_python), "-c", code], wheel.parent).stdout.strip())
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site_packages / "zz_sitebeacon_test_deps.pth").write_text("\n".join(sorted(ours)) + "\n")
    return fresh_python.parent


def test_wheel_ships_the_js_templates(wheel: Path) -> None:
    source = REPO / "js_templates"
    expected = {
        "sitebeacon/js_templates/" + path.relative_to(source).as_posix()
        for path in source.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert any(name.endswith(".j2") for name in expected)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {n for n in names if n.startswith("sitebeacon/js_templates/")} == expected
        for name in expected:
            relative = name.removeprefix("sitebeacon/js_templates/")
            assert archive.read(name) == (source / relative).read_bytes(), name
        assert "sitebeacon/site/build.py" in names and "sitebeacon/cli.py" in names
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "sitebeacon = sitebeacon.cli:main" in archive.read(entry_points).decode()


def test_installed_package_is_the_wheel_not_the_checkout(fresh_env: Path, tmp_path: Path) -> None:
    code = (
        "import sitebeacon, sitebeacon.site.generate as g; "
        "print(sitebeacon.__file__); print(g.template_dir())"
    )
    result = run([str(fresh_env / "python"), "-c", code], cwd=tmp_path)
    module_file, templates = (Path(line) for line in result.stdout.splitlines())
    env_root = fresh_env.parent.resolve()
    assert module_file.resolve().is_relative_to(env_root)
    assert templates.resolve().is_relative_to(env_root)
    assert templates.name == "js_templates" and templates.parent.name == "sitebeacon"


def test_installed_js_prints_the_module(fresh_env: Path, tmp_path: Path) -> None:
    result = run([str(fresh_env / "sitebeacon"), "js"], cwd=tmp_path)
    assert result.stdout == build_module(Config())
    assert result.stderr == ""


def test_installed_build_renders_the_sample_site(fresh_env: Path, tmp_path: Path) -> None:
    src = tmp_path / "sample_site"
    shutil.copytree(REPO / "sample_site", src, ignore=shutil.ignore_patterns("_site"))
    result = run([str(fresh_env / "sitebeacon"), "build", "sample_site"], cwd=tmp_path)
    assert result.stdout.startswith("built sample_site/_site: index, ")
    pages = sorted((src / "_site").rglob("*.html"))
    assert len(pages) >= 7  # index, about, five posts or more
    for page in pages:
        assert page.read_text(encoding="utf-8").count(SCRIPT_MARK) == 1, page
