"""What the MkDocs, Pelican and Sphinx plugins share, so that each is only glue.

A docs team configures sitebeacon the way `sitebeacon inject` is configured (the same keys,
the same files, the same one-line errors) and the plugin runs the same `inject_site` over the
finished output: one code path for byte preservation and atomic writes, whoever built the site.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sitebeacon.config import Config, ConfigError, load_config, parse_config


def plugin_config(
    project_dir: Path,
    config_file: Any,
    inline: Any,
    *,
    file_setting: str,
    inline_setting: str,
) -> Config:
    """The configuration a plugin should use; ConfigError names the setting or key at fault.

    `config_file` (a path, relative to `project_dir`) and `inline` (a table with the keys of
    sitebeacon.toml, written in the generator's own config) come from the generator's config,
    where the user calls them `file_setting` and `inline_setting`. With neither given,
    `sitebeacon.toml` or `[tool.sitebeacon]` of `pyproject.toml` in `project_dir` apply, as for
    `sitebeacon inject` run there; with none of those, the defaults.
    """
    if inline is not None and not isinstance(inline, Mapping):
        raise ConfigError(
            f"{inline_setting} = {inline!r} is not allowed; allowed: a table of sitebeacon keys"
        )
    if config_file is not None and not isinstance(config_file, str | os.PathLike):
        raise ConfigError(f"{file_setting} = {config_file!r} is not allowed; allowed: a path")
    if inline and config_file is not None:
        raise ConfigError(
            f"{file_setting} and {inline_setting} are both set; use one of them, not both"
        )
    if inline:
        return parse_config(dict(inline), inline_setting)
    if config_file is not None:
        return load_config(project_dir / config_file)
    return load_config(None, project_dir)
