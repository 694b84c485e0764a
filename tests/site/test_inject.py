"""Injection adds the script and ping= attributes and keeps every other byte of every page."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import html5lib
import pytest
from files import write
from html_strategies import PAGE, PROPERTY, html5lib_agrees
from hypothesis import assume, given
from hypothesis import strategies as st

from sitebeacon.cli import main
from sitebeacon.config import Config
from sitebeacon.errors import SitebeaconError
from sitebeacon.site.generate import build_module
from sitebeacon.site.hosts import own_host_keys
from sitebeacon.site.inject import (
    Edit,
    InjectReport,
    PageSkipped,
    PingManifest,
    apply_edits,
    csp_hash,
    external_script_tag,
    find_pages,
    inject_page,
    inject_site,
    inline_script_tag,
    link_kind,
    plan_page,
    script_text,
    write_atomic,
)

JS = "(function(){var a='x';window.sb=a})()"
TAG = inline_script_tag(JS)
PING = b' ping="/collect"'
XHTML = "{http://www.w3.org/1999/xhtml}"


def without(result: bytes, piece: bytes) -> bytes:
    return result.replace(piece, b"")


# --- where the script goes, byte for byte -------------------------------------------------


def test_script_goes_before_the_real_end_of_the_head() -> None:
    page = b"<!DOCTYPE html>\n<html><head><title>a</head></title>\n</head><body></body></html>\n"
    assert inject_page(page, TAG) == page.replace(b"\n</head>", b"\n" + TAG + b"</head>")


def test_every_original_byte_is_kept() -> None:
    page = (
        b"\xef\xbb\xbf<!DOCTYPE HTML>\r\n<HTML LANG=en>\r\n<HEAD>\r\n<META CHARSET=utf-8>\r\n"
        b"<TITLE>T\xc3\xa9</TITLE>\r\n<LINK REL=stylesheet HREF=a.css >\r\n</HEAD>\r\n"
        b"<BODY><A HREF=HTTP://X.TEST/ CLASS=x>x</A></BODY></HTML>"
    )
    result = inject_page(page, TAG, "/collect", "outbound")
    assert result == page.replace(b"\r\n</HEAD>", b"\r\n" + TAG + b"</HEAD>").replace(
        b"<A HREF", b"<A" + PING + b" HREF"
    )


@pytest.mark.parametrize("encoding", ["latin-1", "windows-1252", "shift_jis", "euc-jp", "gbk"])
def test_legacy_encodings_are_kept(encoding: str) -> None:
    text = (
        f'<html><head><meta charset="{encoding}"><title>caf\u00e9 \u2019 \u65e5\u672c</title>'
        '</head><body><a href="https://x.test/\u00e9">\u00e9\u65e5</a></body></html>'
    )
    page = text.encode(encoding, "ignore")
    result = inject_page(page, TAG, "/collect", "outbound")
    assert without(without(result, TAG), PING) == page
    assert result.index(TAG) == page.index(b"</head>")
    assert result.decode(encoding).count("ping=") == 1


def test_shift_jis_trail_bytes_do_not_confuse_the_scanner() -> None:
    # 0x5c (backslash) and ASCII letters occur as second bytes of Shift_JIS characters.
    page = "<head><title>\u8868\u30bd</title></head><a href='/\u8868'>".encode("shift_jis")
    assert b"\\" in page
    result = inject_page(page, TAG, "/collect", "all")
    assert without(without(result, TAG), PING) == page
    assert result.count(PING) == 1


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_pages_are_decoded_and_encoded_back(codec: str) -> None:
    bom = "\ufeff".encode(codec)
    text = "<html><head><title>\U0001f600 \u65e5</title></head><body><a href=//x.test>x</a>"
    page = bom + text.encode(codec)
    result = inject_page(page, TAG, "/collect", "outbound")
    assert result.startswith(bom)
    decoded = result[2:].decode(codec)
    assert decoded == text.replace("</head>", TAG.decode() + "</head>").replace(
        "<a href", "<a" + PING.decode() + " href"
    )
    assert inject_page(result, TAG, "/collect", "outbound") is result


def test_utf16_odd_last_byte_and_lone_surrogates_are_kept() -> None:
    page = b"\xff\xfe" + "<head></head>".encode("utf-16-le") + b"\x00\xd8" + b"!"
    result = inject_page(page, TAG)
    assert result.endswith(b"\x00\xd8!")
    assert result.replace(TAG.decode().encode("utf-16-le"), b"") == page


def test_crlf_pages_get_crlf_in_a_multiline_script() -> None:
    tag = inline_script_tag("a()\nb()")
    page = b"<head>\r\n</head>\r\n"
    result = inject_page(page, tag)
    assert result == b"<head>\r\n<script data-sitebeacon>a()\r\nb()</script></head>\r\n"
    assert inject_page(result, tag) is result
    assert inject_page(b"<head>\n</head>", tag).count(b"\r") == 0


@pytest.mark.parametrize(
    ("page", "at"),
    [
        (b"<html><head></head><body>", b"<html><head>|</head><body>"),
        (b"<html><title>x</title><body>", b"<html><title>x</title>|<body>"),
        (b"<html lang=en><p>x", b"<html lang=en>|<p>x"),
        (b"<!DOCTYPE html>\n<p>x", b"<!DOCTYPE html>\n|<p>x"),
        (b"\xef\xbb\xbf<!doctype html><p>x", b"\xef\xbb\xbf<!doctype html>|<p>x"),
        (b"\xef\xbb\xbfhello", b"\xef\xbb\xbf|hello"),
        (b"<!-- generator --><p>x", b"<!-- generator -->|<p>x"),
    ],
)
def test_fallbacks_never_go_before_the_bom_or_doctype(page: bytes, at: bytes) -> None:
    assert inject_page(page, TAG) == at.replace(b"|", TAG)


def test_doctype_stays_first_so_the_page_stays_in_standards_mode() -> None:
    page = b"<!DOCTYPE html><p>x"
    parser = html5lib.HTMLParser()
    parser.parse(inject_page(page, TAG).decode())
    assert parser.compatMode == "no quirks"


# --- ping= ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("href", "kind"),
    [
        (b"http://x.test/", "outbound"),
        (b"https://x.test/a?b#c", "outbound"),
        (b"HTTPS://X.TEST", "outbound"),
        (b"//x.test/p", "outbound"),
        (b"  https://x.test  ", "outbound"),
        (b"\n\thttps://x.test", "outbound"),
        (b"ht\ttps://x.test", "outbound"),
        (b"https:\\\\x.test", "outbound"),
        (b"\\\\x.test", "outbound"),
        (b"/\\x.test", "outbound"),
        (b"&#104;ttps://x.test", "outbound"),
        (b"https&colon;//x.test", "outbound"),
        (b"&#x2F;&#x2F;x.test", "outbound"),
        (b"/path/", "local"),
        (b"/", "local"),
        (b"page.html", "local"),
        (b"../up", "local"),
        (b"?q=1", "local"),
        (b"", "local"),
        (b"http:relative", "local"),
        (b"https/x", "local"),
        (b"/&#47;x.test", "outbound"),
        (b"#top", "none"),
        (b" #top", "none"),
        (b"mailto:me@x.test", "none"),
        (b"MAILTO:me@x.test", "none"),
        (b"tel:+1", "none"),
        (b"javascript:void(0)", "none"),
        (b" JavaScript:x", "none"),
        (b"java\nscript:x", "none"),
        (b"&#106;avascript:x", "none"),
        (b"data:text/html,x", "none"),
        (b"ftp://x.test", "none"),
        (None, "none"),
    ],
)
def test_link_kind(href: bytes | None, kind: str) -> None:
    assert link_kind(href) == kind


LINKS = (
    b"<body><a href=https://x.test/>1</a><a href='/local'>2</a><a href=#f>3</a>"
    b"<a href=mailto:a@b>4</a><a>5</a><a href=//x.test PING=/own>6</a><a href=?q>7</a>"
    b'<a\nhref="http://y.test"/>8</a><!-- <a href=http://z.test> --><abbr href=http://x>'
    b"<script>'<a href=http://s.test>'</script><svg><a href=http://v.test></a></svg></body>"
)


def test_outbound_mode_pings_only_links_to_other_origins() -> None:
    result = inject_page(LINKS, TAG, "/collect", "outbound")
    assert result.count(PING) == 2
    assert b"<a" + PING + b" href=https://x.test/>" in result
    assert b"<a" + PING + b'\nhref="http://y.test"/>' in result
    assert without(without(result, PING), TAG) == LINKS


def test_all_mode_also_pings_same_site_links() -> None:
    result = inject_page(LINKS, TAG, "/collect", "all")
    pinged = re.findall(rb"<a ping=\"/collect\"[^>]*>", result)
    assert pinged == [
        b'<a ping="/collect" href=https://x.test/>',
        b"<a ping=\"/collect\" href='/local'>",
        b'<a ping="/collect" href=?q>',
        b'<a ping="/collect"\nhref="http://y.test"/>',
    ]


def test_ping_endpoint_is_attribute_escaped() -> None:
    result = inject_page(b"<a href=//x>", TAG, "https://r.test/c?a=1&b=2", "outbound")
    assert b'<a ping="https://r.test/c?a=1&amp;b=2" href=//x>' in result


# --- idempotency and updates -----------------------------------------------------------------


def test_second_run_changes_nothing() -> None:
    once = inject_page(LINKS, TAG, "/collect", "all")
    assert inject_page(once, TAG, "/collect", "all") is once


def test_changed_config_replaces_only_the_script_element() -> None:
    page = b"<head><title>x</title>\n</head><body>x</body>"
    old = inject_page(page, TAG)
    new_tag = inline_script_tag("other()")
    updated = inject_page(old, new_tag)
    assert updated == page.replace(b"\n</head>", b"\n" + new_tag + b"</head>")
    assert plan_page(old, new_tag) == [Edit(old.index(TAG), old.index(TAG) + len(TAG), new_tag)]


def test_a_moved_script_is_updated_where_it_is_and_extra_copies_go() -> None:
    page = b"<head></head><body><p>" + TAG + b"</p>" + TAG + b"</body>"
    new_tag = inline_script_tag("other()")
    assert inject_page(page, new_tag) == b"<head></head><body><p>" + new_tag + b"</p></body>"


def test_an_unclosed_marked_script_makes_the_page_skipped() -> None:
    with pytest.raises(PageSkipped):
        inject_page(b"<head><script data-sitebeacon>x()", TAG)


def test_inline_script_text_is_safe_in_any_page() -> None:
    text = script_text("a('</script><!--\u00e9\U0001f600');\r\nb()")
    assert text == "a('<\\/script><\\!--\\u00e9\\ud83d\\ude00');\nb()"
    assert text.isascii()


# --- hypothesis: arbitrary HTML-ish pages ------------------------------------------------------

SLOW = PROPERTY


def strip_edits(result: bytes, edits: list[Edit]) -> bytes:
    """Undo pure insertions by position (independently of apply_edits' bookkeeping)."""
    out = result
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        shift = sum(len(e.data) for e in edits if e.start < edit.start)
        at = edit.start + shift
        assert out[at : at + len(edit.data)] == edit.data
        out = out[:at] + out[at + len(edit.data) :]
    return out


@SLOW
@given(PAGE, st.sampled_from(["none", "outbound", "all"]))
def test_injection_only_inserts_and_is_idempotent(text: str, mode: str) -> None:
    page = text.encode("utf-8")
    edits = plan_page(page, TAG, "/collect", mode)
    assert all(edit.start == edit.end for edit in edits)
    assert [edit.data for edit in edits].count(TAG) == 1
    assert {edit.data for edit in edits} <= {TAG, PING}
    result = inject_page(page, TAG, "/collect", mode)
    assert result == apply_edits(page, edits)
    assert strip_edits(result, edits) == page
    assert inject_page(result, TAG, "/collect", mode) is result


def parse(text: str) -> tuple[ET.Element, str]:
    parser = html5lib.HTMLParser(namespaceHTMLElements=True)
    root = parser.parse(text, scripting=True)
    return root, parser.compatMode


ENDPOINT = "/sb-endpoint"


@SLOW
@given(PAGE, st.sampled_from(["outbound", "all"]))
def test_a_spec_parser_sees_one_script_and_the_right_pings(text: str, mode: str) -> None:
    """html5lib follows the WHATWG algorithm; it must agree with the byte-level scanner."""
    assume(html5lib_agrees(text))
    result = inject_page(text.encode("utf-8"), TAG, ENDPOINT, mode).decode("utf-8")
    root, quirks = parse(result)
    assert quirks == parse(text)[1]
    marked = [el for el in root.iter(XHTML + "script") if "data-sitebeacon" in el.attrib]
    assert len(marked) == 1
    assert marked[0].text == JS
    wanted = {"outbound"} if mode == "outbound" else {"outbound", "local"}
    for link in root.iter(XHTML + "a"):
        href, ping = link.get("href"), link.get("ping")
        kind = "none" if href is None else link_kind(href.replace("&", "&amp;").encode())
        own_ping = ping is not None and ping != ENDPOINT
        assert (ping == ENDPOINT) == (kind in wanted and not own_ping), (href, ping)


# --- the site --------------------------------------------------------------------------------


def make_site(root: Path) -> dict[str, bytes]:
    pages = {
        "index.html": b"<!DOCTYPE html><html><head><title>i</title></head><body>"
        b"<a href=https://x.test>x</a></body></html>",
        "blog/post/index.html": b"<!doctype html>\r\n<head>\r\n</head>\r\n<p>post",
        "about.HTM": b"<p>about",
        "notes.txt": b"<head></head>",
        "_sitebeacon/old.html": b"<head></head>",
    }
    for name, data in pages.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return pages


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_inject_site_inline(tmp_path: Path) -> None:
    make_site(tmp_path)
    js = build_module(Config())
    report = inject_site(tmp_path, Config(), js)
    assert (report.pages_seen, report.pages_changed, report.pages_unchanged) == (3, 3, 0)
    lines = report.summary_lines()
    assert lines[0].startswith("injected 3 of 3 pages")
    tag = inline_script_tag(js)
    for name in ("index.html", "blog/post/index.html", "about.HTM"):
        assert (tmp_path / name).read_bytes().count(tag) == 1
    assert (tmp_path / "notes.txt").read_bytes() == b"<head></head>"
    assert (tmp_path / "_sitebeacon/old.html").read_bytes() == b"<head></head>"
    # The CSP line holds the hash of exactly what sits between <script ...> and </script>.
    content = tag[len(b"<script data-sitebeacon>") : -len(b"</script>")]
    digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
    assert f"Content-Security-Policy: script-src 'sha256-{digest}'" in lines
    assert csp_hash(js) == f"sha256-{digest}"

    before = snapshot(tmp_path)
    again = inject_site(tmp_path, Config(), js)
    assert (again.pages_changed, again.pages_unchanged) == (0, 3)
    assert snapshot(tmp_path) == before  # not even rewritten


def test_inject_site_external(tmp_path: Path) -> None:
    make_site(tmp_path)
    stale = tmp_path / "_sitebeacon" / "sb.0123456789abcdef.js"
    stale.write_text("old")
    config = Config(script_mode="external", ping_links="outbound")
    report = inject_site(tmp_path, config, build_module(config))
    js = build_module(config).encode()
    (script,) = sorted((tmp_path / "_sitebeacon").glob("sb.*.js"))
    assert script.read_bytes() == js
    assert script.name == f"sb.{hashlib.sha256(js).hexdigest()[:16]}.js"
    integrity = "sha384-" + base64.b64encode(hashlib.sha384(js).digest()).decode()
    assert f'script file: {script} integrity="{integrity}"' in report.summary_lines()
    nested = (tmp_path / "blog/post/index.html").read_bytes()
    src = f"../../_sitebeacon/{script.name}"
    assert external_script_tag(src, integrity) in nested
    assert nested.startswith(b"<!doctype html>\r\n<head>\r\n<script data-sitebeacon src=")
    top = (tmp_path / "index.html").read_bytes()
    assert f'src="_sitebeacon/{script.name}" integrity="{integrity}"'.encode() in top
    assert b'<a ping="/collect" href=https://x.test>' in top
    assert report.links_pinged == 1

    # A config change: a new file, pages updated in place, the old file removed.
    other = Config(script_mode="external", endpoint="/other")
    inject_site(tmp_path, other, build_module(other))
    (new_script,) = sorted((tmp_path / "_sitebeacon").glob("sb.*.js"))
    assert new_script != script
    assert (tmp_path / "blog/post/index.html").read_bytes().count(b"data-sitebeacon") == 1
    assert new_script.name.encode() in (tmp_path / "index.html").read_bytes()


def test_base_href_pages_are_reported_in_external_mode(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_bytes(b"<head><base href=/x/></head>")
    report = inject_site(tmp_path, Config(script_mode="external"), JS)
    assert report.pages_with_base == ["a.html"]
    assert any("<base href>" in line for line in report.summary_lines())


def test_missing_or_file_site_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SitebeaconError, match="no such directory"):
        inject_site(tmp_path / "nope", Config(), JS)
    (tmp_path / "f").write_text("x")
    with pytest.raises(SitebeaconError, match="not a directory"):
        inject_site(tmp_path / "f", Config(), JS)


def test_permissions_are_kept_and_stale_temp_files_removed(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_bytes(b"<head></head>")
    page.chmod(0o640)
    leftover = tmp_path / f".p.html.999{'.sitebeacon-tmp'}"
    leftover.write_bytes(b"half")
    inject_site(tmp_path, Config(), JS)
    assert page.stat().st_mode & 0o777 == 0o640
    assert not leftover.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.html"]


def test_symlinked_pages_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "real.html").write_bytes(b"<head></head>")
    (tmp_path / "link.html").symlink_to(tmp_path / "real.html")
    assert [Path(p).name for p in find_pages(tmp_path)] == ["real.html"]
    inject_site(tmp_path, Config(), JS)
    assert (tmp_path / "link.html").is_symlink()


def test_write_atomic_cleans_up_when_the_write_fails(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "p.html"
    with pytest.raises(SitebeaconError, match="cannot write"):
        write_atomic(target, b"x")  # the directory does not exist
    assert not (tmp_path / "sub").exists()


def test_a_failed_write_leaves_no_half_page_and_no_temp_file(tmp_path: Path) -> None:
    """A real failure mid-write: the file size limit (RLIMIT_FSIZE) stops the third page."""
    site = tmp_path / "site"
    site.mkdir()
    small = b"<head></head>" + b"x" * 1000
    big = b"<head></head>" + b"y" * 200_000  # over the limit once the script is added
    originals = {"a.html": small, "b.html": small, "c.html": big, "d.html": small}
    for name, data in originals.items():
        (site / name).write_bytes(data)
    program = textwrap.dedent(
        f"""
        import resource, signal, sys
        from pathlib import Path
        from sitebeacon.config import Config
        from sitebeacon.errors import SitebeaconError
        from sitebeacon.site.inject import inject_site
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))
        try:
            inject_site(Path({str(site)!r}), Config(), {JS!r}, workers=1)
        except SitebeaconError as error:
            print(error)
            sys.exit(2)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "c.html: cannot write: File too large" in done.stdout
    assert sorted(os.listdir(site)) == sorted(originals)  # no temporary file left
    assert (site / "c.html").read_bytes() == big  # untouched, not half-written
    assert (site / "a.html").read_bytes() == inject_page(small, TAG)
    assert (site / "d.html").read_bytes() == small  # the run stopped at the failure


def test_a_process_pool_gives_the_same_result(tmp_path: Path) -> None:
    pages = {f"d{i % 3}/p{i}.html": f"<head></head><a href=//x/{i}>".encode() for i in range(12)}
    for sub in ("one", "two"):
        for name, data in pages.items():
            (tmp_path / sub / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / sub / name).write_bytes(data)
    config = Config(ping_links="outbound", script_mode="external")
    one = inject_site(tmp_path / "one", config, JS, workers=1)
    two = inject_site(tmp_path / "two", config, JS, workers=2)
    assert (
        (one.pages_changed, one.links_pinged) == (two.pages_changed, two.links_pinged) == (12, 12)
    )
    for name in pages:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


# --- the command ----------------------------------------------------------------------------


def test_cli_inject_on_a_missing_dir_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["inject", str(tmp_path / "missing")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"sitebeacon: {tmp_path / 'missing'}: no such directory\n"


@pytest.fixture
def cli_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """make_site's pages in tmp_path/site, run from tmp_path (where sitebeacon.toml is read)."""
    site = tmp_path / "site"
    site.mkdir()
    make_site(site)
    monkeypatch.chdir(tmp_path)
    return site


def test_cli_bad_config_exits_2_and_writes_nothing(
    cli_site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = cli_site
    before = snapshot(site)
    (site.parent / "sitebeacon.toml").write_text('endpoint = "/c"\n[ping]\nlinkz = "all"\n')
    assert main(["inject", str(site)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "ping.linkz" in err
    assert snapshot(site) == before


def test_cli_inject_prints_the_summary(cli_site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = cli_site
    assert main(["inject", str(site)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"injected 3 of 3 pages in {site} (0 already up to date)"
    assert out[-1].startswith("Content-Security-Policy: script-src 'sha256-")


# --- the site's own hosts, <area>, and ping= of earlier configurations --------------------

OWN = (
    b"<body><a href=https://example.com/a>own</a><a href=//WWW.Example.com:443/b>www</a>"
    b"<a href=http://www.example.com./c>dot</a><a href=https://example.com:8080/>port</a>"
    b"<a href=https://u@example.com/>user</a><a href=https://ex%61mple.com/>pct</a>"
    b"<a href=https://example.com.evil.test/>evil</a><a href=https://other.test/>other</a>"
    b"<a href=https://sub.example.com/>sub</a></body>"
)


@pytest.mark.parametrize(
    ("href", "hosts", "kind"),
    [
        (b"https://example.com/x", ("example.com",), "local"),
        (b"//www.example.com", ("example.com",), "local"),
        (b"https://example.com", ("www.example.com",), "local"),
        (b"http://EXAMPLE.com:80/", ("example.com",), "local"),
        (b"https://example.com:8080/", ("example.com",), "outbound"),
        (b"https://example.com:8080/", ("example.com:8080",), "local"),
        (b"https://sub.example.com/", ("example.com",), "outbound"),
        (b"https://example.com/", (), "outbound"),
        (b"https:\\\\example.com\\x", ("example.com",), "local"),
        (b"https://a@example.com/", ("example.com",), "local"),
    ],
)
def test_links_to_the_sites_own_hosts_are_local(
    href: bytes, hosts: tuple[str, ...], kind: str
) -> None:
    assert link_kind(href, own_host_keys(hosts)) == kind


@pytest.mark.parametrize("mode", ["outbound", "all"])
def test_own_hosts_are_not_pinged_as_outbound(mode: str) -> None:
    keys = own_host_keys(("example.com",))
    result = inject_page(OWN, TAG, "/collect", mode, own_hosts=keys)
    pinged = re.findall(rb"<a ping=\"/collect\" href=([^>]*)>", result)
    outbound = [
        b"https://example.com:8080/",
        b"https://example.com.evil.test/",
        b"https://other.test/",
        b"https://sub.example.com/",
    ]
    if mode == "outbound":
        assert pinged == outbound
    else:
        assert len(pinged) == 9
    # The fast path in C and the classification in Python agree on every link.
    slow = inject_page(OWN.replace(b"href=", b"href= "), TAG, "/collect", mode, own_hosts=keys)
    assert slow.count(PING) == len(pinged)


def test_area_links_get_ping_like_a_links() -> None:
    page = (
        b'<head></head><body><map name=m><area shape=rect href="https://x.test/" alt=x>'
        b"<AREA href=/local><area nohref></map><svg><area href=https://s.test/></svg></body>"
    )
    result = inject_page(page, TAG, "/collect", "outbound")
    assert b'<area ping="/collect" shape=rect href="https://x.test/" alt=x>' in result
    assert result.count(PING) == 1
    result = inject_page(page, TAG, "/collect", "all")
    assert b"<AREA" + PING + b" href=/local>" in result
    assert result.count(PING) == 2
    assert inject_page(result, TAG, "/collect", "all") is result


def inject_with(site: Path, **settings: object) -> InjectReport:
    config = Config(**settings)  # type: ignore[arg-type]
    return inject_site(site, config, JS, workers=1)


def pings_in(site: Path) -> dict[str, list[bytes]]:
    found = {}
    for path in sorted(site.glob("*.html")):
        found[path.name] = re.findall(rb"<a[^>]*>", path.read_bytes())
    return found


AUTHOR = b'<a ping="/collect" href=https://author.test/>a</a><a href=/x ping="/old">b</a>'


def test_a_config_change_updates_or_removes_only_our_pings(tmp_path: Path) -> None:
    site = tmp_path / "site"
    page = b"<head></head><body>" + LINKS + AUTHOR + b"</body>"
    write(site / "p.html", page)

    inject_with(site, endpoint="/old", ping_links="outbound")
    first = (site / "p.html").read_bytes()
    assert first.count(b' ping="/old"') == 2 + 1  # two outbound links, plus the author's
    assert json.loads((site / "_sitebeacon" / "pings.json").read_bytes())["endpoints"] == ["/old"]

    report = inject_with(site, endpoint="https://r.test/c", ping_links="all")
    second = (site / "p.html").read_bytes()
    assert second.count(b' ping="/old"') == 1  # the author's, untouched
    assert second.count(b' ping="https://r.test/c"') == 4
    assert report.links_pinged == 4 and report.pings_removed == 0
    assert inject_with(site, endpoint="https://r.test/c", ping_links="all").pages_changed == 0

    report = inject_with(site, endpoint="https://r.test/c", ping_links="outbound")
    assert report.pings_removed == 2  # the two same-site links
    assert (site / "p.html").read_bytes().count(b' ping="https://r.test/c"') == 2

    report = inject_with(site, endpoint="/collect", ping_links="none")
    assert report.pings_removed == 2
    assert (site / "p.html").read_bytes() == inject_page(page, TAG)  # back to no ping of ours
    assert not (site / "_sitebeacon").exists()
    assert inject_with(site).pages_changed == 0


def test_a_new_own_host_removes_its_outbound_pings(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write(site / "p.html", b"<head></head>" + OWN)
    assert inject_with(site, ping_links="outbound").links_pinged == 9
    report = inject_with(site, ping_links="outbound", hosts=("www.example.com",))
    assert report.pings_removed == 5
    expected = inject_page(
        b"<head></head>" + OWN, TAG, "/collect", "outbound", own_hosts=("example.com",)
    )
    assert (site / "p.html").read_bytes() == expected


def test_a_run_killed_after_the_manifest_still_finds_every_old_ping(tmp_path: Path) -> None:
    """The manifest names the new endpoint before any page changes: pages still carrying the
    old attribute and pages already carrying the new one are both fixed by the next run."""
    site = tmp_path / "site"
    for name in ("a", "b"):
        write(site / f"{name}.html", b"<head></head><body>" + LINKS + b"</body>")
    inject_with(site, endpoint="/old", ping_links="outbound")
    manifest = PingManifest(site / "_sitebeacon" / "pings.json")
    pings = manifest.begin(Config(endpoint="/new", ping_links="outbound"))
    # As if killed after the first page: a.html carries /new, b.html still /old.
    a = site / "a.html"
    a.write_bytes(
        inject_page(a.read_bytes(), TAG, "/new", "outbound", earlier=pings.earlier, rescan=True)
    )
    assert json.loads(manifest.path.read_bytes())["complete"] is False
    inject_with(site, endpoint="/other", ping_links="all")
    for name in ("a", "b"):
        page = (site / f"{name}.html").read_bytes()
        assert b"/old" not in page and b"/new" not in page
        assert page.count(b' ping="/other"') == 4
