"""Configuration: every bad value is refused with one line naming key, value and what is allowed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from files import SAMPLE, write

from sitebeacon.config import (
    DOWNLOADS_KEYS,
    ENCODINGS,
    EVENTS,
    PING_KEYS,
    PRIVACY_KEYS,
    SCRIPT_KEYS,
    TOP_KEYS,
    TRANSPORTS,
    Config,
    ConfigError,
    load_config,
    parse_config,
)


def config_error(tmp_path: Path, toml: str) -> str:
    """The message load_config raises for this TOML text (and assert it is one line)."""
    path = write(tmp_path / "sitebeacon.toml", toml)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


def test_defaults_are_the_documented_ones() -> None:
    config = Config()
    assert config.endpoint == "/collect"
    assert config.transport == ("fetchlater", "beacon", "keepalive")
    assert config.encoding == "text"
    assert config.events == ("pageview", "leave", "outbound")
    assert config.respect_dnt is False
    assert config.ping_links == "none"
    assert config.script_mode == "inline"
    assert parse_config({}) == config


def test_every_key_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path / "site.toml",
        """
endpoint = "https://stats.example.org/collect"
transport = ["keepalive", "beacon"]
encoding = "json"
events = ["leave", "custom"]
respect_dnt = true
[ping]
links = "outbound"
[script]
mode = "external"
""",
    )
    config = load_config(path)
    assert config == Config(
        endpoint="https://stats.example.org/collect",
        transport=("keepalive", "beacon"),
        encoding="json",
        events=("leave", "custom"),
        respect_dnt=True,
        ping_links="outbound",
        script_mode="external",
    )
    assert config.source == str(path)


@pytest.mark.parametrize(
    ("toml", "key", "shown", "allowed"),
    [
        # wrong types
        ("endpoint = 5", "endpoint", "5", "absolute http(s) URL"),
        ("endpoint = ['/a']", "endpoint", "['/a']", "absolute http(s) URL"),
        ('transport = "beacon"', "transport", "'beacon'", "non-empty list of fetchlater"),
        ("transport = [1]", "transport", "1", "non-empty list of fetchlater"),
        ("encoding = 1", "encoding", "1", "text | json | form"),
        ("encoding = ['text']", "encoding", "['text']", "text | json | form"),
        ('events = "pageview"', "events", "'pageview'", "a list of pageview"),
        ("events = [true]", "events", "True", "a list of pageview"),
        ('respect_dnt = "yes"', "respect_dnt", "'yes'", "true | false"),
        ("respect_dnt = 1", "respect_dnt", "1", "true | false"),
        ('ping = "all"', "ping", "'all'", "a table"),
        ('script = "inline"', "script", "'inline'", "a table"),
        ("[ping]\nlinks = true", "ping.links", "True", "none | outbound | all"),
        ("[script]\nmode = 0", "script.mode", "0", "inline | external"),
        # values outside their choices
        ('endpoint = ""', "endpoint", "''", "absolute http(s) URL"),
        ('endpoint = "collect"', "endpoint", "'collect'", "a path starting with"),
        ('endpoint = "//evil.example/c"', "endpoint", "'//evil.example/c'", "a path starting"),
        ('endpoint = "ftp://h/c"', "endpoint", "'ftp://h/c'", "absolute http(s) URL"),
        ('endpoint = "https://"', "endpoint", "'https://'", "absolute http(s) URL"),
        ('endpoint = "/c</script>"', "endpoint", "'/c</script>'", "a path starting"),
        ('endpoint = "/a b"', "endpoint", "'/a b'", "a path starting"),
        ('endpoint = "/a\\"b"', "endpoint", "'/a\"b'", "a path starting"),
        ("transport = []", "transport", "[]", "non-empty list"),
        ('transport = ["smoke"]', "transport", "'smoke'", "fetchlater, beacon, keepalive"),
        ('transport = ["Beacon"]', "transport", "'Beacon'", "fetchlater, beacon, keepalive"),
        ('transport = ["beacon", "beacon"]', "transport", "['beacon', 'beacon']", "at most once"),
        ('encoding = "xml"', "encoding", "'xml'", "text | json | form"),
        ('events = ["click"]', "events", "'click'", "pageview, leave, outbound, custom"),
        ('events = ["leave", "leave"]', "events", "['leave', 'leave']", "at most once"),
        ('[ping]\nlinks = "some"', "ping.links", "'some'", "none | outbound | all"),
        ('[script]\nmode = "defer"', "script.mode", "'defer'", "inline | external"),
        # the routing, privacy and downloads settings
        ('spa = "pushstate"', "spa", "'pushstate'", "history | hash | off"),
        ('hosts = "example.com"', "hosts", "'example.com'", "a list of host names"),
        ('hosts = ["https://example.com"]', "hosts", "'https://example.com'", "no scheme"),
        ('hosts = ["Example.com"]', "hosts", "'Example.com'", "lower case"),
        ('privacy = "strict"', "privacy", "'strict'", "a table"),
        ("[privacy]\nkeep_query = ['a b']", "privacy.keep_query", "'a b'", "parameter names"),
        ("[privacy]\nkeep_query = 'all'", "privacy.keep_query", "'all'", '["*"]'),
        ("[privacy]\nignore_hosts = [1]", "privacy.ignore_hosts", "1", "host names"),
        ("[downloads]\nextensions = ['.pdf']", "downloads.extensions", "'.pdf'", "no dot"),
        (
            "[downloads]\nextensions = ['pdf', 'pdf']",
            "downloads.extensions",
            "['pdf', 'pdf']",
            "at most once",
        ),
        ('events = ["downloads"]', "events", "'downloads'", "custom, download"),
    ],
)
def test_bad_value_names_key_value_and_choices(
    tmp_path: Path, toml: str, key: str, shown: str, allowed: str
) -> None:
    message = config_error(tmp_path, toml)
    assert f" {key} = {shown} is not allowed; allowed: " in message
    assert allowed in message


@pytest.mark.parametrize(
    ("toml", "key", "allowed"),
    [
        ("endpont = '/c'", "'endpont'", "endpoint, transport, encoding"),
        ("[ping]\nlink = 'all'", "'ping.link'", "ping.links"),
        ("[script]\nsri = true", "'script.sri'", "script.mode"),
        ("[tracking]\nx = 1", "'tracking'", "respect_dnt, ping, script"),
        ("[privacy]\nkeep = []", "'privacy.keep'", "privacy.keep_query, privacy.ignore_hosts"),
        ("[downloads]\next = []", "'downloads.ext'", "downloads.extensions"),
    ],
)
def test_unknown_key_is_named_with_the_allowed_keys(
    tmp_path: Path, toml: str, key: str, allowed: str
) -> None:
    message = config_error(tmp_path, toml)
    assert f"unknown key {key}; allowed keys: " in message
    assert allowed in message


def test_every_choice_is_accepted() -> None:
    for transport in TRANSPORTS:
        assert parse_config({"transport": [transport]}).transport == (transport,)
    for encoding in ENCODINGS:
        assert parse_config({"encoding": encoding}).encoding == encoding
    assert parse_config({"events": list(EVENTS)}).events == EVENTS
    assert parse_config({"events": []}).events == ()
    assert parse_config({"endpoint": "http://127.0.0.1:8787/c?x=1"}).endpoint.endswith("?x=1")


def test_toml_syntax_error_is_one_line(tmp_path: Path) -> None:
    message = config_error(tmp_path, 'endpoint = "/collect"\ntransport = [beacon]\n')
    assert "not valid TOML" in message
    assert "line 2" in message


def test_duplicate_table_is_a_toml_error(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[ping]\nlinks = "all"\n[ping]\n')
    assert "not valid TOML" in message


def test_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path / "latin1.toml", 'endpoint = "/caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not valid TOML: not UTF-8"):
        load_config(path)


def test_missing_or_unreadable_config_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)  # a directory


def test_lookup_explicit_path_wins(tmp_path: Path) -> None:
    write(tmp_path / "sitebeacon.toml", 'endpoint = "/own"')
    write(tmp_path / "pyproject.toml", '[tool.sitebeacon]\nendpoint = "/pyproject"')
    chosen = write(tmp_path / "other" / "x.toml", 'endpoint = "/explicit"')
    assert load_config(chosen, tmp_path).endpoint == "/explicit"


def test_lookup_sitebeacon_toml_before_pyproject(tmp_path: Path) -> None:
    write(tmp_path / "sitebeacon.toml", 'endpoint = "/own"')
    write(tmp_path / "pyproject.toml", '[tool.sitebeacon]\nendpoint = "/pyproject"')
    config = load_config(None, tmp_path)
    assert config.endpoint == "/own"
    assert config.source == str(tmp_path / "sitebeacon.toml")


def test_lookup_pyproject_section(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "blog"\n[tool.sitebeacon]\nendpoint = "/pyproject"\n'
        '[tool.sitebeacon.ping]\nlinks = "all"\n',
    )
    config = load_config(None, tmp_path)
    assert (config.endpoint, config.ping_links) == ("/pyproject", "all")
    assert "[tool.sitebeacon]" in config.source


def test_lookup_pyproject_errors_name_the_section(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.sitebeacon]\nencoding = "yaml"\n')
    with pytest.raises(ConfigError, match=r"pyproject.toml \[tool.sitebeacon\]: encoding = 'yaml'"):
        load_config(None, tmp_path)
    write(tmp_path / "pyproject.toml", '[tool]\nsitebeacon = "on"\n')
    with pytest.raises(
        ConfigError, match=r"tool\.sitebeacon = 'on' is not allowed; allowed: a table"
    ):
        load_config(None, tmp_path)


def test_lookup_defaults_without_any_file(tmp_path: Path) -> None:
    assert load_config(None, tmp_path) == Config()
    write(tmp_path / "pyproject.toml", '[project]\nname = "blog"\n')
    assert load_config(None, tmp_path) == Config()


def test_lookup_uses_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "sitebeacon.toml", 'endpoint = "/cwd"')
    monkeypatch.chdir(tmp_path)
    assert load_config().endpoint == "/cwd"


def test_with_endpoint_is_validated() -> None:
    config = Config().with_endpoint("http://127.0.0.1:9/collect")
    assert config.endpoint == "http://127.0.0.1:9/collect"
    with pytest.raises(ConfigError, match="endpoint = 'javascript:alert'"):
        Config().with_endpoint("javascript:alert")


def test_routing_privacy_hosts_and_downloads_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path / "site.toml",
        """
