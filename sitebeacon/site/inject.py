"""Add the client module to every page of a built site, keeping every original byte.

Pages come from any generator (Hugo, Jekyll, Eleventy, Astro...), in any encoding, with any
formatting; re-serialising them through a parser would change bytes the author never asked us
to touch. So the pure core (`plan_page` / `inject_page`) only computes insertions at offsets
found by `sitebeacon.htmlscan`, and `inject_site` writes each changed page atomically.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import hashlib
import html
import json
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from sitebeacon.config import Config
from sitebeacon.errors import SitebeaconError
from sitebeacon.files import TEMP_SUFFIX, write_atomic
from sitebeacon.site.hosts import is_own_authority, own_host_keys
from sitebeacon.site.htmlscan import LinkTag, PageScan, scan_page

SCRIPT_DIR = "_sitebeacon"
MANIFEST_NAME = "pings.json"
PAGE_SUFFIXES = (".html", ".htm")
# Below this many pages a process pool costs more than it saves (see bench/inject.py).
PARALLEL_MIN_PAGES = 2000

UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}

_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_C0_OR_SPACE = "".join(map(chr, range(0x21)))
_SCRIPT_CLOSE = re.compile(r"</(script)", re.IGNORECASE)
_AUTHORITY = re.compile(r"[^/?#]*")


class PageSkipped(Exception):
    """A page that injection must leave alone (the reason is reported, the run goes on)."""


class Edit(NamedTuple):
    """Replace page[start:end] with `data`; start == end for a pure insertion."""

    start: int
    end: int
    data: bytes


# --- what gets inserted ---------------------------------------------------------------------


def script_text(js: str) -> str:
    """The module as it may sit inside an inline <script>: ASCII only, LF only, no `</script`.

    ASCII so that it means the same in a windows-1252 or Shift_JIS page; LF because browsers
    turn CR into LF before tokenizing (so the CSP hash is computed on what they see).
    """
    js = js.replace("\r\n", "\n").replace("\r", "\n")
    js = _SCRIPT_CLOSE.sub(r"<\\/\1", js).replace("<!--", "<\\!--")
    if not js.isascii():
        js = "".join(c if c.isascii() else _js_escape(c) for c in js)
    return js


def _js_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def inline_script_tag(js: str) -> bytes:
    """The marked inline element for a module."""
    return b"<script data-sitebeacon>" + script_text(js).encode("ascii") + b"</script>"


def external_script_tag(src: str, integrity: str) -> bytes:
    """The marked element that loads the module file (deferred, so it never blocks parsing)."""
    src = html.escape(src, quote=True)
    return f'<script data-sitebeacon src="{src}" integrity="{integrity}" defer></script>'.encode(
        "ascii", "xmlcharrefreplace"
    )


def csp_hash(js: str) -> str:
    """The CSP `script-src` source for the inline element of `js`."""
    digest = hashlib.sha256(script_text(js).encode("ascii")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def sri_hash(data: bytes) -> str:
    """The `integrity=` value for a file's bytes."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


@lru_cache(maxsize=64)
def ping_attribute(endpoint: str) -> bytes:
    """` ping="<endpoint>"`, inserted right after `<a`."""
    value = html.escape(endpoint, quote=True).encode("ascii", "xmlcharrefreplace")
    return b' ping="' + value + b'"'


# --- which links get ping= -----------------------------------------------------------------


@lru_cache(maxsize=8192)  # nav and footer links repeat on every page
def link_kind(href: bytes | None, own_hosts: tuple[str, ...] = ()) -> str:
    """Classify an href as the browser would resolve it: "outbound", "local" or "none".

    An http(s) link to one of `own_hosts` (keys from `sitebeacon.site.hosts.own_host_keys`,
    the site's own hosts) is "local".

    "none": no href, fragment-only, or a scheme other than http(s) (mailto:, tel:,
    javascript:, data:...). Character references are decoded first (`&#106;avascript:` is
    javascript:), leading and trailing spaces and controls are stripped and tabs or newlines
    removed, as the URL parser does; backslashes count as slashes for http(s).
    """
    if href is None:
        return "none"
    url = href.decode("latin-1")
    if "&" in url:
        url = html.unescape(url)
    url = url.strip(_C0_OR_SPACE)
    if "\t" in url or "\n" in url or "\r" in url:
        url = _TAB_OR_NEWLINE.sub("", url)
    if url.startswith("#"):
        return "none"
    scheme = _SCHEME.match(url)
    if scheme is not None:
        if scheme.group(1).lower() not in ("http", "https"):
            return "none"
        url = url[scheme.end() :]
        # `http:path` without slashes is relative to a page of the same scheme.
    url = url.replace("\\", "/")
    if not url.startswith("//"):
        return "local"
    authority = _AUTHORITY.match(url, 2)
    assert authority is not None  # the pattern can match the empty string
    return "local" if is_own_authority(authority.group(), own_hosts) else "outbound"


