"""The generated client module: only what the configuration asks for, valid, small."""

from __future__ import annotations

import gzip
import itertools
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import require
from files import run_cli

from sitebeacon import protocol
from sitebeacon.config import ENCODINGS, EVENTS, TRANSPORTS, Config
from sitebeacon.site import generate
from sitebeacon.site.generate import (
    TemplateError,
    build_module,
    gzip_size,
    module_sizes,
    render_source,
)
from sitebeacon.site.minify import minify_js

REPO = Path(__file__).resolve().parents[2]

# Every non-empty subset of the transports in the default order, plus orderings that put each
# transport first and last.
TRANSPORT_ORDERS = sorted(
    {
        subset
        for size in range(1, len(TRANSPORTS) + 1)
        for subset in itertools.combinations(TRANSPORTS, size)
    }
    | {
        ("keepalive", "beacon", "fetchlater"),
        ("beacon", "fetchlater", "keepalive"),
        ("beacon", "fetchlater"),
        ("keepalive", "fetchlater"),
    }
)
EVENT_SETS = [
    subset for size in range(len(EVENTS) + 1) for subset in itertools.combinations(EVENTS, size)
]


def configs_for(transport: tuple[str, ...], encoding: str) -> list[Config]:
    return [
        Config(transport=transport, encoding=encoding, events=events, respect_dnt=dnt, spa=spa)
        for events in EVENT_SETS
        for dnt, spa in ((False, "history"), (True, "off"), (False, "hash"))
    ]


def present(module: str, pattern: str) -> bool:
    return re.search(pattern, module) is not None


def check_only_what_is_configured(config: Config, module: str) -> None:
    """Each feature's code is in the module exactly when the configuration asks for it."""
    transports, events = set(config.transport), set(config.events)
    arming = "fetchlater" in transports and "leave" in events
    expected = {
        # transports
        r"fetchLater\(": "fetchlater" in transports,
        r"activateAfter": "fetchlater" in transports,
        r"AbortController": "fetchlater" in transports,
        r'"fetchlater"': "fetchlater" in transports,
        r"sendBeacon": "beacon" in transports,
        r'"beacon"': "beacon" in transports,
        r'"keepalive"\)': "keepalive" in transports,
        r"setInterval": arming,
        # encodings
        r"URLSearchParams": config.encoding == "form",
        r"application/json": config.encoding == "json",
        # events
        r'"pageview"': "pageview" in events,
        r"referrer": "pageview" in events,
        r'"leave"': "leave" in events,
        r"visible_ms": "leave" in events,
        r"pagehide": "leave" in events,
        r'"outbound"': "outbound" in events,
        r'"download"': "download" in events,
        r"auxclick": bool(events & {"outbound", "download"}),
        r"composedPath": bool(events & {"outbound", "download"}),
        r"\.ping\b": "outbound" in events,
        r"window\.sitebeacon=": "custom" in events,
        # navigation
        r"pushState": config.spa != "off",
        r"popstate": config.spa != "off",
        r"hashchange": config.spa == "hash",
        # privacy
        r"doNotTrack": config.respect_dnt,
        r"globalPrivacyControl": config.respect_dnt,
    }
    wrong = {
        pattern: wanted
        for pattern, wanted in expected.items()
        if present(module, pattern) != wanted
    }
    assert not wrong, f"{config}: pattern -> expected presence: {wrong}"
    # Never, in any configuration.
    for forbidden in ("unload", "preventDefault", "stopPropagation", "cookie", "Math.random"):
        assert forbidden not in module, f"{config}: {forbidden}"
    # Always: the visit waits to be shown, the ignore flag, the queue and its one fetch, the
    # hygiene of URLs, ids from getRandomValues.
    for always in ("prerendering", "visibilitychange", "pageshow", "sitebeacon_ignore"):
        assert always in module, f"{config}: {always}"
    for always in ("sitebeacon_queue", '"online"', "getRandomValues", '"file:"', "utm_"):
        assert always in module, f"{config}: {always}"
    # fetch: keepalive's, and the queue's flush where no beacon carries it.
    fetches = ("keepalive" in transports) + ("beacon" not in transports)
    assert len(re.findall(r"\bfetch\(", module)) == fetches
    assert '"' + config.endpoint + '"' in module
    # An IIFE: nothing leaks into the page's globals but window.sitebeacon.
    assert module.startswith("(()=>{") and module.endswith("})()")


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("transport", TRANSPORT_ORDERS, ids=",".join)
def test_module_holds_only_what_is_configured(transport: tuple[str, ...], encoding: str) -> None:
    for config in configs_for(transport, encoding):
        check_only_what_is_configured(config, build_module(config))


