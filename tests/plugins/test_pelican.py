"""The Pelican plugin: real `pelican` runs, with and without the plugin, compared byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
from ssg_builds import (
    Injected,
    InjectedBuildChecks,
    assert_module_in_every_page,
    build,
    check_pings,
    failed_build,
    html_pages,
    ssg_executable,
)

from sitebeacon.config import Config
from sitebeacon.site.generate import build_module

INLINE = 'SITEBEACON = {"endpoint": "/hit", "ping": {"links": "outbound"}}\n'
INLINE_CONFIG = Config(endpoint="/hit", ping_links="outbound")


def make_project(
    root: Path,
    plugin: bool,
    settings: str = INLINE,
    toml: str | None = None,
    name: str = "sitebeacon.pelican_plugin",
) -> Path:
    """pelicanconf.py and two Markdown articles (outbound, internal and mailto links)."""
    (root / "content").mkdir(parents=True)
    (root / "pelicanconf.py").write_text(
        'SITENAME = "Beacon demo"\nSITEURL = ""\nPATH = "content"\nTIMEZONE = "UTC"\n'
        'DEFAULT_LANG = "en"\nFEED_ALL_ATOM = None\nCATEGORY_FEED_ATOM = None\n'
        + (f'PLUGINS = ["{name}"]\n' if plugin else "PLUGINS = []\n")
        + settings
    )
    (root / "content" / "first.md").write_text(
        "Title: First post\nDate: 2024-01-01\nCategory: notes\n\n"
        "Leave for [Example](https://example.org/page?q=1) or read "
        "[the second]({filename}/second.md).\n"
    )
    (root / "content" / "second.md").write_text(
        "Title: Second post\nDate: 2024-01-02\nCategory: notes\n\n"
        "R\u00e9sum\u00e9 \u2014 caf\u00e9. [Mail](mailto:docs@example.org), "
        "[spec](https://html.spec.whatwg.org/#ping).\n"
    )
    if toml is not None:
        (root / "sitebeacon.toml").write_text(toml)
    return root


def pelican_command() -> list[str | Path]:
    return [ssg_executable("pelican", "pelican"), "content", "-s", "pelicanconf.py", "-o", "output"]


def pelican_build(project: Path) -> str:
    return build([*pelican_command(), "--verbose"], project)


@pytest.fixture(scope="module")
def plain_site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    project = make_project(tmp_path_factory.mktemp("plain"), False)
    pelican_build(project)
    return html_pages(project / "output")


@pytest.fixture(scope="module")
def injected(tmp_path_factory: pytest.TempPathFactory) -> Injected:
    # A sitebeacon.toml with another endpoint too: the inline SITEBEACON setting wins.
    project = make_project(tmp_path_factory.mktemp("plugin"), True, toml='endpoint = "/no"\n')
    log = pelican_build(project)
    names = frozenset({"index.html", "first-post.html", "second-post.html", "archives.html"})
    return Injected(project / "output", build_module(INLINE_CONFIG), "/hit", log, names)


class TestInjectedBuild(InjectedBuildChecks):
    """`pelican` with the plugin, against the same project built without it."""


def test_the_new_module_path_works_as_a_plugin_name(tmp_path: Path) -> None:
    """`sitebeacon.plugins.pelican` (where the plugin lives) works as well as the old name."""
    project = make_project(tmp_path, True, name="sitebeacon.plugins.pelican")
    pelican_build(project)
    assert_module_in_every_page(project / "output", build_module(INLINE_CONFIG))


def test_outbound_links_get_ping_and_no_others(injected: Injected) -> None:
    pages = html_pages(injected.site)
    pinged = {name: check_pings(page, "/hit", "outbound") for name, page in pages.items()}
    assert b'<a ping="/hit" href="https://example.org/page?q=1">' in pages["first-post.html"]
    assert pinged["second-post.html"] > pinged["archives.html"]  # the spec link


def test_sitebeacon_toml_in_the_working_directory_applies(tmp_path: Path) -> None:
    project = make_project(tmp_path, True, settings="", toml='endpoint = "/from-toml"\n')
    pelican_build(project)
    assert_module_in_every_page(project / "output", build_module(Config(endpoint="/from-toml")))


@pytest.mark.parametrize(
    ("settings", "toml", "message"),
    [
        ("", 'endpont = "/x"\n', "sitebeacon.toml: unknown key 'endpont'"),
        ('SITEBEACON = {"ping": {"links": "outbund"}}\n', None, "SITEBEACON: ping.links"),
        ('SITEBEACON_CONFIG_FILE = "missing.toml"\n', None, "missing.toml: cannot read"),
    ],
    ids=["toml-key", "inline-value", "missing-file"],
)
def test_bad_config_fails_the_build_naming_the_key(
    tmp_path: Path, settings: str, toml: str | None, message: str
) -> None:
    project = make_project(tmp_path, True, settings, toml)
    log = failed_build(pelican_command(), project, project / "output")
    # The first line naming the problem is the plugin's own log record.
    logged = [line for line in log.splitlines() if message in line]
    assert logged and " ERROR    sitebeacon: " in logged[0]
