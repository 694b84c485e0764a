"""Read and validate sitebeacon's configuration.

The configuration decides what goes into the client module, so a typo must stop the build with
one line that names the key, the bad value and what is allowed, before anything is written.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sitebeacon.errors import SitebeaconError
from sitebeacon.protocol import CLIENT_TRANSPORTS as TRANSPORTS
from sitebeacon.protocol import DEFAULT_KEEP_QUERY, ENCODINGS, EVENTS

PING_LINKS = ("none", "outbound", "all")
SCRIPT_MODES = ("inline", "external")
SPA_MODES = ("history", "hash", "off")
DEFAULT_DOWNLOAD_EXTENSIONS = (
    "pdf", "zip", "gz", "tgz", "dmg", "exe", "msi", "deb", "rpm", "epub", "mp3", "mp4", "csv",
    "xlsx", "docx", "pptx",
)  # fmt: skip

TOP_KEYS = (
    "endpoint",
    "transport",
    "encoding",
    "events",
    "respect_dnt",
    "ping",
    "script",
    "spa",
    "hosts",
    "privacy",
    "downloads",
)
PING_KEYS = ("links",)
SCRIPT_KEYS = ("mode",)
PRIVACY_KEYS = ("keep_query", "ignore_hosts")
DOWNLOADS_KEYS = ("extensions",)
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?")
_QUERY_NAME = re.compile(r"[^\s&=#]{1,64}")
_EXTENSION = re.compile(r"[a-z0-9]{1,10}")


class ConfigError(SitebeaconError):
    """A configuration problem; the CLI prints it on one line and exits with status 2."""


@dataclass(frozen=True)
class Config:
    """The validated configuration. Defaults are the recommended setup."""

    endpoint: str = "/collect"
    transport: tuple[str, ...] = TRANSPORTS
    encoding: str = "text"
    events: tuple[str, ...] = ("pageview", "leave", "outbound")
    respect_dnt: bool = False
    ping_links: str = "none"
    script_mode: str = "inline"
    spa: str = "history"
    hosts: tuple[str, ...] = ()
    """The site's own hosts: links to them (over http or https, www or not) are not outbound."""
    keep_query: tuple[str, ...] = DEFAULT_KEEP_QUERY
    """Query parameters kept in stored URLs; `("*",)` keeps them all."""
    ignore_hosts: tuple[str, ...] = ()
    """Hosts from which the module sends nothing (staging, localhost)."""
    download_extensions: tuple[str, ...] = DEFAULT_DOWNLOAD_EXTENSIONS
    source: str = field(default="<defaults>", compare=False)

    def with_endpoint(self, endpoint: str) -> Config:
        """A copy pointing at another receiver (used by `verify` to aim at its own receiver)."""
        return replace(self, endpoint=_check_endpoint(self.source, "endpoint", endpoint))


