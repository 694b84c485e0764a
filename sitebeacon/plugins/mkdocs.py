"""MkDocs plugin: inject the client module into the site `mkdocs build` (or `serve`) wrote.

Enable it in mkdocs.yml with `plugins: [sitebeacon]`. Its options are the keys of
sitebeacon.toml (written inline), or `config_file: PATH` (relative to mkdocs.yml); with no
options, sitebeacon.toml or `[tool.sitebeacon]` of pyproject.toml beside mkdocs.yml apply.
The options are checked by sitebeacon itself rather than declared to MkDocs, so that a
misspelt key fails the build (MkDocs would only warn) with the same message as the CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.config.base import Config as MkDocsOptions
from mkdocs.config.base import ConfigErrors, ConfigWarnings
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority, get_plugin_logger

from sitebeacon.config import Config
from sitebeacon.errors import SitebeaconError
from sitebeacon.plugins.shared import plugin_config
from sitebeacon.site.generate import build_module
from sitebeacon.site.inject import inject_site

log = get_plugin_logger(__name__)


# MkDocs's Config and BasePlugin define an unannotated __init_subclass__.
class _NoDeclaredOptions(MkDocsOptions):  # type: ignore[no-untyped-call]
    """MkDocs validates nothing: the plugin's options go to sitebeacon's own validation."""


class SitebeaconPlugin(BasePlugin[_NoDeclaredOptions]):  # type: ignore[no-untyped-call]
    """Checks the configuration before anything is built, injects after everything is."""

    def __init__(self) -> None:
        self.options: dict[str, Any] = {}
        self.sitebeacon_config: Config | None = None

    def load_config(
        self, options: dict[str, Any], config_file_path: str | None = None
    ) -> tuple[ConfigErrors, ConfigWarnings]:
        self.options = dict(options)
        return super().load_config({}, config_file_path)

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig | None:
        config_path = Path(config.config_file_path or "mkdocs.yml").absolute()
        inline = dict(self.options)
        config_file = inline.pop("config_file", None)
        try:
            self.sitebeacon_config = plugin_config(
                config_path.parent,
                config_file,
                inline,
                file_setting=f"{config_path.name} plugins.sitebeacon.config_file",
                inline_setting=f"{config_path.name} plugins.sitebeacon",
            )
        except SitebeaconError as error:
            raise PluginError(f"sitebeacon: {error}") from error
        return config

    @event_priority(-50)  # late: after plugins that rewrite pages in post_build
    def on_post_build(self, *, config: MkDocsConfig) -> None:
        if self.sitebeacon_config is None:  # on_config failed, so the build did
            return
        try:
            report = inject_site(
                Path(config.site_dir), self.sitebeacon_config, build_module(self.sitebeacon_config)
            )
        except SitebeaconError as error:
            raise PluginError(f"sitebeacon: {error}") from error
        for line in report.summary_lines():
            log.info(line)
