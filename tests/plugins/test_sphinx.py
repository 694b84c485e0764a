"""The Sphinx extension: real `sphinx-build` runs, with and without it, compared byte for byte."""

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

from sitebeacon.config import load_config
from sitebeacon.site.generate import build_module

BEACON_TOML = 'endpoint = "/b/collect"\nping.links = "all"\nevents = ["pageview", "leave"]\n'


def make_project(
    root: Path, extension: bool, settings: str = "", name: str = "sitebeacon.sphinx_ext"
) -> Path:
    """conf.py, index.rst and guide/other.rst; the config sits in beacon/sitebeacon.toml."""
    (root / "guide").mkdir(parents=True)
    (root / "beacon").mkdir()
    (root / "beacon" / "sitebeacon.toml").write_text(BEACON_TOML)
    extensions = f'["{name}"]' if extension else "[]"
    (root / "conf.py").write_text(
        f'project = "Beacon demo"\ncopyright = "2024, Docs team"\nextensions = {extensions}\n'
        + settings
    )
    (root / "index.rst").write_text(
        "Beacon demo\n===========\n\n"
        "Read :doc:`guide/other` or leave for `Example <https://example.org/page?q=1>`_.\n\n"
        ".. toctree::\n\n   guide/other\n"
    )
    (root / "guide" / "other.rst").write_text(
        "Other page\n==========\n\nR\u00e9sum\u00e9 \u2014 caf\u00e9. "
        "Write to docs@example.org_ or read the spec_.\n\n"
        ".. _docs@example.org: mailto:docs@example.org\n"
        ".. _spec: https://html.spec.whatwg.org/#ping\n"
    )
    return root


def sphinx_command(builder: str = "html", out: str = "_build") -> list[str | Path]:
    return [ssg_executable("sphinx", "sphinx-build"), "-b", builder, ".", out]


def sphinx_build(project: Path) -> str:
    return build(sphinx_command(), project)


FILE_SETTING = 'sitebeacon_config_file = "beacon/sitebeacon.toml"\n'


def module_for(project: Path) -> str:
    return build_module(load_config(project / "beacon" / "sitebeacon.toml"))


@pytest.fixture(scope="module")
def plain_site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    project = make_project(tmp_path_factory.mktemp("plain"), False, FILE_SETTING)
    sphinx_build(project)
    return html_pages(project / "_build")


@pytest.fixture(scope="module")
def injected(tmp_path_factory: pytest.TempPathFactory) -> Injected:
    project = make_project(tmp_path_factory.mktemp("ext"), True, FILE_SETTING)
    log = sphinx_build(project)
    names = frozenset({"index.html", "guide/other.html", "genindex.html", "search.html"})
    return Injected(project / "_build", module_for(project), "/b/collect", log, names)


class TestInjectedBuild(InjectedBuildChecks):
    """`sphinx-build -b html` with the extension, against the same project built without it."""


def test_the_new_module_path_works_as_an_extension_name(tmp_path: Path) -> None:
    """`sitebeacon.plugins.sphinx` (where the extension lives) works as well as the old name."""
    project = make_project(tmp_path, True, FILE_SETTING, name="sitebeacon.plugins.sphinx")
    sphinx_build(project)
    assert_module_in_every_page(project / "_build", module_for(project))


def test_links_get_ping_as_configured(injected: Injected) -> None:
    pages = html_pages(injected.site)
    for page in pages.values():
        check_pings(page, "/b/collect", "all")  # local links too; not mailto: or #fragment
    link = b'<a ping="/b/collect" class="reference external" href="https://example.org/page?q=1"'
    assert link in pages["index.html"]


def test_incremental_rebuild_keeps_one_module_and_follows_the_config(tmp_path: Path) -> None:
    project = make_project(tmp_path, True, FILE_SETTING)
    sphinx_build(project)
    (project / "beacon" / "sitebeacon.toml").write_text('endpoint = "/v2"\n')
    sphinx_build(project)  # no source changed: Sphinx rewrites no page, the plugin updates all
    for page in assert_module_in_every_page(project / "_build", module_for(project)).values():
        assert b' ping="' not in page


def test_other_builders_are_left_alone(tmp_path: Path) -> None:
    project = make_project(tmp_path, True, 'sitebeacon = {"endpont": "/x"}\n')
    log = build(sphinx_command("text", "_t"), project)  # the bad setting only matters to HTML
    assert "sitebeacon" not in log


@pytest.mark.parametrize(
    ("settings", "toml", "message"),
    [
        ("", 'endpont = "/x"\n', "sitebeacon.toml: unknown key 'endpont'"),
        (
            'sitebeacon = {"ping": {"links": "outbund"}}\n',
            None,
            "conf.py sitebeacon: ping.links = 'outbund' is not allowed",
        ),
        (
            'sitebeacon = {"endpoint": "/x"}\n' + FILE_SETTING,
            None,
            "conf.py sitebeacon_config_file and conf.py sitebeacon are both set",
        ),
    ],
    ids=["toml-key", "inline-value", "file-and-inline"],
)
def test_bad_config_fails_the_build_naming_the_key(
    tmp_path: Path, settings: str, toml: str | None, message: str
) -> None:
    project = make_project(tmp_path, True, settings)
    if toml is not None:
        (project / "sitebeacon.toml").write_text(toml)
    log = failed_build(sphinx_command(), project, project / "_build")
    assert f"sphinx.errors.ConfigError: sitebeacon: {message}" in log.replace(f"{project}/", "")