def _wants_ping(link: LinkTag, ping_links: str, own_hosts: tuple[str, ...] = ()) -> bool:
    """Whether `link` qualifies for ping= under `ping_links` (whatever ping it already has)."""
    if ping_links == "none":
        return False
    kind = link_kind(link.href, own_hosts)
    return kind == "outbound" or (kind == "local" and ping_links == "all")


# --- the pure core -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pings:
    """What to do with ping= attributes on a page.

    `endpoint` None: no link gets one. `earlier`: endpoints whose ping= attributes earlier runs
    may have added (from the manifest, see `inject_site`); with `rescan`, every link is looked at
    and such an attribute is updated or removed. An attribute counts as ours only when it is
    exactly what `ping_attribute` inserts, right after the tag name, so a `ping` the author
    wrote is never touched.
    """

    endpoint: str | None = None
    links: str = "none"
    own_hosts: tuple[str, ...] = ()
    earlier: tuple[str, ...] = ()
    rescan: bool = False

    def scan_mode(self) -> str:
        if self.rescan and self.earlier:
            return "every"
        return "none" if self.endpoint is None else self.links


def plan_page(
    page: bytes,
    script_tag: bytes,
    ping_endpoint: str | None = None,
    ping_links: str = "none",
    *,
    start: int = 0,
    own_hosts: tuple[str, ...] = (),
    earlier: tuple[str, ...] = (),
    rescan: bool = False,
) -> list[Edit]:
    """The edits that inject `script_tag` (and ping= attributes) into an ASCII-compatible page.

    Empty when the page is already up to date. Only a marked script element that differs from
    `script_tag` and ping= attributes an earlier run added (see `Pings`) are ever replaced or
    removed; everything else is a pure insertion. Raises PageSkipped for a page whose marked
    script runs to the end of the file (replacing it would eat the page).
    """
    pings = _pings(ping_endpoint, ping_links, own_hosts, earlier, rescan)
    scan = scan_page(page, links=pings.scan_mode(), start=start, own_hosts=pings.own_hosts)
    edits = _script_edits(page, scan, script_tag) + _ping_edits(page, scan, pings)[0]
    edits.sort(key=lambda edit: (edit.start, edit.end))
    return edits


def _pings(
    endpoint: str | None,
    links: str,
    own_hosts: tuple[str, ...],
    earlier: tuple[str, ...],
    rescan: bool,
) -> Pings:
    if endpoint is None or links == "none":
        endpoint, links = None, "none"
    return Pings(endpoint, links, own_hosts, earlier, rescan)


def _script_edits(page: bytes, scan: PageScan, script_tag: bytes) -> list[Edit]:
    edits: list[Edit] = []
    if any(not script.terminated for script in scan.scripts):
        raise PageSkipped("its sitebeacon script element is not closed")
    if not scan.scripts:
        edits.append(Edit(scan.insert_at, scan.insert_at, script_tag))
    else:
        first, *extra = scan.scripts
        if page[first.start : first.end] != script_tag:
            edits.append(Edit(first.start, first.end, script_tag))
        # More than one marked element (pasted by hand?): keep exactly one.
        edits.extend(Edit(script.start, script.end, b"") for script in extra)
    return edits


