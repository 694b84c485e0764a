"""Where the generator plugins take their configuration from, and how they reject a bad one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sitebeacon.config import Config, ConfigError
from sitebeacon.plugins.shared import plugin_config


def config(project: Path, config_file: Any = None, inline: Any = None) -> Config:
    return plugin_config(
        project, config_file, inline, file_setting="CONFIG_FILE", inline_setting="INLINE"
    )


def test_defaults_without_any_configuration(tmp_path: Path) -> None:
    assert config(tmp_path) == Config()


def test_sitebeacon_toml_then_pyproject_in_the_project_dir(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.sitebeacon]\nendpoint = "/py"\n')
    assert config(tmp_path).endpoint == "/py"
    (tmp_path / "sitebeacon.toml").write_text('endpoint = "/own"\n')
    assert config(tmp_path).endpoint == "/own"


def test_inline_table_wins_over_the_project_files(tmp_path: Path) -> None:
    (tmp_path / "sitebeacon.toml").write_text('endpoint = "/own"\n')
    inline = {"endpoint": "/inline", "ping": {"links": "all"}}
    assert config(tmp_path, inline=inline) == Config(endpoint="/inline", ping_links="all")


def test_empty_inline_table_means_not_given(tmp_path: Path) -> None:
    (tmp_path / "sitebeacon.toml").write_text('endpoint = "/own"\n')
    assert config(tmp_path, inline={}).endpoint == "/own"


def test_config_file_is_relative_to_the_project_dir(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "beacon.toml").write_text('encoding = "json"\n')
    assert config(tmp_path, config_file="conf/beacon.toml").encoding == "json"
    absolute = tmp_path / "conf" / "beacon.toml"
    assert config(tmp_path / "elsewhere", config_file=str(absolute)).encoding == "json"


@pytest.mark.parametrize(
    ("config_file", "inline", "message"),
    [
        (None, {"endpont": "/x"}, "INLINE: unknown key 'endpont'"),
        (None, {"ping": {"links": "some"}}, "INLINE: ping.links = 'some' is not allowed"),
        (None, ["endpoint"], "INLINE = ['endpoint'] is not allowed; allowed: a table"),
        (3, None, "CONFIG_FILE = 3 is not allowed; allowed: a path"),
        ("beacon.toml", {"endpoint": "/x"}, "CONFIG_FILE and INLINE are both set"),
        ("missing.toml", None, "missing.toml: cannot read"),
    ],
)
def test_bad_settings_name_what_is_wrong(
    tmp_path: Path, config_file: Any, inline: Any, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        config(tmp_path, config_file, inline)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