spa = "hash"
hosts = ["example.com", "www.example.com", "docs.example.com:8443"]
events = ["pageview", "download"]
[privacy]
keep_query = ["q", "utm_source"]
ignore_hosts = ["localhost", "staging.example.com"]
[downloads]
extensions = ["pdf", "7z"]
""",
    )
    config = load_config(path)
    assert config.spa == "hash"
    assert config.hosts == ("example.com", "www.example.com", "docs.example.com:8443")
    assert config.events == ("pageview", "download")
    assert config.keep_query == ("q", "utm_source")
    assert config.ignore_hosts == ("localhost", "staging.example.com")
    assert config.download_extensions == ("pdf", "7z")
    assert parse_config({"privacy": {"keep_query": ["*"]}}).keep_query == ("*",)
    defaults = Config()
    assert (defaults.spa, defaults.hosts, defaults.ignore_hosts) == ("history", (), ())
    assert defaults.keep_query == (
        "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "ref"
    )  # fmt: skip
    assert "pdf" in defaults.download_extensions and "pptx" in defaults.download_extensions


def test_the_sample_config_writes_out_every_key_at_its_default() -> None:
    # sample_site/sitebeacon.toml says it is the defaults with every key visible: keep it so.
    path = SAMPLE / "sitebeacon.toml"
    assert load_config(path) == Config()
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert sorted(data) == sorted(TOP_KEYS)
    tables = {"ping": PING_KEYS, "script": SCRIPT_KEYS, "privacy": PRIVACY_KEYS}
    tables["downloads"] = DOWNLOADS_KEYS
    for table, keys in tables.items():
        assert sorted(data[table]) == sorted(keys), table