def _ping_edits(page: bytes, scan: PageScan, pings: Pings) -> tuple[list[Edit], int, int]:
    """The ping= edits of a page scanned with `pings.scan_mode()`, how many links get the
    current attribute (added or updated), and how many of ours are removed."""
    attribute = ping_attribute(pings.endpoint) if pings.endpoint is not None else None
    if pings.scan_mode() != "every" or not pings.earlier:
        if attribute is None:
            return [], 0, 0
        at = _ping_offsets(scan, pings)
        return [Edit(offset, offset, attribute) for offset in at], len(at), 0
    ours = [ping_attribute(endpoint) for endpoint in pings.earlier]
    edits: list[Edit] = []
    added = removed = 0
    for link in scan.links:
        start = link.name_end
        wants = attribute is not None and _wants_ping(link, pings.links, pings.own_hosts)
        mine = (
            next((old for old in ours if page.startswith(old, start)), None)
            if link.has_ping
            else None
        )
        if mine is not None:
            if not wants:
                edits.append(Edit(start, start + len(mine), b""))
                removed += 1
            elif mine != attribute:
                assert attribute is not None
                edits.append(Edit(start, start + len(mine), attribute))
                added += 1
        elif wants and not link.has_ping:
            assert attribute is not None
            edits.append(Edit(start, start, attribute))
            added += 1
    return edits, added, removed


def apply_edits(page: bytes, edits: Sequence[Edit]) -> bytes:
    """`page` with `edits` (sorted, not overlapping) applied."""
    if not edits:
        return page
    parts: list[bytes] = []
    pos = 0
    for edit in edits:
        parts.append(page[pos : edit.start])
        parts.append(edit.data)
        pos = edit.end
    parts.append(page[pos:])
    return b"".join(parts)


def inject_page(
    page: bytes,
    script_tag: bytes,
    ping_endpoint: str | None = None,
    ping_links: str = "none",
    *,
    own_hosts: tuple[str, ...] = (),
    earlier: tuple[str, ...] = (),
    rescan: bool = False,
) -> bytes:
    """The page with the script (and ping= attributes) added; `page` itself when up to date.

    Handles a UTF-8 byte order mark (scanning starts after it) and UTF-16 pages with a byte
    order mark (decoded, injected and encoded back with the same codec, so every original
    byte is kept). Raises PageSkipped for a page that cannot be injected safely.
    """
    pings = _pings(ping_endpoint, ping_links, own_hosts, earlier, rescan)
    return _inject(page, script_tag, pings)[0]


def _inject(page: bytes, script_tag: bytes, pings: Pings) -> tuple[bytes, int, int]:
    """inject_page, how many ping= attributes it added or updated, and how many it removed."""
    codec = UTF16_BOMS.get(page[:2])
    if codec is not None:
        return _inject_utf16(page, codec, script_tag, pings)
    if b"\n" in script_tag and b"\r\n" in page:
        script_tag = script_tag.replace(b"\n", b"\r\n")
    start = 3 if page.startswith(UTF8_BOM) else 0
    scan = scan_page(page, links=pings.scan_mode(), start=start, own_hosts=pings.own_hosts)
    script_edits = _script_edits(page, scan, script_tag)
    if pings.endpoint is None and not pings.earlier:
        return apply_edits(page, script_edits), 0, 0
    if pings.scan_mode() == "every":
        edits, added, removed = _ping_edits(page, scan, pings)
        edits += script_edits
        edits.sort(key=lambda edit: (edit.start, edit.end))
        return apply_edits(page, edits), added, removed
    if pings.endpoint is None:
        return apply_edits(page, script_edits), 0, 0
    at = _ping_offsets(scan, pings)
    attribute = ping_attribute(pings.endpoint)
    return _apply_with_pings(page, script_edits, at, attribute), len(at), 0


def _ping_offsets(scan: PageScan, pings: Pings) -> list[int]:
    """Where ping= goes: just after `<a`/`<area` of each qualifying link, in page order."""
    at = scan.certain_links
    classified = [
        link.name_end
        for link in scan.links
        if not link.has_ping and _wants_ping(link, pings.links, pings.own_hosts)
    ]
    return sorted(at + classified) if classified else at


def _apply_with_pings(page: bytes, edits: list[Edit], at: list[int], attribute: bytes) -> bytes:
    """apply_edits(page, edits + a ping= insertion at each offset in `at`), in the same order
    (at equal offsets `edits` go first).

    A link-heavy page has a hundred insertions or more: it is split at the offsets and joined
    in C, without an Edit object per link.
    """
    if not at or len(edits) > 1 or (edits and edits[0].start != edits[0].end):
        merged = edits + [Edit(offset, offset, attribute) for offset in at]
        merged.sort(key=lambda edit: (edit.start, edit.end))  # stable: edits stay first
        return apply_edits(page, merged)
    pieces = [page[a:b] for a, b in zip([0, *at], [*at, len(page)], strict=True)]
    if edits:  # the usual single insertion of the script element
        insert_at, _, data = edits[0]
        index = bisect.bisect_left(at, insert_at)  # the piece that ends at or after insert_at
        cut = insert_at - (at[index - 1] if index else 0)
        pieces[index] = pieces[index][:cut] + data + pieces[index][cut:]
    return attribute.join(pieces)


