"""Find byte offsets in an HTML page the way a browser's tokenizer would, without parsing it.

Injection must add bytes at the right places and keep every other byte, so it cannot go through
a parser that re-serialises. It also cannot trust a plain search for `</head>` or `<a`: those
look-alikes hide in comments, scripts, raw-text elements and quoted attribute values. This module
follows the WHATWG tokenizer states that decide what is markup (data, tag, comment, bogus
comment, doctype, CDATA, RAWTEXT, RCDATA, script data with its escape states, PLAINTEXT) over
bytes, plus the few tree-construction facts that change them (foreign content in `<svg>` and
`<math>`, `<template>` nesting, `<noscript>` as raw text with scripting on).

Speed comes from letting one regular expression skip everything uninteresting (text, comments,
ordinary tags with their attributes) in C; Python only looks at the few tags that matter.

Works on any ASCII-compatible encoding (UTF-8, windows-1252, Shift_JIS, EUC-JP, GBK, Big5...):
the bytes the tokenizer cares about never occur inside a multi-byte character there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NamedTuple

_WS = rb"\t\n\f\r "  # CR counts: the input stream turns CR and CRLF into LF before tokenizing

# After a tag name: attributes (names, `=`, unquoted or quoted values) up to the closing `>`.
# Possessive quantifiers make it deterministic; the only way it fails is the end of the input
# inside the tag, which per the spec means there is no tag at all.
_ATTRS = (
    rb"(?:[\t\n\f\r /]*+[^\t\n\f\r />][^\t\n\f\r />=]*+"
    rb"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    rb"(?:\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >\"'][^\t\n\f\r >]*+|(?=>))"
    rb"|(?![\t\n\f\r ]*+=)))*+"
)
_TAG_NAME = rb"[a-zA-Z][^\t\n\f\r />]*+"
# A fast special case of a tag name and its attributes: letters and digits, then single spaces
# before `name` or `name="value"`.
_PLAIN_NAME = rb"[a-zA-Z][a-zA-Z0-9]*+"
_PLAIN_ATTRS = rb"(?: [a-zA-Z][a-zA-Z0-9_:.-]*+(?:=\"[^\"]*+\")?+)*+"

# One attribute inside a tag already known to be complete; groups: name, "value", 'value', value.
_ATTR = re.compile(
    rb"[\t\n\f\r /]*+([^\t\n\f\r />][^\t\n\f\r />=]*+)"
    rb"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    rb"(?:\"([^\"]*+)\"|'([^']*+)'|([^\t\n\f\r >\"'][^\t\n\f\r >]*+)|(?=>)))?+"
)

# The first href of an `<a>` tag, in one match (the attribute loop above, but in C); groups:
# "value", 'value', value. No match: no href at all.
_A_HREF = re.compile(
    rb"(?:[\t\n\f\r /]*+(?!(?i:href)[\t\n\f\r />=])[^\t\n\f\r />][^\t\n\f\r />=]*+"
    rb"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    rb"(?:\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >\"'][^\t\n\f\r >]*+|(?=>)))?+)*+"
    rb"[\t\n\f\r /]*+(?i:href)(?=[\t\n\f\r />=])"
    rb"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    rb"(?:\"([^\"]*+)\"|'([^']*+)'|([^\t\n\f\r >\"'][^\t\n\f\r >]*+)|(?=>)))?+"
)
_PING = re.compile(rb"(?i)ping")

# Markup that never matters and can be skipped without looking: text, complete comments
# (`<!-->` and `<!--->` included, `--!>` closes too), bogus comments (`<!x>`, `<?x>`, `</ x>`,
# and CDATA outside foreign content), `</>`, and a `<` that starts nothing.
_SKIP_COMMON = (
    rb"<!--(?:-?>|.*?--!?>)",
    rb"</>",
    rb"<(?![a-zA-Z!?/])",
    rb"<\?[^>]*+>",
    rb"</(?![a-zA-Z>])[^>]*+>",
)
_SKIP_BOGUS_DECL = (rb"<!(?!--)[^>]*+>",)  # in HTML content a CDATA section is a bogus comment
_SKIP_CDATA = (
    rb"<!\[CDATA\[.*?\]\]>",
    rb"<!(?!--|\[CDATA\[)[^>]*+>",
)  # in foreign content it is not


def _after_lt(alternatives: tuple[bytes, ...] | list[bytes]) -> bytes:
    """`<(?:a|b|...)` for alternatives that all start with `<`, in the same order.

    sre tries the alternatives of a group one by one; with the `<` taken out, each one that
    starts with a literal or a set is dismissed by its first byte, instead of matching `<` again
    and failing later (the order, and so what matches, is unchanged).
    """
    assert all(alternative.startswith(b"<") for alternative in alternatives)
    return b"<(?:" + b"|".join(alternative[1:] for alternative in alternatives) + b")"


# Start tags whose content is not markup (with scripting on, as in a browser, noscript too).
RAWTEXT = frozenset({b"style", b"xmp", b"iframe", b"noembed", b"noframes", b"noscript"})
RCDATA = frozenset({b"title", b"textarea"})
_CONTEXT_TAGS = (b"script", b"plaintext", b"svg", b"math", *RAWTEXT, *RCDATA)
# While looking for the end of the head, these also matter.
_HEAD_TAGS = (b"body", b"head", b"html", b"meta", b"base", b"template")
_HEAD_END_TAGS = (b"head", b"template")

# An HTML start tag in foreign content that closes the foreign elements (the spec's breakout list).
_BREAKOUT = frozenset(
    b"b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 h6 head hr i img "
    b"li listing menu meta nobr ol p pre ruby s small span strong strike sub sup table tt u ul "
    b"var".split()
)
_SVG_HTML_POINTS = frozenset({b"foreignobject", b"desc", b"title"})
_MATH_TEXT_POINTS = frozenset({b"mi", b"mo", b"mn", b"ms", b"mtext"})
_HTML_ENCODINGS = frozenset({b"text/html", b"application/xhtml+xml"})

_SCRIPT_DATA = re.compile(rb"<!--|</(?i:script)[\t\n\f\r />]")
_SCRIPT_ESCAPED = re.compile(rb"-->|</(?i:script)[\t\n\f\r />]|<(?i:script)[\t\n\f\r />]")
_SCRIPT_DOUBLE_ESCAPED = re.compile(rb"-->|</(?i:script)[\t\n\f\r />]")
_END_TAG = re.compile(rb"</" + _TAG_NAME + _ATTRS + rb"[\t\n\f\r /]*+>")
# What may precede a doctype without changing the mode (`</>` is dropped by the tokenizer).
_PROLOG = re.compile(
    rb"(?:[\t\n\f\r ]++|<!--(?:-?>|.*?--!?>)|<!(?!--)[^>]*+>|<\?[^>]*+>|</>"
    rb"|</(?![a-zA-Z>])[^>]*+>)*+",
    re.DOTALL,
)

MARKER = b"data-sitebeacon"
# How far the encoding pre-scan of a browser looks for <meta charset>.
CHARSET_PRESCAN_BYTES = 1024


@cache
def _raw_text_end(name: bytes) -> re.Pattern[bytes]:
    return re.compile(rb"</(?i:" + re.escape(name) + rb")[\t\n\f\r />]")


# Links that can be skipped in C: an `<a>` without href, or whose first href value starts so
# that it cannot be an http(s) link (fragment, other scheme) or, for "outbound", cannot leave
# the site (a path, a query, a relative name). Anything doubtful (leading spaces, character
# references, backslashes, tabs) is left to Python, whose classification is authoritative.
_NOT_LINK = rb"#|(?!(?i:https?):)[a-zA-Z][a-zA-Z0-9+.\-]*+:"
_SAME_SITE = rb"[^a-zA-Z/\\&\x00-\x20\"'>#]|/[^/\\&\x00-\x20]|[a-zA-Z][a-zA-Z0-9+.\-]*+[/?#\"' >]"
_NON_HREF_ATTR = (
    rb"[\t\n\f\r /]*+(?!(?i:href)[\t\n\f\r />=])[^\t\n\f\r />][^\t\n\f\r />=]*+"
    rb"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+"
    rb"(?:\"[^\"]*+\"|'[^']*+'|[^\t\n\f\r >\"'][^\t\n\f\r >]*+|(?=>)))?+"
)


# The elements whose href gets ping= (`<a>` and `<area>`), as a tag-name pattern.
LINK_ELEMENTS = (b"a", b"area")
_LINK_NAME = rb"[aA](?:[rR][eE][aA])?"


def _href_value(prefix: bytes) -> bytes:
    """An attribute value (double-, single- or unquoted) that starts with `prefix`."""
    return (
        rb"(?:\"(?=" + prefix + rb")[^\"]*+\"|'(?=" + prefix + rb")[^']*+'"
        rb"|(?=" + prefix + rb")[^\t\n\f\r >\"'][^\t\n\f\r >]*+)"
    )


def _skippable_link(prefix: bytes) -> bytes:
    """A whole `<a>` tag with no href, or whose first href value starts with `prefix`."""
    value = _href_value(prefix)
    return (
        rb"<" + _LINK_NAME + rb"(?:" + _plain_href(prefix) + _PLAIN_ATTRS + rb">|"
        rb"(?=[\t\n\f\r />])(?:" + _NON_HREF_ATTR + rb")*+"
        rb"(?:[\t\n\f\r /]*+>|[\t\n\f\r /]*+(?i:href)[\t\n\f\r ]*+=[\t\n\f\r ]*+"
        + value
        + _ATTRS
        + rb"[\t\n\f\r /]*+>))"
    )


def _plain_href(prefix: bytes) -> bytes:
    """The usual form of a link's start, ` href="..."` first, that sre matches fastest; the
    general forms after it would match such a tag the same way."""
    return rb" (?i:href)=\"(?=" + prefix + rb")[^\"]*+\""


_OTHER_ORIGIN = rb"(?i:https?:)?//"
# Where an authority ends in an href value (or something the fast path leaves to Python).
_AUTHORITY_END = rb"[/?#\\\"'\t\n\f\r >]"


def _other_origin(own_hosts: tuple[str, ...]) -> bytes:
    """`//host` that is certainly not one of the site's own hosts (keys of `sitebeacon.site.hosts`):
    userinfo, character references and percent escapes are left to Python."""
    if not own_hosts:
        return _OTHER_ORIGIN
    names = []
    for key in own_hosts:
        name, colon, port = key.rpartition(":")
        if colon and port.isdigit():
            names.append(re.escape(name.encode()) + rb"\.?:" + port.encode())
        else:
            names.append(re.escape(key.encode()) + rb"\.?(?::(?:80|443))?")
    return (
        _OTHER_ORIGIN
        + rb"(?![^/?#\\\"'\t\n\f\r >@&%]*+[@&%])"
        + rb"(?!(?i:(?:www\.)?(?:"
        + b"|".join(names)
        + rb"))(?="
        + _AUTHORITY_END
        + rb"))"
    )


_NON_HREF_PING_ATTR = _NON_HREF_ATTR.replace(b"(?i:href)", b"(?i:href|ping)", 1)
_NON_PING_ATTR = _NON_HREF_ATTR.replace(b"(?i:href)", b"(?i:ping)", 1)


def _certain_link(prefix: bytes) -> bytes:
    """A whole `<a>` tag without ping attribute whose first href value starts with `prefix`."""
    value = _href_value(prefix)
    return (
        rb"<(?P<certain>"
        + _LINK_NAME
        + rb")(?:"
        + _plain_href(prefix)
        + rb"(?: (?!(?i:ping)[ =>])[a-zA-Z][a-zA-Z0-9_:.-]*+(?:=\"[^\"]*+\")?+)*+>"
        rb"|(?=[\t\n\f\r />])(?:" + _NON_HREF_PING_ATTR + rb")*+"
        rb"[\t\n\f\r /]*+(?i:href)[\t\n\f\r ]*+=[\t\n\f\r ]*+"
        + value
        + rb"(?:"
        + _NON_PING_ATTR
        + rb")*+[\t\n\f\r /]*+>)"
    )


LINK_MODES = ("none", "outbound", "all", "every")


def _any_of(names: tuple[bytes, ...]) -> bytes:
    """A case-insensitive pattern for exactly these names, as a trie (sre tries alternatives one
    by one, and this guard runs at every tag)."""
    tree: dict[int, Any] = {}
    for name in names:
        node = tree
        for char in name.lower():
            node = node.setdefault(char, {})
        node[-1] = {}

    def emit(node: dict[int, Any]) -> bytes:
        branches = []
        for char, child in sorted(node.items()):
            if char >= 0:
                letter = bytes([char])
                head = (
                    b"[" + letter + letter.upper() + b"]" if letter.isalpha() else re.escape(letter)
                )
                branches.append(head + emit(child))
        if not branches:
            return b""
        return b"(?:" + b"|".join(branches) + b")" + (b"?" if -1 in node else b"")

    return emit(tree)


@cache
def _scanner(
    names: tuple[bytes, ...],
    end_names: tuple[bytes, ...],
    foreign: bool,
    links: str = "none",
    own_hosts: tuple[str, ...] = (),
) -> re.Pattern[bytes]:
    """Skip everything but start tags in `names` and end tags in `end_names`, then match one.

    `foreign`: every tag matters (inside <svg>/<math>), and CDATA sections are real.
    `links`: which `<a>`/`<area>` tags may be skipped or taken as certain (see scan_page);
    `own_hosts`: links to these are never taken as certainly outbound.
    """
    tags: list[bytes] = []  # what may be skipped at a `<`, in order
    certain = b""
    if links == "outbound":
        tags.append(_skippable_link(_NOT_LINK + b"|" + _SAME_SITE))
        certain = _certain_link(_other_origin(own_hosts))
    elif links == "all":
        tags.append(_skippable_link(_NOT_LINK))
        certain = _certain_link(_OTHER_ORIGIN + b"|" + _SAME_SITE)
    if not foreign:
        start_guard = rb"(?!" + _any_of(names) + rb"[\t\n\f\r />])" if names else b""
        end_guard = rb"(?!" + _any_of(end_names) + rb"[\t\n\f\r />])" if end_names else b""
        # The usual tags first, in a form sre matches faster (`</p>`, `<p class="x">`); what
        # they match, the general forms below would match the same way.
        tags.append(rb"</" + end_guard + _PLAIN_NAME + rb">")
        tags.append(rb"<" + start_guard + _PLAIN_NAME + _PLAIN_ATTRS + rb">")
        tags.append(rb"<" + start_guard + _TAG_NAME + _ATTRS + rb"[\t\n\f\r /]*+>")
        tags.append(rb"</" + end_guard + _TAG_NAME + _ATTRS + rb"[\t\n\f\r /]*+>")
    tags += _SKIP_COMMON + (_SKIP_CDATA if foreign else _SKIP_BOGUS_DECL)
    found = [
        rb"<(?P<start>" + _TAG_NAME + rb")" + _ATTRS + rb"(?P<tail>[\t\n\f\r /]*+)>",
        rb"</(?P<end>" + _TAG_NAME + rb")" + _ATTRS + rb"[\t\n\f\r /]*+>",
    ]
    return re.compile(
        rb"(?:[^<]++|" + _after_lt(tags) + rb")*+"  # the most frequent alternative first
        rb"(?:" + _after_lt(([certain] if certain else []) + found) + rb")?",
        re.DOTALL,
    )


def attributes(page: bytes, name_end: int, tag_end: int) -> dict[bytes, bytes | None]:
    """Attributes of the complete tag page[..tag_end] whose name ends at name_end.

    Names are lower-cased; the first of duplicate attributes wins (as in the spec); a value is
    the raw bytes between the quotes (character references not decoded), None without `=`.
    """
    found: dict[bytes, bytes | None] = {}
    pos = name_end
    match = _ATTR.match(page, pos, tag_end)
    while match is not None:
        name = match.group(1).lower()
        if name not in found:
            value = match.group(2)
            if value is None:
                value = match.group(3)
            if value is None:
                value = match.group(4)
            if value is None and match.end(1) != match.end():
                value = b""  # `name=` right before `>`
            found[name] = value
        pos = match.end()
        match = _ATTR.match(page, pos, tag_end)
    return found


class LinkTag(NamedTuple):
    """An `<a>` or `<area>` start tag in HTML content: `name_end` is the offset just after
    `<a` / `<area`."""

    name_end: int
    href: bytes | None
    has_ping: bool


class ScriptElement(NamedTuple):
    """A marked `<script data-sitebeacon>` element: page[start:end], end tag included."""

    start: int
    end: int
    terminated: bool


@dataclass(slots=True)
class PageScan:
    """Everything injection needs to know about one page."""

    insert_at: int = 0
    head_end: int | None = None  # offset of the real `</head>`
    body_start: int | None = None  # offset of the real `<body`
    scripts: list[ScriptElement] = field(default_factory=list)
    links: list[LinkTag] = field(default_factory=list)  # links that need classifying
    # Links that certainly qualify for the `links` mode and carry no ping attribute: the
    # offsets just after their `<a` (found in C; the common case on link-heavy pages).
    certain_links: list[int] = field(default_factory=list)
    has_base: bool = False
    complete: bool = True  # False when scanning stopped early (nothing more was needed)


@dataclass(slots=True)
class _Foreign:
    """One open element inside <svg>/<math>; html=True for an HTML integration point."""

    name: bytes
    namespace: bytes
    html: bool


def script_end(page: bytes, pos: int) -> tuple[int, bool]:
    """Offset of the `</script` that ends a script whose content starts at `pos`.

    Follows the script data states, including `<!--` ... `<script>` double escaping, where a
    `</script>` does not end the element. Returns (offset, True), or (len(page), False) when the
    script runs to the end of the input.
    """
    state = 0  # 0 script data, 1 escaped, 2 double escaped
    while True:
        pattern = (_SCRIPT_DATA, _SCRIPT_ESCAPED, _SCRIPT_DOUBLE_ESCAPED)[state]
        match = pattern.search(page, pos)
        if match is None:
            return len(page), False
        token = match.group()
        if token == b"<!--":
            state, pos = 1, match.start() + 2  # the `--` already counts towards `-->`
        elif token == b"-->":
            state, pos = 0, match.end()
        elif token[1:2] == b"/":
            if state != 2:
                return match.start(), True
            state, pos = 1, match.end() - 1
        else:  # <script in the escaped state
            state, pos = 2, match.end() - 1


def link_tag(page: bytes, name_end: int, tag_end: int) -> LinkTag:
    """The href and ping-ness of the complete `<a>` tag page[..tag_end]."""
    href: bytes | None = None
    found = _A_HREF.match(page, name_end, tag_end)
    if found is not None:
        href = found.group(1)
        if href is None:
            href = found.group(2)
            if href is None:
                href = found.group(3) or b""
    has_ping = _PING.search(page, name_end, tag_end) is not None and b"ping" in attributes(
        page, name_end, tag_end
    )
    return LinkTag(name_end, href, has_ping)


def _is_charset_meta(attrs: dict[bytes, bytes | None]) -> bool:
    if b"charset" in attrs:
        return True
    equiv = attrs.get(b"http-equiv")
    content = attrs.get(b"content")
    return (
        equiv is not None
        and equiv.strip().lower() == b"content-type"
        and content is not None
        and b"charset" in content.lower()
    )


def prolog_end(page: bytes, pos: int = 0) -> int:
    """End of the leading whitespace, comments, doctype and `<?xml ...?>` from `pos`.

    Nothing may go before a doctype (the page would switch to quirks mode).
    """
    match = _PROLOG.match(page, pos)
    assert match is not None  # the pattern can match the empty string
    return match.end()


def scan_page(
    page: bytes, *, links: str = "none", start: int = 0, own_hosts: tuple[str, ...] = ()
) -> PageScan:
    """Scan an ASCII-compatible page from `start` (after any byte order mark).

    Finds where a script belongs in the head and the marked scripts already there. `links`
    says which `<a>` and `<area>` start tags in HTML content to report: "every" one, "all" that
    may be http(s) links, "outbound" ones that may leave the site (`own_hosts`: keys of the
    site's own hosts, whose links are not outbound), or "none" (then scanning stops at the end
    of the head unless a marker appears further on). Reported links still need classifying;
    the filters only drop links that certainly do not qualify.
    """
    if links not in LINK_MODES:
        raise ValueError(f"links must be one of {LINK_MODES}, not {links!r}")
    result = PageScan()
    size = len(page)
    head_phase = True
    template_depth = 0
    head_start_end: int | None = None
    html_start_end: int | None = None
    meta_charset_end: int | None = None
    foreign: list[_Foreign] = []
    certain_links = result.certain_links

    wants_links = links != "none"
    link_names: tuple[bytes, ...] = LINK_ELEMENTS if wants_links else ()
    head_tags = link_names + _CONTEXT_TAGS + _HEAD_TAGS
    head_scanner = _scanner(head_tags, _HEAD_END_TAGS, False, links, own_hosts)
    body_scanner = _scanner(link_names + _CONTEXT_TAGS, (), False, links, own_hosts)
    all_scanner = _scanner((), (), True)

    pos = prolog_end(page, start)
    prolog = pos
    next_marker = 0
    foreign_from = 0  # where the outermost open <svg>/<math> starts
    while pos < size:
        if not head_phase and not wants_links and not foreign and pos > next_marker:
            next_marker = page.find(MARKER, pos)
            if next_marker < 0:
                result.complete = False  # nothing more to find: leave the body unread
                break
        scanner = all_scanner if foreign else head_scanner if head_phase else body_scanner
        match = scanner.match(page, pos)
        assert match is not None  # every part of the pattern is optional
        # Runs of links found in C are the bulk of a link-heavy page: keep their loop short.
        while match.lastgroup == "certain":
            certain_links.append(match.end("certain"))
            match = scanner.match(page, match.end())
            assert match is not None
        pos = match.end()
        name = match.group("start")
        if name is None:
            end_name = match.group("end")
            if end_name is None:
                break  # end of input, or inside a construct that runs to the end of input
            end_name = end_name.lower()
            if foreign:
                _close_foreign(foreign, end_name)
            elif head_phase:
                if end_name == b"template":
                    template_depth = max(0, template_depth - 1)
                elif end_name == b"head" and template_depth == 0:
                    result.head_end = match.start("end") - 2
                    head_phase = False
            continue

        if (name == b"a" or name == b"A") and not foreign:
            result.links.append(link_tag(page, match.end("start"), pos))
            continue
        name = name.lower()
        tag_start = match.start("start") - 1
        name_end = match.end("start")
        self_closing = match.group("tail").endswith(b"/")
        # Where a script could go just before this tag: not inside <svg>/<math> content.
        html_before = tag_start
        if foreign and not foreign[-1].html:
            if name in _BREAKOUT or (name == b"font" and _font_breaks_out(page, name_end, pos)):
                while foreign and not foreign[-1].html:
                    foreign.pop()
                if not foreign:
                    html_before = foreign_from
            else:
                _open_foreign(foreign, page, name, name_end, pos, self_closing)
                continue

        # A start tag in HTML content.
        if name == b"svg" or name == b"math":
            if not self_closing:
                if not foreign:
                    foreign_from = tag_start
                foreign.append(_Foreign(name, name, False))
            continue
        if head_phase and not foreign and template_depth == 0:
            if name == b"body":
                result.body_start = html_before
                head_phase = False
            elif name == b"head":
                head_start_end = head_start_end or pos
            elif name == b"html":
                html_start_end = html_start_end or pos
            elif name == b"meta" and meta_charset_end is None:
                early = tag_start < CHARSET_PRESCAN_BYTES
                if early and _is_charset_meta(attributes(page, name_end, pos)):
                    meta_charset_end = pos
            elif name == b"base":
                result.has_base = result.has_base or b"href" in attributes(page, name_end, pos)
        if name == b"template":
            if head_phase:
                template_depth += 1
        elif name == b"a" or name == b"area":
            result.links.append(link_tag(page, name_end, pos))
        elif name == b"script":
            end, terminated = script_end(page, pos)
            if terminated:
                tag = _END_TAG.match(page, end)
                terminated = tag is not None
                end = tag.end() if tag is not None else size
            if MARKER in attributes(page, name_end, pos):
                result.scripts.append(ScriptElement(tag_start, end, terminated))
            pos = end
        elif name in RAWTEXT or name in RCDATA:
            close = _raw_text_end(name).search(page, pos)
            tag = _END_TAG.match(page, close.start()) if close is not None else None
            pos = tag.end() if tag is not None else size
        elif name == b"plaintext":
            break

    if result.head_end is not None:
        result.insert_at = result.head_end
    elif result.body_start is not None:
        result.insert_at = result.body_start
    else:
        result.insert_at = head_start_end or html_start_end or prolog
        if meta_charset_end is not None and meta_charset_end > result.insert_at:
            # Keep <meta charset> within the first 1024 bytes, where browsers look for it.
            result.insert_at = meta_charset_end
    return result


def _font_breaks_out(page: bytes, name_end: int, tag_end: int) -> bool:
    attrs = attributes(page, name_end, tag_end)
    return b"color" in attrs or b"face" in attrs or b"size" in attrs


def _open_foreign(
    stack: list[_Foreign], page: bytes, name: bytes, name_end: int, tag_end: int, closed: bool
) -> None:
    """A start tag inside foreign content: track it unless it is self-closing."""
    if closed:
        return
    namespace = b"svg" if name == b"svg" else b"math" if name == b"math" else stack[-1].namespace
    if namespace == b"svg":
        html = name in _SVG_HTML_POINTS
    elif name in _MATH_TEXT_POINTS:
        html = True
    elif name == b"annotation-xml":
        encoding = attributes(page, name_end, tag_end).get(b"encoding")
        html = encoding is not None and encoding.strip().lower() in _HTML_ENCODINGS
    else:
        html = False
    stack.append(_Foreign(name, namespace, html))


def _close_foreign(stack: list[_Foreign], name: bytes) -> None:
    """An end tag while inside foreign content: pop up to the matching open element, if any."""
    if stack[-1].html and name != stack[-1].name:
        return  # HTML content of an integration point: its own end tags do not close it
    if not stack[-1].html and name in (b"p", b"br"):
        while stack and not stack[-1].html:
            stack.pop()  # `</p>` and `</br>` break out of foreign content
        return
    for index in range(len(stack) - 1, -1, -1):
        if stack[index].name == name:
            del stack[index:]
            return
