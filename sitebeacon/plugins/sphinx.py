"""Sphinx extension: inject the client module into the pages an HTML builder wrote.

Enable it in conf.py with `extensions = ["sitebeacon.sphinx_ext"]`. Settings:
`sitebeacon = {...}` (the keys of sitebeacon.toml as a dict) or `sitebeacon_config_file =
"PATH"` (relative to conf.py); with neither, sitebeacon.toml or `[tool.sitebeacon]` of
pyproject.toml beside conf.py apply. Other builders (LaTeX, epub, man...) are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.builders._epub_base import EpubBuilder
from sphinx.builders.html import StandaloneHTMLBuilder
from sphinx.config import Config as SphinxConfig
from sphinx.errors import ConfigError, ExtensionError
from sphinx.util import logging

from sitebeacon import __version__
from sitebeacon.config import Config
from sitebeacon.errors import SitebeaconError
from sitebeacon.plugins.shared import plugin_config
from sitebeacon.site.generate import build_module
from sitebeacon.site.inject import inject_site

logger = logging.getLogger(__name__)


def writes_html_pages(app: Sphinx) -> bool:
    """html, dirhtml, singlehtml and themes' subclasses; epub's pages are XHTML in a zip."""
    builder = app.builder
    return isinstance(builder, StandaloneHTMLBuilder) and not isinstance(builder, EpubBuilder)


def fingerprint(config: Config) -> str:
    """What the pages depend on, as a string Sphinx can hash into its `.buildinfo`."""
    return repr([getattr(config, item.name) for item in fields(config) if item.compare])


@dataclass
class _Injector:
    """Reads the configuration with conf.py, checks it once the builder is known (only HTML
    builders need it), and injects once the builder has finished."""

    config: Config | None = None
    error: SitebeaconError | None = None

    def config_inited(self, app: Sphinx, sphinx_config: SphinxConfig) -> None:
        self.config, self.error = None, None
        try:
            self.config = plugin_config(
                Path(app.confdir),
                sphinx_config.sitebeacon_config_file,
                sphinx_config.sitebeacon,
                file_setting="conf.py sitebeacon_config_file",
                inline_setting="conf.py sitebeacon",
            )
        except SitebeaconError as error:
            self.error = error
            return
        # An incremental build rewrites only changed pages, and injection cannot tell its own
        # old ping= attributes from the author's; a changed configuration must rewrite all.
        sphinx_config.sitebeacon_fingerprint = fingerprint(self.config)

    def builder_inited(self, app: Sphinx) -> None:
        if not writes_html_pages(app):
            self.config = None
        elif self.error is not None:
            raise ConfigError(f"sitebeacon: {self.error}") from self.error

    def build_finished(self, app: Sphinx, exception: Exception | None) -> None:
        if exception is not None or self.config is None:
            return
        try:
            report = inject_site(Path(app.outdir), self.config, build_module(self.config))
        except SitebeaconError as error:
            raise ExtensionError(f"sitebeacon: {error}", modname=__name__) from error
        for line in report.summary_lines():
            logger.info("sitebeacon: %s", line)


def setup(app: Sphinx) -> dict[str, Any]:
    """The Sphinx entry point (`extensions = ["sitebeacon.sphinx_ext"]`)."""
    # Each build injects every page; a changed configuration also makes Sphinx rewrite them
    # all, through sitebeacon_fingerprint (see _Injector.config_inited).
    app.add_config_value("sitebeacon", None, "", types=(dict, type(None)))
    app.add_config_value("sitebeacon_config_file", None, "", types=(str, type(None)))
    app.add_config_value("sitebeacon_fingerprint", "", "html", types=(str,))  # set, not read
    injector = _Injector()
    app.connect("config-inited", injector.config_inited)
    app.connect("builder-inited", injector.builder_inited)
    app.connect("build-finished", injector.build_finished)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