def _inject_utf16(
    page: bytes, codec: str, script_tag: bytes, pings: Pings
) -> tuple[bytes, int, int]:
    body_end = len(page) - (len(page) % 2)  # an odd last byte stays as it is
    try:
        text = page[2:body_end].decode(codec, "surrogatepass")
    except UnicodeDecodeError as error:
        raise PageSkipped(f"not valid {codec.upper()}: {error.reason}") from error
    if text.encode(codec, "surrogatepass") != page[2:body_end]:
        raise PageSkipped(f"{codec.upper()} does not round-trip")
    utf8 = text.encode("utf-8", "surrogatepass")
    new, added, removed = _inject(utf8, script_tag, pings)
    if new is utf8:
        return page, 0, 0
    encoded = new.decode("utf-8", "surrogatepass").encode(codec, "surrogatepass")
    return page[:2] + encoded + page[body_end:], added, removed


# --- the site ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptPlacement:
    """How each page refers to the module: one inline element, or a file beside the pages."""

    inline_tag: bytes | None = None
    script_file: str = ""  # absolute path of the external module file
    integrity: str = ""

    def tag_for(self, page: str) -> bytes:
        if self.inline_tag is not None:
            return self.inline_tag
        src = os.path.relpath(self.script_file, os.path.dirname(page)).replace(os.sep, "/")
        return external_script_tag(src, self.integrity)


@dataclass
class InjectReport:
    """What `inject_site` did, and what the site owner must add to a Content-Security-Policy."""

    site_dir: Path
    pages_seen: int = 0
    pages_changed: int = 0
    pages_unchanged: int = 0
    links_pinged: int = 0
    pings_removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    pages_with_base: list[str] = field(default_factory=list)
    csp_source: str | None = None  # inline mode
    script_file: Path | None = None  # external mode
    integrity: str | None = None

    def summary_lines(self) -> list[str]:
        lines = [
            f"injected {self.pages_changed} of {self.pages_seen} pages in {self.site_dir}"
            f" ({self.pages_unchanged} already up to date)"
        ]
        if self.links_pinged:
            lines.append(f"added ping= to {self.links_pinged} links")
        if self.pings_removed:
            lines.append(
                f"removed {self.pings_removed} ping= attributes of an earlier configuration"
            )
        for path, reason in self.skipped[:10]:
            lines.append(f"skipped {path}: {reason}")
        if len(self.skipped) > 10:
            lines.append(f"skipped {len(self.skipped) - 10} more pages")
        if self.pages_with_base:
            lines.append(
                f"warning: {len(self.pages_with_base)} pages have <base href> (first:"
                f" {self.pages_with_base[0]}); the relative script path may not resolve there"
            )
        if self.csp_source is not None:
            lines.append(f"Content-Security-Policy: script-src '{self.csp_source}'")
        if self.script_file is not None:
            lines.append(f'script file: {self.script_file} integrity="{self.integrity}"')
        return lines


@dataclass
class _Tally:
    changed: int = 0
    unchanged: int = 0
    links_pinged: int = 0
    pings_removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    with_base: list[str] = field(default_factory=list)

    def add(self, other: _Tally) -> None:
        self.changed += other.changed
        self.unchanged += other.unchanged
        self.links_pinged += other.links_pinged
        self.pings_removed += other.pings_removed
        self.skipped.extend(other.skipped)
        self.with_base.extend(other.with_base)


@dataclass(frozen=True)
class _Job:
    placement: ScriptPlacement
    pings: Pings


