"""Render the client module from `js_templates/` for one configuration, then minify it.

Rendering at build time keeps the module small: a site that never uses fetchLater or form
encoding does not ship the code for them.
"""

from __future__ import annotations

import functools
import gzip
import re
from pathlib import Path
from typing import Any

import jinja2

from sitebeacon import protocol
from sitebeacon.config import Config
from sitebeacon.errors import SitebeaconError
from sitebeacon.site.hosts import own_host_keys
from sitebeacon.site.minify import minify_js

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # sitebeacon/
# In a wheel the templates are force-included as sitebeacon/js_templates; in a source checkout
# or an editable install they sit next to the package, at <repo>/js_templates.
TEMPLATE_DIRS = (PACKAGE_DIR / "js_templates", PACKAGE_DIR.parent / "js_templates")
MAIN_TEMPLATE = "module.js.j2"
# How often an armed fetchLater leave record is refreshed while the page is visible: the most
# visible time a renderer crash or a killed browser can take from it.
REARM_INTERVAL_MS = 10_000


class TemplateError(SitebeaconError):
    """The client module templates are missing or broken (a packaging or template bug)."""


def template_dir() -> Path:
    """The first of TEMPLATE_DIRS that holds the main template."""
    for directory in TEMPLATE_DIRS:
        if (directory / MAIN_TEMPLATE).is_file():
            return directory
    searched = ", ".join(str(directory) for directory in TEMPLATE_DIRS)
    raise TemplateError(f"client module templates not found (looked in {searched})")


@functools.cache
def _environment(directory: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _js_regex(text: str) -> str:
    """`text` matched literally inside a JavaScript regular expression literal."""
    return re.sub(r"[\\^$.*+?()[\]{}|/-]", lambda match: "\\" + match.group(), text)


def _keep_pattern(names: tuple[str, ...]) -> str:
    """A regex alternation matching exactly `names`, names sharing a prefix up to "_" grouped
    under it (`utm_(source|medium)|ref`): the module carries the shortest test it can."""
    groups: dict[str, list[str]] = {}
    for name in names:
        prefix, underscore, rest = name.partition("_")
        key = prefix + underscore if rest else ""
        groups.setdefault(key, []).append(_js_regex(rest if rest else name))
    parts: list[str] = []
    for key, rests in groups.items():
        if key and len(rests) > 1:
            parts.append(f"{_js_regex(key)}({'|'.join(rests)})")
        else:
            parts.extend(_js_regex(key) + rest for rest in rests)
    return "|".join(parts)


def template_context(config: Config) -> dict[str, Any]:
    """What the templates may look at: only the settings that change the module."""
    events = list(config.events)
    links = "outbound" in events or protocol.DOWNLOAD in events
    return {
        "endpoint": config.endpoint,
        "transports": list(config.transport),
        # send() tries these in order (transports/*.js.j2 defines each `<name>Sent`).
        "transport_functions": [f"{name}Sent" for name in config.transport],
        "encoding": config.encoding,
        "events": events,
        # events/*.js.j2 to render: outbound and download share one click listener (links).
        "rendered_events": [*events, "links"] if links else events,
        "respect_dnt": config.respect_dnt,
        "spa": config.spa,
        # The site's own hosts as keys of the one rule in sitebeacon.site.hosts (host_key), so
        # the module and inject's ping classification agree on what is outbound.
        "hosts": list(own_host_keys(config.hosts)),
        "own_host_needed": links or protocol.PAGEVIEW in events,
        "keep_all": config.keep_query == ("*",),
        "keep_query": list(config.keep_query),
        "keep_query_pattern": _keep_pattern(config.keep_query),
        "ignore_hosts": list(config.ignore_hosts),
        "ignore_hosts_pattern": "|".join(_js_regex(host) for host in config.ignore_hosts),
        # Without a listed `host:port` the module tests location.hostname, a shorter regex.
        "ignore_ports": any(":" in host for host in config.ignore_hosts),
        "download_extensions": list(config.download_extensions),
        # With fetchLater listed the leave record is armed ahead of time (crash, closed browser);
        # first in the order, the armed copy is also what normally goes out.
        "arming": "fetchlater" in config.transport,
        "arming_first": config.transport[0] == "fetchlater",
        "rearm_ms": REARM_INTERVAL_MS,
        # The wire format's numbers and names, from the one module the receiver checks with.
        "version": protocol.VERSION,
        "max_text": protocol.MAX_TEXT,
        "max_data": protocol.MAX_DATA,
        "max_body": protocol.MAX_BODY,
        "queue_key": protocol.QUEUE_KEY,
        "queue_records": protocol.QUEUE_RECORDS,
        "queue_bytes": protocol.QUEUE_BYTES,
        "queue_max_age_ms": protocol.QUEUE_MAX_AGE_MS,
        "queue_body": protocol.QUEUE_BODY,
        "retried_key": protocol.RETRIED,
        "dropped_key": protocol.DROPPED,
        "ignore_flag": protocol.IGNORE_FLAG,
    }


def render_source(config: Config) -> str:
    """The readable (unminified) module for `config`."""
    try:
        template = _environment(template_dir()).get_template(MAIN_TEMPLATE)
        return template.render(template_context(config))
    except jinja2.TemplateError as error:
        raise TemplateError(f"client module template error: {error}") from error


@functools.lru_cache(maxsize=128)
def build_module(config: Config) -> str:
    """The minified module for `config` (cached: tests and builds ask for it repeatedly)."""
    return minify_js(render_source(config))


def gzip_size(text: str) -> int:
    """Bytes of `text` gzipped as a server sends it at best (-9, no timestamp), for `--sizes`."""
    return len(gzip.compress(text.encode(), compresslevel=9, mtime=0))


def module_sizes(config: Config) -> dict[str, int]:
    """Bytes of the readable source, the minified module and the minified module gzipped (-9)."""
    minified = build_module(config)
    return {
        "raw": len(render_source(config).encode()),
        "minified": len(minified.encode()),
        "gzip": gzip_size(minified),
    }
