"""The MkDocs plugin: real `mkdocs build` runs, with and without it, compared byte for byte."""

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
    marked_scripts,
    ssg_executable,
)

from sitebeacon.config import Config, load_config, parse_config
from sitebeacon.site.generate import build_module
from sitebeacon.site.inject import sri_hash

TOML = 'ping.links = "outbound"\n'


def make_project(root: Path, plugin_options: str | None, toml: str | None = TOML) -> Path:
    """docs/index.md and docs/guide/other.md (outbound, local and mailto links)."""
    (root / "docs" / "guide").mkdir(parents=True)
    plugins = "  - search\n"
    if plugin_options is not None:
        plugins += "  - sitebeacon" + plugin_options + "\n"
    (root / "mkdocs.yml").write_text(f"site_name: Beacon demo\nplugins:\n{plugins}")
    (root / "docs" / "index.md").write_text(
        "# Home\n\nRead the [guide](guide/other.md), or leave for "
        "[Example](https://example.org/page?q=1).\n"
    )
    (root / "docs" / "guide" / "other.md").write_text(
        "# Other page\n\n<p>R&eacute;sum&eacute; \u2014 caf\u00e9</p>\n\n"
        "[Back](../index.md), [mail](mailto:docs@example.org), "
        "[spec](https://html.spec.whatwg.org/#ping).\n"
    )
    if toml is not None:
        (root / "sitebeacon.toml").write_text(toml)
    return root


def mkdocs_command(*extra: str | Path) -> list[str | Path]:
    return [ssg_executable("mkdocs", "mkdocs"), "build", *extra]


def module_for(project: Path) -> str:
    return build_module(load_config(project / "sitebeacon.toml"))


@pytest.fixture(scope="module")
def plain_site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    project = make_project(tmp_path_factory.mktemp("plain"), None)
    build(mkdocs_command(), project)
    return html_pages(project / "site")


@pytest.fixture(scope="module")
def injected(tmp_path_factory: pytest.TempPathFactory) -> Injected:
    project = make_project(tmp_path_factory.mktemp("plugin"), "")
    log = build(mkdocs_command(), project)
    names = frozenset({"index.html", "guide/other/index.html", "404.html"})
    return Injected(project / "site", module_for(project), "/collect", log, names)


class TestInjectedBuild(InjectedBuildChecks):
    """`mkdocs build` with the plugin, against the same project built without it."""


def test_outbound_links_get_ping_and_no_others(injected: Injected) -> None:
    pages = html_pages(injected.site)
    pinged = {name: check_pings(page, "/collect", "outbound") for name, page in pages.items()}
    # The two links of the content, besides the theme's own outbound links.
    assert b'<a ping="/collect" href="https://example.org/page?q=1">' in pages["index.html"]
    assert pinged["guide/other/index.html"] >= 1 + pinged["404.html"]


def test_inline_options_win_over_sitebeacon_toml(tmp_path: Path) -> None:
    options = """:
      endpoint: https://stats.example.com/collect
      script:
        mode: external"""
    project = make_project(tmp_path, options)
    build(mkdocs_command(), project)
    config = parse_config(
        {"endpoint": "https://stats.example.com/collect", "script": {"mode": "external"}}
    )
    assert config.ping_links == "none"  # sitebeacon.toml (ping.links) was not read
    module = build_module(config).encode()
    [script_file] = (project / "site" / "_sitebeacon").glob("sb.*.js")
    assert script_file.read_bytes() == module
    pages = html_pages(project / "site")
    for name, page in pages.items():
        in_head, everywhere = marked_scripts(page)
        assert len(everywhere) == 1 and in_head == everywhere
        script = everywhere[0]
        depth = name.count("/")
        assert script.get("src") == "../" * depth + "_sitebeacon/" + script_file.name
        assert script.get("integrity") == sri_hash(module)
        assert b" ping=" not in page


def test_config_file_option_is_relative_to_mkdocs_yml(tmp_path: Path) -> None:
    project = make_project(tmp_path / "site-src", "", toml=None)
    (project / "ci").mkdir()
    (project / "ci" / "beacon.toml").write_text('endpoint = "/beacon"\nevents = ["leave"]\n')
    (project / "mkdocs.yml").write_text(
        (project / "mkdocs.yml")
        .read_text()
        .replace("  - sitebeacon", "  - sitebeacon:\n      config_file: ci/beacon.toml")
    )
    # Run from elsewhere: the path must not depend on the working directory.
    build(mkdocs_command("-f", project / "mkdocs.yml"), tmp_path)
    module = build_module(Config(endpoint="/beacon", events=("leave",)))
    assert_module_in_every_page(project / "site", module)


@pytest.mark.parametrize(
    ("options", "toml", "message"),
    [
        ("", 'endpont = "/x"\n', "sitebeacon.toml: unknown key 'endpont'"),
        (
            ":\n      ping:\n        links: outbund",
            None,
            "mkdocs.yml plugins.sitebeacon: ping.links = 'outbund' is not allowed",
        ),
        (
            ":\n      config_file: beacon.toml\n      encoding: json",
            None,
            "plugins.sitebeacon.config_file and mkdocs.yml plugins.sitebeacon are both set",
        ),
    ],
    ids=["toml-key", "inline-value", "file-and-inline"],
)
def test_bad_config_fails_the_build_naming_the_key(
    tmp_path: Path, options: str, toml: str | None, message: str
) -> None:
    project = make_project(tmp_path, options, toml)
    log = failed_build(mkdocs_command(), project, project / "site")
    error_lines = [line for line in log.splitlines() if message in line]
    assert len(error_lines) == 1 and "Traceback" not in log


def test_entry_point_and_old_import_path_name_the_same_plugin() -> None:
    """`plugins: [sitebeacon]` (the entry point) and `sitebeacon.mkdocs_plugin` both still work."""
    from importlib.metadata import entry_points

    from sitebeacon.mkdocs_plugin import SitebeaconPlugin as old_path
    from sitebeacon.plugins.mkdocs import SitebeaconPlugin

    (entry,) = [e for e in entry_points(group="mkdocs.plugins") if e.name == "sitebeacon"]
    assert entry.value == "sitebeacon.plugins.mkdocs:SitebeaconPlugin"
    assert entry.load() is SitebeaconPlugin is old_path