def inject_site(
    site_dir: Path, config: Config, module_js: str, *, workers: int | None = None
) -> InjectReport:
    """Inject `module_js` (the module built for `config`) into every *.html / *.htm page under
    `site_dir`, and ping= attributes as `config` asks.

    The caller builds the module (`site.generate.build_module`), so the injector never runs the
    generator behind anyone's back. `workers`: processes to use (default: one per core for
    large sites). Unchanged pages are not rewritten at all.
    """
    if not site_dir.exists():
        raise SitebeaconError(f"{site_dir}: no such directory")
    if not site_dir.is_dir():
        raise SitebeaconError(f"{site_dir}: not a directory")
    report = InjectReport(site_dir)
    pages = find_pages(site_dir)
    report.pages_seen = len(pages)
    if config.script_mode == "external":
        data = module_js.encode("utf-8")
        name = f"sb.{hashlib.sha256(data).hexdigest()[:16]}.js"
        script_file = site_dir / SCRIPT_DIR / name
        try:
            script_file.parent.mkdir(exist_ok=True)
            current = script_file.read_bytes() if script_file.is_file() else None
        except OSError as error:
            raise SitebeaconError(f"{script_file}: {error.strerror or error}") from error
        if current != data:
            write_atomic(script_file, data)  # 0o644: the web server must be able to read it
        report.script_file, report.integrity = script_file, sri_hash(data)
        placement = ScriptPlacement(
            script_file=str(script_file.absolute()), integrity=report.integrity
        )
    else:
        placement = ScriptPlacement(inline_tag=inline_script_tag(module_js))
        report.csp_source = csp_hash(module_js)

    manifest = PingManifest(site_dir / SCRIPT_DIR / MANIFEST_NAME)
    pings = manifest.begin(config)
    tally = _run(_Job(placement, pings), pages, workers)
    manifest.finish(pings, complete=not tally.skipped)
    report.pages_changed, report.pages_unchanged = tally.changed, tally.unchanged
    report.links_pinged, report.pings_removed = tally.links_pinged, tally.pings_removed
    report.skipped = [(_relative(path, site_dir), why) for path, why in tally.skipped]
    if config.script_mode == "external":
        report.pages_with_base = [_relative(path, site_dir) for path in tally.with_base]
        _remove_stale_scripts(site_dir / SCRIPT_DIR, keep=report.script_file)
    return report


