"""The `sitebeacon` command as a user runs it: a real subprocess, exit codes, stdout and stderr."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from files import SAMPLE, tree, write
from files import run_cli as run

from sitebeacon import __version__


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """Assert the run failed the way the CLI promises (status 2, one stderr line) and return it."""
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stderr.endswith("\n")
    assert lines[0].startswith("sitebeacon: ")
    return lines[0]


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A copy of the sample site (without its config, so each test sets its own)."""
    copy = tmp_path / "blog"
    shutil.copytree(SAMPLE, copy, ignore=shutil.ignore_patterns("_site", "sitebeacon.toml"))
    return copy


BAD_CONFIGS = [
    ('encoding = "xml"\n', "encoding = 'xml' is not allowed; allowed: text | json | form"),
    ('transport = ["pigeon"]\n', "transport = 'pigeon' is not allowed; allowed: a non-empty list"),
    ("[ping]\nlinks = 3\n", "ping.links = 3 is not allowed; allowed: none | outbound | all"),
    ('[script]\nmode = "async"\n', "script.mode = 'async' is not allowed; allowed: inline"),
    ("colour = 1\n", "unknown key 'colour'; allowed keys: endpoint"),
    ("[script]\nfile = 1\n", "unknown key 'script.file'; allowed keys: script.mode"),
    ("endpoint = \n", "not valid TOML: Invalid value (at line 1, column 12)"),
    (b'endpoint = "/\xff"\n', "not valid TOML: not UTF-8"),
]


@pytest.mark.parametrize(("toml", "expected"), BAD_CONFIGS)
def test_build_with_a_bad_config_exits_2_and_writes_nothing(
    src: Path, toml: str | bytes, expected: str
) -> None:
    config = write(src / "sitebeacon.toml", toml)
    before = tree(src)
    line = one_error_line(run("build", str(src), cwd=src.parent))
    assert line.startswith(f"sitebeacon: {config}: {expected}")
    assert tree(src) == before
    assert not (src / "_site").exists()


def test_bad_config_leaves_a_previous_build_untouched(src: Path) -> None:
    assert run("build", str(src), cwd=src.parent).returncode == 0
    before = tree(src / "_site")
    write(src / "sitebeacon.toml", "respect_dnt = 'no'\n")
    line = one_error_line(run("build", str(src), cwd=src.parent))
    assert "respect_dnt = 'no' is not allowed; allowed: true | false" in line
    assert tree(src / "_site") == before


@pytest.mark.parametrize(("toml", "expected"), BAD_CONFIGS[:3])
def test_js_with_a_bad_config_prints_nothing_on_stdout(
    tmp_path: Path, toml: str, expected: str
) -> None:
    config = write(tmp_path / "bad.toml", toml)
    line = one_error_line(run("js", "--config", str(config), cwd=tmp_path))
    assert line.startswith(f"sitebeacon: {config}: {expected}")


def test_inject_with_a_bad_config_changes_no_page(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write(site / "index.html", "<html><head></head><body>hi</body></html>")
    write(tmp_path / "sitebeacon.toml", "events = ['pageview', 'scroll']\n")  # found in cwd
    before = tree(site)
    line = one_error_line(run("inject", str(site), cwd=tmp_path))
    assert "events = 'scroll' is not allowed" in line
    assert tree(site) == before


def test_missing_config_file(tmp_path: Path) -> None:
    line = one_error_line(run("js", "--config", "nope.toml", cwd=tmp_path))
    assert line.startswith("sitebeacon: nope.toml: cannot read: ")


def test_build_missing_source(tmp_path: Path) -> None:
    line = one_error_line(run("build", "no-such-dir", cwd=tmp_path))
    assert line == "sitebeacon: no-such-dir: source directory not found"
    assert list(tmp_path.iterdir()) == []


def test_build_broken_front_matter_names_the_file(src: Path) -> None:
    bad = write(src / "posts" / "broken.md", "---\ntitle: [unclosed\n---\nText\n")
    line = one_error_line(run("build", str(src), cwd=src.parent))
    assert line.startswith(f"sitebeacon: {bad}:")
    assert "front matter is not valid YAML" in line
    assert not (src / "_site").exists()


def test_build_missing_layout_names_the_file(src: Path) -> None:
    (src / "_layouts" / "page.html").unlink()
    line = one_error_line(run("build", str(src), cwd=src.parent))
    assert line == (
        f"sitebeacon: {src / 'about.md'}: layout {src / '_layouts' / 'page.html'} not found"
    )
    assert not (src / "_site").exists()


def test_build_prints_a_summary(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "public"
    result = run("build", str(src), "-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[0].startswith(f"built {out}: index, 6 posts, 1 page, ")
    assert (out / "index.html").is_file()


def endpoint_in_build(src: Path, cwd: Path, *extra: str) -> str:
    result = run("build", str(src), *extra, cwd=cwd)
    assert result.returncode == 0, result.stderr
    index = (src / "_site" / "index.html").read_text()
    found = [name for name in ENDPOINTS if f'"{name}"' in index]
    assert len(found) == 1, found
    return found[0]


ENDPOINTS = ("/explicit", "/from-src", "/from-cwd", "/from-pyproject", "/collect")


def test_build_config_lookup_order(src: Path, tmp_path: Path) -> None:
    """--config, then SRC/sitebeacon.toml, then ./sitebeacon.toml, then ./pyproject.toml."""
    cwd = tmp_path / "work"
    explicit = write(tmp_path / "explicit.toml", 'endpoint = "/explicit"\n')
    in_src = write(src / "sitebeacon.toml", 'endpoint = "/from-src"\n')
    in_cwd = write(cwd / "sitebeacon.toml", 'endpoint = "/from-cwd"\n')
    pyproject = write(cwd / "pyproject.toml", '[tool.sitebeacon]\nendpoint = "/from-pyproject"\n')
    assert endpoint_in_build(src, cwd, "--config", str(explicit)) == "/explicit"
    assert endpoint_in_build(src, cwd) == "/from-src"
    in_src.unlink()
    assert endpoint_in_build(src, cwd) == "/from-cwd"
    in_cwd.unlink()
    assert endpoint_in_build(src, cwd) == "/from-pyproject"
    pyproject.unlink()
    assert endpoint_in_build(src, cwd) == "/collect"


def test_js_reads_the_config_of_the_current_directory(tmp_path: Path) -> None:
    write(tmp_path / "sitebeacon.toml", 'endpoint = "/from-cwd"\n')
    result = run("js", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"/from-cwd"' in result.stdout
    assert result.stderr == ""


def test_version(tmp_path: Path) -> None:
    result = run("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"sitebeacon {__version__}\n")
