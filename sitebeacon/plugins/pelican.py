"""Pelican plugin: inject the client module into the site Pelican wrote.

Enable it in pelicanconf.py with `PLUGINS = ["sitebeacon.pelican_plugin"]`. Settings:
`SITEBEACON = {...}` (the keys of sitebeacon.toml as a dict) or `SITEBEACON_CONFIG_FILE =
"PATH"`; with neither, sitebeacon.toml or `[tool.sitebeacon]` of pyproject.toml apply. Pelican
does not record where its settings file is, so relative paths and the lookup start in the
directory `pelican` runs in, as for `sitebeacon inject` (give an absolute path otherwise).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pelican import signals

from sitebeacon.config import Config
from sitebeacon.errors import SitebeaconError
from sitebeacon.plugins.shared import plugin_config
from sitebeacon.site.generate import build_module
from sitebeacon.site.inject import inject_site

logger = logging.getLogger(__name__)


def sitebeacon_config(settings: dict[str, Any]) -> Config:
    """The configuration for this Pelican run; logs and raises SitebeaconError when bad."""
    try:
        return plugin_config(
            Path.cwd(),
            settings.get("SITEBEACON_CONFIG_FILE"),
            settings.get("SITEBEACON"),
            file_setting="SITEBEACON_CONFIG_FILE",
            inline_setting="SITEBEACON",
        )
    except SitebeaconError as error:
        logger.error("sitebeacon: %s", error)
        # Pelican logs what it catches with a traceback: leave sitebeacon's frames out of it.
        raise error.with_traceback(None) from None


def check_config(pelican: Any) -> None:
    """`initialized`: fail before any page is written."""
    sitebeacon_config(pelican.settings)


def inject_output(pelican: Any) -> None:
    """`finalized`: every page is written (Pelican sends it only after a complete run)."""
    # Read again: under `pelican --autoreload` an edited sitebeacon.toml applies to the next run.
    config = sitebeacon_config(pelican.settings)
    try:
        report = inject_site(Path(pelican.output_path), config, build_module(config))
    except SitebeaconError as error:
        logger.error("sitebeacon: %s", error)
        raise error.with_traceback(None) from None
    for line in report.summary_lines():
        logger.info("sitebeacon: %s", line)


def register() -> None:
    """The Pelican entry point (`PLUGINS = ["sitebeacon.pelican_plugin"]`)."""
    signals.initialized.connect(check_config)
    signals.finalized.connect(inject_output)