class PingManifest:
    """`_sitebeacon/pings.json`: which ping= attributes earlier runs added, so that a change of
    endpoint, `ping.links` or `hosts` updates or removes them (and nothing else).

    Written before any page changes, listing the old endpoints and the new one with
    `"complete": false`, and rewritten with only the new endpoint once every page is done: a run
    killed in between leaves a manifest that still names every attribute that may be in a page,
    and the next run looks at every link. With `ping.links = "none"` and nothing left to
    remove, the file is deleted (and `_sitebeacon/` with it when empty).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.earlier: tuple[str, ...] = ()
        self.settings: dict[str, object] | None = None
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as error:
            raise SitebeaconError(f"{path}: cannot read: {error}") from error
        endpoints = data.get("endpoints") if isinstance(data, dict) else None
        if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
            raise SitebeaconError(f"{path}: not a sitebeacon ping manifest (remove it?)")
        self.earlier = tuple(endpoints)
        if data.get("complete") is True and isinstance(data.get("settings"), dict):
            self.settings = data["settings"]

    @staticmethod
    def _settings(pings: Pings) -> dict[str, object]:
        return {"endpoint": pings.endpoint, "links": pings.links, "hosts": list(pings.own_hosts)}

    def begin(self, config: Config) -> Pings:
        """The Pings of this run; records its endpoint before any page changes."""
        endpoint = config.endpoint if config.ping_links != "none" else None
        pings = Pings(endpoint, config.ping_links, own_host_keys(config.hosts), self.earlier)
        rescan = bool(self.earlier) and self.settings != self._settings(pings)
        pings = Pings(pings.endpoint, pings.links, pings.own_hosts, self.earlier, rescan)
        if rescan or (endpoint is not None and self.settings is None):
            listed = self.earlier + (
                (endpoint,) if endpoint and endpoint not in self.earlier else ()
            )
            self._write(listed, self._settings(pings), complete=False)
        return pings

    def finish(self, pings: Pings, *, complete: bool) -> None:
        """Record what the pages now carry (everything, when some page was skipped)."""
        if not complete:
            return  # the manifest written by `begin` still names every possible attribute
        if pings.endpoint is None:
            if self.earlier:
                self.path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    self.path.parent.rmdir()  # only when empty
            return
        if pings.rescan or self.settings is None:
            self._write((pings.endpoint,), self._settings(pings), complete=True)

    def _write(
        self, endpoints: tuple[str, ...], settings: dict[str, object], complete: bool
    ) -> None:
        data = {"endpoints": list(endpoints), "settings": settings, "complete": complete}
        try:
            self.path.parent.mkdir(exist_ok=True)
        except OSError as error:
            raise SitebeaconError(f"{self.path.parent}: {error.strerror or error}") from error
        write_atomic(self.path, json.dumps(data, indent=1).encode() + b"\n")


def _relative(path: str, site_dir: Path) -> str:
    return os.path.relpath(path, site_dir.absolute())


def find_pages(site_dir: Path) -> list[str]:
    """Every HTML page under `site_dir` (not under `_sitebeacon/`, not symlinks), sorted.

    Also removes temporary files a killed earlier run may have left behind.
    """
    pages: list[str] = []
    pending = [str(site_dir.absolute())]
    top = True
    while pending:
        directory = pending.pop()
        with os.scandir(directory) as entries:
            listing = sorted(entries, key=lambda entry: entry.name, reverse=True)
        for entry in listing:
            name = entry.name
            if entry.is_dir(follow_symlinks=False):
                if not (top and name == SCRIPT_DIR):
                    pending.append(entry.path)
            elif not entry.is_file(follow_symlinks=False):
                continue  # symlinks, sockets...
            elif name.endswith(TEMP_SUFFIX) and name.startswith("."):
                os.unlink(entry.path)
            elif name.lower().endswith(PAGE_SUFFIXES):
                pages.append(entry.path)
        top = False
    pages.sort()
    return pages


def _run(job: _Job, pages: list[str], workers: int | None) -> _Tally:
    if workers is None:
        workers = (os.cpu_count() or 1) if len(pages) >= PARALLEL_MIN_PAGES else 1
    workers = max(1, min(workers, len(pages)))
    if workers == 1:
        return _inject_pages(job, pages)
    # Compile the scanner's patterns once, here: forked workers inherit them.
    scan_page(b"", links=job.pings.scan_mode(), own_hosts=job.pings.own_hosts)
    tally = _Tally()
    size = -(-len(pages) // (workers * 4))  # a few chunks per worker evens out slow disks
    chunks = [pages[i : i + size] for i in range(0, len(pages), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_inject_pages, job, chunk) for chunk in chunks]
        try:
            for future in futures:
                tally.add(future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return tally


def _inject_pages(job: _Job, pages: Iterable[str]) -> _Tally:
    """Inject a batch of pages (also the unit of work of a pool process)."""
    tally = _Tally()
    placement = job.placement
    external = placement.inline_tag is None
    for path in pages:
        page, mode = read_page(path)
        try:
            new, added, removed = _inject(page, placement.tag_for(path), job.pings)
        except PageSkipped as skipped:
            tally.skipped.append((path, str(skipped)))
            continue
        if external and b"<base" in page.lower() and _has_base(page):
            tally.with_base.append(path)
        if new is page or new == page:
            tally.unchanged += 1
            continue
        tally.links_pinged += added
        tally.pings_removed += removed
        write_atomic(path, new, mode)
        tally.changed += 1
    return tally


def _has_base(page: bytes) -> bool:
    start = 3 if page.startswith(UTF8_BOM) else 0
    return scan_page(page, start=start).has_base


def read_page(path: str) -> tuple[bytes, int]:
    """The bytes of `path` and its permission bits, with one open, one fstat and (nearly
    always) one read: on a large site the per-file system calls are most of the cost."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            status = os.fstat(fd)
            data = os.read(fd, status.st_size + 1)  # +1: notice a file that grew meanwhile
            if len(data) > status.st_size:
                chunks = [data]
                while chunk := os.read(fd, 1 << 20):
                    chunks.append(chunk)
                data = b"".join(chunks)
        finally:
            os.close(fd)
    except OSError as error:
        raise SitebeaconError(f"{path}: cannot read: {error.strerror or error}") from error
    return data, status.st_mode & 0o7777


def _remove_stale_scripts(directory: Path, keep: Path | None) -> None:
    """Delete module files of earlier configurations (after every page points at the new one)."""
    for old in directory.glob("sb.*.js"):
        if keep is None or old.name != keep.name:
            old.unlink(missing_ok=True)