def _fail(source: str, key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{source}: {key} = {value!r} is not allowed; allowed: {allowed}")


def _check_endpoint(source: str, key: str, value: Any) -> str:
    allowed = 'a path starting with "/" or an absolute http(s) URL'
    if not isinstance(value, str) or not value or any(c in value for c in " \"<>'\\\n\r\t"):
        raise _fail(source, key, value, allowed)
    if value.startswith("/") and not value.startswith("//"):
        return value
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        return value
    raise _fail(source, key, value, allowed)


def _check_choice(source: str, key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _fail(source, key, value, " | ".join(choices))
    return value


def _check_subset(
    source: str, key: str, value: Any, choices: tuple[str, ...], *, non_empty: bool
) -> tuple[str, ...]:
    allowed = ("a non-empty list" if non_empty else "a list") + " of " + ", ".join(choices)
    if not isinstance(value, list) or (non_empty and not value):
        raise _fail(source, key, value, allowed)
    for item in value:
        if not isinstance(item, str) or item not in choices:
            raise _fail(source, key, item, allowed)
    if len(set(value)) != len(value):
        raise _fail(source, key, value, allowed + " (each at most once)")
    return tuple(value)


def _check_list(
    source: str, key: str, value: Any, pattern: re.Pattern[str], allowed: str
) -> tuple[str, ...]:
    """A list of distinct strings each matching `pattern` (hosts, parameter names, extensions)."""
    if not isinstance(value, list):
        raise _fail(source, key, value, f"a list of {allowed}")
    for item in value:
        if not isinstance(item, str) or not pattern.fullmatch(item):
            raise _fail(source, key, item, f"a list of {allowed}")
    if len(set(value)) != len(value):
        raise _fail(source, key, value, f"a list of {allowed} (each at most once)")
    return tuple(value)


def _check_keep_query(source: str, value: Any) -> tuple[str, ...]:
    if value == ["*"] or value == "*":
        return ("*",)
    return _check_list(
        source,
        "privacy.keep_query",
        value,
        _QUERY_NAME,
        'query parameter names, or ["*"] to keep them all',
    )


def _check_keys(source: str, table: dict[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"{source}: unknown key {prefix + key!r}; allowed keys: "
                + ", ".join(prefix + k for k in allowed)
            )


def _sub_table(source: str, data: dict[str, Any], key: str) -> dict[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise _fail(source, key, table, "a table")
    return table


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a decoded TOML table into a Config; raise ConfigError on the first problem."""
    _check_keys(source, data, TOP_KEYS, "")
    ping = _sub_table(source, data, "ping")
    script = _sub_table(source, data, "script")
    privacy = _sub_table(source, data, "privacy")
    downloads = _sub_table(source, data, "downloads")
    _check_keys(source, ping, PING_KEYS, "ping.")
    _check_keys(source, script, SCRIPT_KEYS, "script.")
    _check_keys(source, privacy, PRIVACY_KEYS, "privacy.")
    _check_keys(source, downloads, DOWNLOADS_KEYS, "downloads.")
    hosts = 'host names such as "example.com" (lower case, no scheme)'

    defaults = Config()
    respect_dnt = data.get("respect_dnt", defaults.respect_dnt)
    if not isinstance(respect_dnt, bool):
        raise _fail(source, "respect_dnt", respect_dnt, "true | false")
    return Config(
        endpoint=_check_endpoint(source, "endpoint", data.get("endpoint", defaults.endpoint)),
        transport=_check_subset(
            source,
            "transport",
            data.get("transport", list(defaults.transport)),
            TRANSPORTS,
            non_empty=True,
        ),
        encoding=_check_choice(source, "encoding", data.get("encoding", "text"), ENCODINGS),
        events=_check_subset(
            source, "events", data.get("events", list(defaults.events)), EVENTS, non_empty=False
        ),
        respect_dnt=respect_dnt,
        ping_links=_check_choice(source, "ping.links", ping.get("links", "none"), PING_LINKS),
        script_mode=_check_choice(
            source, "script.mode", script.get("mode", "inline"), SCRIPT_MODES
        ),
        spa=_check_choice(source, "spa", data.get("spa", defaults.spa), SPA_MODES),
        hosts=_check_list(source, "hosts", data.get("hosts", []), _HOST, hosts),
        keep_query=_check_keep_query(source, privacy.get("keep_query", list(defaults.keep_query))),
        ignore_hosts=_check_list(
            source, "privacy.ignore_hosts", privacy.get("ignore_hosts", []), _HOST, hosts
        ),
        download_extensions=_check_list(
            source,
            "downloads.extensions",
            downloads.get("extensions", list(defaults.download_extensions)),
            _EXTENSION,
            'file extensions such as "pdf" (lower case, no dot)',
        ),
        source=source,
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 ({error.reason})") from error


def load_config(path: Path | None = None, cwd: Path | None = None) -> Config:
    """Load `path`, else `sitebeacon.toml` in `cwd`, else `[tool.sitebeacon]` of pyproject.toml.

    With none of them present the defaults apply.
    """
    if path is not None:
        return parse_config(_read_toml(path), str(path))
    base = cwd if cwd is not None else Path.cwd()
    own = base / "sitebeacon.toml"
    if own.is_file():
        return parse_config(_read_toml(own), str(own))
    pyproject = base / "pyproject.toml"
    if pyproject.is_file():
        tool = _read_toml(pyproject).get("tool", {})
        section = tool.get("sitebeacon") if isinstance(tool, dict) else None
        if section is not None:
            if not isinstance(section, dict):
                raise _fail(str(pyproject), "tool.sitebeacon", section, "a table")
            return parse_config(section, f"{pyproject} [tool.sitebeacon]")
    return Config()