def test_transports_are_tried_in_the_configured_order() -> None:
    markers = {name: f'// "{name}":' for name in TRANSPORTS}
    for order in itertools.permutations(TRANSPORTS):
        source = render_source(Config(transport=order))
        send = source[source.index("let transports = [") : source.index("    ];")]
        positions = [send.index(markers[name]) for name in order]
        assert positions == sorted(positions), order


def test_leave_is_armed_ahead_whenever_fetchlater_is_listed() -> None:
    first = render_source(Config(transport=("fetchlater", "beacon")))
    second = render_source(Config(transport=("beacon", "fetchlater")))
    absent = render_source(Config(transport=("beacon", "keepalive")))
    for source in (first, second):
        assert "let armed" in source and "setInterval" in source
    assert "let armed" not in absent and "setInterval" not in absent
    # Listed later, the armed copy is cancelled on hide and the order sends the figures.
    assert "armed && armed.abort();\n        armed = 0;\n        send(" in second
    assert "armed = 0;\n        send(" not in first


def test_every_module_passes_node_check(tmp_path: Path) -> None:
    require(shutil.which("node") is not None, "node is not installed (scripts/setup.sh does it)")
    # A second, independent parser over the whole matrix (one file: the modules are statements).
    modules = [
        build_module(config)
        for transport in TRANSPORT_ORDERS
        for encoding in ENCODINGS
        for config in configs_for(transport, encoding)
    ]
    script = tmp_path / "all.js"
    script.write_text(";\n".join(modules) + ";\n", encoding="utf-8")
    result = subprocess.run(
        ["node", "--check", str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


# The three configurations of the README's size table (gzip -9 bytes of the minified module).
SIZE_CONFIGS = {
    "default": Config(),
    "every feature": Config(
        events=EVENTS, spa="hash", hosts=("example.com",), respect_dnt=True,
        ignore_hosts=("localhost",),
    ),
    "beacon, leave": Config(transport=("beacon",), events=("leave",)),
}  # fmt: skip
ISSUE_BUDGET = {"default": 950, "every feature": 1600, "beacon, leave": 450}
# What the module measures today (README "Size"), so that it cannot grow unnoticed.
CEILING = {"default": 1313, "every feature": 1577, "beacon, leave": 945}
# Below what the issue's own behaviour needs (README "Size": a module written by hand for the
# purpose, bench/size.py, is 1,081 and 905 bytes): a strict xfail, which fails the day it is met.
OVER_BUDGET = pytest.mark.xfail(strict=True, reason="README 'Size': below the hand-written floor")


@pytest.mark.parametrize("name", SIZE_CONFIGS)
def test_module_size_does_not_grow(name: str) -> None:
    assert module_sizes(SIZE_CONFIGS[name])["gzip"] <= CEILING[name]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("default", marks=OVER_BUDGET),
        "every feature",
        pytest.param("beacon, leave", marks=OVER_BUDGET),
    ],
)
def test_module_size_meets_the_issue_budget(name: str) -> None:
    assert module_sizes(SIZE_CONFIGS[name])["gzip"] <= ISSUE_BUDGET[name]


@pytest.mark.parametrize(
    ("name", "floor_file"), [("default", "default_beacon.js"), ("beacon, leave", "beacon_leave.js")]
)
def test_the_hand_written_floor_is_over_the_budget(name: str, floor_file: str) -> None:
    # README "Size": the module written by hand for size alone (bench/size_floor/) is over the
    # issue's budget, which is why that budget is an xfail above; the floor must parse.
    source = (REPO / "bench" / "size_floor" / floor_file).read_text(encoding="utf-8")
    floor = gzip_size(minify_js(source))
    assert ISSUE_BUDGET[name] < floor <= module_sizes(SIZE_CONFIGS[name])["gzip"]


