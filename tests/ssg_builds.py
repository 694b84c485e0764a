"""Helpers for the MkDocs, Pelican and Sphinx plugin tests: run a real build, read its pages.

The checks are written against html5lib's parse of the output (what a browser sees), not
against sitebeacon's own scanner, so a scanner bug cannot make them pass.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import html5lib
from conftest import require

from sitebeacon.site.inject import csp_hash, inline_script_tag, ping_attribute, script_text


def ssg_executable(module: str, command: str) -> Path:
    """The venv's `command` (skip, or fail under CI=true, when the generator is missing)."""
    executable = Path(sys.executable).parent / command
    installed = importlib.util.find_spec(module) is not None and executable.is_file()
    require(installed, f"{module} is not installed (pip install -e '.[test]')")
    return executable


def run_build(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a generator's command line in `cwd`; stdout and stderr together in `.stdout`.

    SOURCE_DATE_EPOCH pins the build dates generators write into pages (MkDocs does), so that
    two builds of the same project can be compared byte for byte. A wide COLUMNS keeps each
    log record on one line (Pelican's rich handler wraps to the terminal width).
    """
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000", "COLUMNS": "1000"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )


def build(args: list[str | Path], cwd: Path) -> str:
    """A build that must succeed; its log (stdout and stderr)."""
    result = run_build(args, cwd)
    assert result.returncode == 0, result.stdout
    return result.stdout


def failed_build(args: list[str | Path], cwd: Path, site: Path) -> str:
    """A build that must fail, leaving no page in `site` with the script; its log."""
    result = run_build(args, cwd)
    assert result.returncode != 0, result.stdout
    assert_nothing_injected(site)
    return result.stdout


def html_pages(site: Path) -> dict[str, bytes]:
    """Every page the generator wrote, by path relative to `site`."""
    pages = {
        str(path.relative_to(site)): path.read_bytes()
        for path in sorted(site.rglob("*"))
        if path.suffix in (".html", ".htm") and path.is_file()
    }
    assert pages, f"no pages under {site}"
    return pages


def parse(page: bytes) -> ET.Element:
    return html5lib.parse(page, namespaceHTMLElements=False)  # type: ignore[no-any-return]


def marked_scripts(page: bytes) -> tuple[list[ET.Element], list[ET.Element]]:
    """The `data-sitebeacon` script elements of a page: (those in <head>, all of them)."""
    root = parse(page)
    head = root.find("head")
    assert head is not None
    in_head = [s for s in head.iter("script") if "data-sitebeacon" in s.attrib]
    everywhere = [s for s in root.iter("script") if "data-sitebeacon" in s.attrib]
    return in_head, everywhere


def assert_inline_module(page: bytes, module_js: str) -> None:
    """Exactly one marked script, in the head, holding exactly the module."""
    in_head, everywhere = marked_scripts(page)
    assert len(everywhere) == 1
    assert in_head == everywhere
    assert everywhere[0].text == script_text(module_js)


def assert_module_in_every_page(
    site: Path, module_js: str, names: set[str] | None = None
) -> dict[str, bytes]:
    """Every page under `site` (`names` among them) holds exactly the module, once, in its
    head; the pages."""
    pages = html_pages(site)
    assert (names or set()) <= set(pages)
    for page in pages.values():
        assert_inline_module(page, module_js)
    return pages


def expected_ping(href: str | None, ping_links: str) -> bool:
    """Whether `ping_links` asks for ping= on a link to `href` (the URLs these sites contain)."""
    if ping_links == "none" or href is None or href.startswith(("#", "mailto:", "javascript:")):
        return False
    return href.startswith(("http://", "https://", "//")) or ping_links == "all"


def check_pings(page: bytes, endpoint: str, ping_links: str) -> int:
    """Every link has ping=<endpoint> exactly when the config asks for it; how many have it."""
    pinged = 0
    for link in parse(page).iter("a"):
        href = link.get("href")
        if expected_ping(href, ping_links):
            assert link.get("ping") == endpoint, (href, link.attrib)
            pinged += 1
        else:
            assert "ping" not in link.attrib, (href, link.attrib)
    return pinged


def strip_injection(page: bytes, script_tag: bytes, endpoint: str) -> bytes:
    """The page without the one script element and the ping= attributes sitebeacon added."""
    assert page.count(script_tag) == 1
    page = page.replace(script_tag, b"", 1)
    return page.replace(ping_attribute(endpoint), b"")


def assert_same_except_injection(
    plain: dict[str, bytes], site: Path, module_js: str, endpoint: str
) -> None:
    """Same pages; each page under `site` minus the injection (the inline module and ping=
    attributes) is byte for byte the plain one."""
    injected = html_pages(site)
    script_tag = inline_script_tag(module_js)
    assert sorted(injected) == sorted(plain)
    for name, page in plain.items():
        assert b"data-sitebeacon" not in page and ping_attribute(endpoint) not in page
        assert strip_injection(injected[name], script_tag, endpoint) == page, name
        assert injected[name] != page


def assert_nothing_injected(site: Path) -> None:
    """After a failed build: no page (if any was written) has the script."""
    if site.exists():
        for path in site.rglob("*.html"):
            assert b"data-sitebeacon" not in path.read_bytes(), path


@dataclass(frozen=True)
class Injected:
    """A project built with the plugin: its output, what the plugin should have put in, its log."""

    site: Path
    module_js: str
    endpoint: str
    log: str
    names: frozenset[str]  # pages the generator must have written, among others


class InjectedBuildChecks:
    """What every generator's plugin does to a build. A test module subclasses this as
    `TestInjectedBuild` and provides the fixtures `injected` (an `Injected`) and `plain_site`
    (the pages of the same project built without the plugin)."""

    def test_every_page_gets_exactly_one_module_in_its_head(self, injected: Injected) -> None:
        assert_module_in_every_page(injected.site, injected.module_js, set(injected.names))

    def test_output_minus_injection_is_what_the_generator_wrote(
        self, plain_site: dict[str, bytes], injected: Injected
    ) -> None:
        assert_same_except_injection(
            plain_site, injected.site, injected.module_js, injected.endpoint
        )

    def test_csp_hash_is_logged(self, injected: Injected) -> None:
        csp = f"Content-Security-Policy: script-src '{csp_hash(injected.module_js)}'"
        assert csp in injected.log