def test_the_queue_always_fits_one_body() -> None:
    # The queue is bounded in bytes, so its flush (every record marked retried, the first
    # also counting what was dropped) is one body under QUEUE_BODY, itself under MAX_BODY.
    marks = protocol.QUEUE_RECORDS * len(',"retried":1,"transport":"keepalive"')
    dropped = len(',"dropped":' + str(2**53))
    assert protocol.QUEUE_BYTES + marks + dropped < protocol.QUEUE_BODY < protocol.MAX_BODY
    source = render_source(Config())
    for limit in (protocol.QUEUE_BYTES, protocol.QUEUE_MAX_AGE_MS, protocol.QUEUE_RECORDS):
        assert str(limit) in source


def test_sizes_measure_the_source_the_module_and_its_gzip() -> None:
    config = Config(encoding="form", events=EVENTS, respect_dnt=True)
    sizes = module_sizes(config)
    assert list(sizes) == ["raw", "minified", "gzip"]
    module = build_module(config).encode()
    assert sizes["raw"] == len(render_source(config).encode())
    assert sizes["minified"] == len(module)
    assert sizes["gzip"] == len(gzip.compress(module, compresslevel=9, mtime=0))
    assert sizes["raw"] > sizes["minified"] > sizes["gzip"]


def test_source_is_readable_and_the_module_is_minified() -> None:
    source = render_source(Config())
    module = build_module(Config())
    assert "// " in source and "\n" in source and "visibleSince" in source
    assert "//" not in module.replace("://", "") and "\n" not in module
    assert "visibleSince" not in module


def test_build_module_is_cached_per_config() -> None:
    assert build_module(Config()) is build_module(Config())
    assert build_module(Config(encoding="json")) != build_module(Config())


def test_endpoint_is_a_javascript_string() -> None:
    url = "https://stats.example.org/collect?site=blog&x=1"
    # tojson writes a JSON string (escaping & < > ' on the way); the minifier may unescape the
    # harmless ones, and config.py already refuses quotes, backslashes and < > in endpoints.
    assert 'let endpoint = "https://stats.example.org/collect?site=blog\\u0026x=1";' in (
        render_source(Config(endpoint=url))
    )
    assert '="' + url + '"' in build_module(Config(endpoint=url))


def test_respect_dnt_stubs_the_custom_api() -> None:
    source = render_source(Config(events=("custom",), respect_dnt=True))
    guard = source.index("doNotTrack")
    assert source.index("window.sitebeacon ||= {event: () => {}}") > guard


def test_templates_prefer_the_installed_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed, checkout = tmp_path / "pkg" / "js_templates", tmp_path / "js_templates"
    for directory in (installed, checkout):
        shutil.copytree(REPO / "js_templates", directory)
    monkeypatch.setattr(generate, "TEMPLATE_DIRS", (installed, checkout))
    assert generate.template_dir() == installed
    shutil.rmtree(installed)
    assert generate.template_dir() == checkout
    shutil.rmtree(checkout)
    with pytest.raises(TemplateError, match="not found"):
        generate.template_dir()


def test_template_dirs_are_the_wheel_layout_then_the_checkout() -> None:
    package = Path(generate.__file__).resolve().parents[1]  # sitebeacon/
    assert (package / "js_templates", package.parent / "js_templates") == generate.TEMPLATE_DIRS
    assert generate.template_dir() in generate.TEMPLATE_DIRS


def test_a_broken_template_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "js_templates"
    shutil.copytree(REPO / "js_templates", broken)
    (broken / "encodings" / "text.js.j2").write_text("var encode = (rec => {\n", encoding="utf-8")
    monkeypatch.setattr(generate, "TEMPLATE_DIRS", (broken,))
    generate.build_module.cache_clear()
    with pytest.raises(generate.SitebeaconError, match="does not parse"):
        generate.build_module(Config(encoding="text", events=("pageview",)))
    generate.build_module.cache_clear()


def test_cli_js_prints_exactly_the_module(tmp_path: Path) -> None:
    (tmp_path / "beacon.toml").write_text('transport = ["beacon"]\nencoding = "form"\n')
    result = run_cli("js", "--config", "beacon.toml", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == build_module(Config(transport=("beacon",), encoding="form"))


def test_cli_js_sizes(tmp_path: Path) -> None:
    result = run_cli("js", "--sizes", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    printed = dict(line.split("\t") for line in result.stdout.splitlines())
    assert {name: int(value) for name, value in printed.items()} == module_sizes(Config())
