"""The scanner finds the real `</head>`, `<body>` and `<a>` tags, as a browser's tokenizer would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import html5lib
import pytest
from html_strategies import PAGE, PROPERTY, html5lib_agrees
from hypothesis import assume, given
from hypothesis import strategies as st

from sitebeacon.site.htmlscan import attributes, link_tag, prolog_end, scan_page, script_end
from sitebeacon.site.inject import link_kind

S = b"<S>"  # what gets inserted: each page below is written with it where it belongs


def place(page: bytes) -> bytes:
    """The page with S at the scanner's insertion point."""
    at = scan_page(page).insert_at
    return page[:at] + S + page[at:]


REAL_HEAD_END = [
    # comments, with the spec's odd endings
    b"<head><!-- </head> --><S></head>",
    b"<head><!--><S></head>",
    b"<head><!---><S></head>",
    b"<head><!----><S></head>",
    b"<head><!-- x --!><S></head>",
    b"<head><!-- -- > </head> --><S></head>",
    b"<head><!--!></head>--><S></head>",
    b"<head><!-- <!-- </head> --><S></head>",
    # script data, its end tag in any case, and its escape states
    b"<head><script>'</head>'</script><S></head>",
    b"<head><script></head></SCRIPT ><S></head>",
    b"<head><script></head></scripts></script><S></head>",
    b"<head><script><!--<script></script></head>--></script><S></head>",
    b"<head><script><!--</script><S></head>",
    b"<head><script><!--><script></script><S></head>",
    b"<head><script><!--<script>--></script><S></head>",
    b"<head><script></script x='</head>'><S></head>",
    # raw text and RCDATA elements
    b"<head><style>a{}</head>b{}</style><S></head>",
    b"<head><title></head></TITLE><S></head>",
    b"<head><textarea></head></textarea><S></head>",
    b"<head><xmp></head></xmp><S></head>",
    b"<head><iframe></head></iframe><S></head>",
    b"<head><noembed></head></noembed><S></head>",
    b"<head><noframes></head></noframes><S></head>",
    b"<head><noscript></head></noscript><S></head>",
    b"<head><style><!--</style><S></head>",
    # templates, nested
    b"<head><template></head></template><S></head>",
    b"<head><template><template></template></head></template><S></head>",
    b"<head><template><body></template><S></head>",
    # CDATA outside foreign content and other bogus comments end at the first `>`
    b"<head><![CDATA[ </head> ]]><S></head>",
    b"<head><?php '</head>' ?><S></head>",
    b"<head></ x </head><S></head>",
    b"<head><!x </head><S></head>",
    # attribute values
    b'<head><meta content="</head>"><S></head>',
    b"<head><meta content='>'><S></head>",
    b"<head><meta a = \"</head>\" b='</head>'><S></head>",
    b"<head><link href=a><S></head>",
    b'<head><link ="><S></head>',
    b"<head><link a=\"x\"b='</head>'><S></head>",
    # foreign content (an <svg> in the head: its <style> is not raw text)
    b"<head><svg><style><!--</style></svg>--></svg><S></head>",
    b"<head><svg><g><title></head></title></svg><S></head>",
    b"<head><svg><![CDATA[</head>]]></svg><S></head>",
    # the end tag in any case, with attributes
    b"<HEAD><S></HEAD >",
    b"<head><S></head foo='>'>",
    b"<head><S></head/>",
    # the first real end of the head wins
    b"<head><S></head></head>",
    b"<head><S></head><body></body>",
]


FALLBACKS = [
    # no </head>: before <body ...>
    b"<title>x</title><S><BODY class=a>",
    b"<head><!-- <body> --><S><body>",
    b"<script>'<body>'</script><S><body>",
    b"<bodyx><S><body>",
    # neither: right after <head ...>, else <html ...>, else after the prolog
    b"<html><head><S><title>x</title><p>y",
    b"<!DOCTYPE html><html lang=en><S><p>x",
    b"<S><p>hello",
    b"<S>",
    b"<!DOCTYPE html><S>",
    b"<!doctype html>\r\n<!-- c -->\r\n<S><p>x",
    b"<!-- a --><!DOCTYPE html><S><p>",
    b"<?xml version='1.0'?><!DOCTYPE html><S><p>",
    b"  \n<!doctype html><S>x",
    b"</><!DOCTYPE html><S><p>",
    # a doctype whose quoted identifier holds `>` still ends there (abrupt identifier)
    b'<!DOCTYPE html PUBLIC "a><S>b"><p>',
    # <html> inside a template is not the document's
    b"<S><template><html></template><p>",
    # plaintext: everything after is text
    b"<S><plaintext></head><body>",
    # a tag cut off by the end of the file is no tag
    b'<head><S><meta content="</head>',
    b"<S><p><!-- </head>",
    # keep <meta charset> within the first 1024 bytes, where the browser's pre-scan looks
    b"<html><meta charset=shift_jis><S><title>x",
    b"<head><meta http-equiv=Content-Type content='text/html; charset=euc-jp'><S><p>",
]


@pytest.mark.parametrize("expected", REAL_HEAD_END + FALLBACKS)
def test_the_script_goes_before_the_real_end_of_the_head(expected: bytes) -> None:
    """Look-alikes of `</head>` are passed over; without a real one, the fallbacks apply."""
    assert place(expected.replace(S, b"")) == expected


def test_a_late_meta_charset_does_not_move_the_script() -> None:
    page = b"<p>" + b"x" * 1100 + b"<meta charset=utf-8>"
    assert scan_page(page).insert_at == 0


def test_scanning_starts_after_a_byte_order_mark() -> None:
    page = b"\xef\xbb\xbf<!DOCTYPE html><p>"
    assert scan_page(page, start=3).insert_at == len(b"\xef\xbb\xbf<!DOCTYPE html>")
    assert prolog_end(page, 3) == 18


@pytest.mark.parametrize(
    ("content", "end"),
    [
        (b"a</script>", 1),
        (b"a</SCRIPT\t>", 1),
        (b"a</scriptx></script>", 11),
        (b"<!--<script></script>--></script>", 24),
        (b"<!--<script></script></script>--></script>", 21),
        (b"<!--<script>--></script>", 15),
        (b"<!--</script>", 4),
        (b"<!--><script></script>", 13),
        (b"<!---><script></script>", 14),
        (b"<!--<scriptx></script>", 13),
        (b"<!--<script/></script>-->a</script>", 26),
    ],
)
def test_script_end_follows_the_escape_states(content: bytes, end: int) -> None:
    assert script_end(content, 0) == (end, True)


def test_script_without_end_runs_to_the_end_of_the_file() -> None:
    assert script_end(b"<!--<script></script>", 0) == (21, False)


def test_attributes_follow_the_spec() -> None:
    tag = b"<a HREF=x href=y =z b c = 'd' e=\"f\"g/h=i/ j=>"
    got = attributes(tag, 2, len(tag))
    assert got == {
        b"href": b"x",  # the first of duplicates wins
        b"=z": None,
        b"b": None,
        b"c": b"d",
        b"e": b"f",
        b"g": None,
        b"h": b"i/",
        b"j": b"",
    }


@pytest.mark.parametrize(
    ("tag", "href", "has_ping"),
    [
        (b"<a href=x>", b"x", False),
        (b"<a title='href=y' href=\"z\">", b"z", False),
        (b"<a hrefx=1 HREF = 'q'>", b"q", False),
        (b"<a href>", b"", False),
        (b"<a>", None, False),
        (b"<a PING=/p href=x>", b"x", True),
        (b"<a title=ping href=x>", b"x", False),
        (b"<a href=x/>", b"x/", False),
    ],
)
def test_link_tag(tag: bytes, href: bytes | None, has_ping: bool) -> None:
    link = link_tag(tag, 2, len(tag))
    assert (link.name_end, link.href, link.has_ping) == (2, href, has_ping)


def hrefs(page: bytes, links: str = "every") -> list[bytes | None]:
    return [link.href for link in scan_page(page, links=links).links]


def test_links_inside_other_constructs_are_not_links() -> None:
    page = (
        b"<!-- <a href=1> --><script><a href=2></script><style><a href=3></style>"
        b"<title><a href=4></title><textarea><a href=5></textarea><noscript><a href=6></noscript>"
        b"<div title='<a href=7>'></div><svg><a href=8></a><![CDATA[<a href=9>]]></svg>"
        b"<math><a href=10></a></math><? <a href=11 ?><a href=12>"
        b"<svg><foreignObject><a href=13></a></foreignObject><a href=14></svg>"
        b"<svg><p><a href=15></p><template><a href=16></template>"
    )
    assert hrefs(page) == [b"12", b"13", b"15", b"16"]


def test_links_after_the_head_are_found() -> None:
    page = b"<head><a href=1></head><body><a href=2><A\nhref=3></body>"
    assert hrefs(page) == [b"1", b"2", b"3"]


def test_without_links_the_body_is_not_read() -> None:
    page = b"<head></head><body>" + b"<p>x</p>" * 100
    scan = scan_page(page)
    assert scan.head_end == 6 and not scan.complete


def test_marked_scripts_are_found_anywhere() -> None:
    page = b"<head></head><body><p><script data-sitebeacon>1</script ></body>"
    (script,) = scan_page(page).scripts
    assert page[script.start : script.end] == b"<script data-sitebeacon>1</script >"
    assert script.terminated


def test_a_marker_outside_a_script_tag_is_not_a_script() -> None:
    page = b"<head><!-- <script data-sitebeacon></script> --><p data-sitebeacon></head>"
    assert scan_page(page).scripts == []


def qualifying(page: bytes, mode: str, own: tuple[str, ...] = ()) -> list[int]:
    """Offsets after `<a` of the links that get ping= in `mode`, via the filtered scan."""
    scan = scan_page(page, links=mode, own_hosts=own)
    wanted = {"outbound"} if mode == "outbound" else {"outbound", "local"}
    classified = [
        link.name_end
        for link in scan.links
        if not link.has_ping and link_kind(link.href, own) in wanted
    ]
    return sorted(classified + scan.certain_links)


def reference(page: bytes, mode: str, own: tuple[str, ...] = ()) -> list[int]:
    """The same, classifying every link in Python."""
    wanted = {"outbound"} if mode == "outbound" else {"outbound", "local"}
    return [
        link.name_end
        for link in scan_page(page, links="every").links
        if not link.has_ping and link_kind(link.href, own) in wanted
    ]


HREFS = [
    b"/a",
    b"/",
    b"a/b",
    b"page.html",
    b"../x",
    b"?q=1",
    b"#top",
    b"mailto:a@b",
    b"javascript:void(0)",
    b"tel:1",
    b"\xc3\xa9t\xc3\xa9/",
    b"1x",
    b"https/x",
    b"//x",
    b"HTTP://x",
    b"https://x",
    b"https:x",
    b"https:\\\\x",
    b"/\\x",
    b" //x",
    b"&#47;/x",
    b"//",
    b"",
    b"a b:c",
    b"a:b",
    b"ht\ttp://x",
    b"//x.example",
    b"https://example.com",
    b"//WWW.example.com./",
    b"//example.com:443?q",
    b"//example.com:444/",
    b"//a@example.com/",
    b"//example.com@x/",
    b"//ex%61mple.com",
    b"//example.community/",
    b"//x.example.com",
    b"//example.com#f",
]


@pytest.mark.parametrize("href", HREFS)
@pytest.mark.parametrize("mode", ["outbound", "all"])
@pytest.mark.parametrize(
    "form", ['<a href="{}">', "<a href='{}' ping>", "<a x=1 href={} y>", "<AREA href={}>"]
)
@pytest.mark.parametrize("own", [(), ("example.com",), ("example.com:444", "x")])
def test_filters_in_c_agree_with_the_python_classification(
    href: bytes, mode: str, form: str, own: tuple[str, ...]
) -> None:
    page = form.encode().replace(b"{}", href)
    assert qualifying(page, mode, own) == reference(page, mode, own)


@PROPERTY
@given(PAGE, st.sampled_from(["outbound", "all"]))
def test_filtered_scans_find_exactly_the_qualifying_links(text: str, mode: str) -> None:
    page = text.encode()
    assert qualifying(page, mode) == reference(page, mode)


# --- differential test against html5lib, which implements the WHATWG parsing algorithm -------

HEAD_END_PHASES = {"BeforeHeadPhase", "InHeadPhase"}
BODY_START_PHASES = {
    "InitialPhase",
    "BeforeHtmlPhase",
    "BeforeHeadPhase",
    "InHeadPhase",
    "AfterHeadPhase",
}


class RecordingParser(html5lib.HTMLParser):  # type: ignore[misc]
    """html5lib's parser, logging each token with the insertion mode that will process it."""

    log: list[tuple[int, str | None, str, bool, Any]]

    def mainLoop(self) -> None:
        parser, log, base = self, [], type(self.tokenizer)
        self.log = log

        class Tokenizer(base):  # type: ignore[misc, valid-type]
            def __iter__(self) -> Iterator[dict[str, Any]]:
                for token in base.__iter__(self):
                    if token["type"] != PARSE_ERROR:
                        node = parser.tree.openElements[-1] if parser.tree.openElements else None
                        html = node is None or node.namespace == parser.tree.defaultNamespace
                        phase = type(parser.phase).__name__
                        log.append(
                            (token["type"], token.get("name"), phase, html, token.get("data"))
                        )
                    yield token

        self.tokenizer.__class__ = Tokenizer
        super().mainLoop()


PARSE_ERROR, START, END = 7, 3, 4


def ends_head(token: tuple[int, str | None, str, bool, Any]) -> bool:
    """A token that really closes the head: `</head>` in the head, `<body>` before the body."""
    kind, name, phase, html, _ = token
    return html and (
        (kind == END and name == "head" and phase in HEAD_END_PHASES)
        or (kind == START and name == "body" and phase in BODY_START_PHASES)
    )


@PROPERTY
@given(PAGE)
def test_the_script_lands_where_a_browser_ends_the_head(text: str) -> None:
    assume(html5lib_agrees(text))
    page = text.encode()
    at = scan_page(page).insert_at
    result = (page[:at] + b"<script data-sitebeacon></script>" + page[at:]).decode()
    parser = RecordingParser(namespaceHTMLElements=True)
    parser.parse(result, scripting=True)
    log = parser.log
    (mine,) = [
        i
        for i, (kind, name, _, _, data) in enumerate(log)
        if kind == START and name == "script" and data and "data-sitebeacon" in data
    ]
    assert not [token for token in log[:mine] if ends_head(token)], "after the end of the head"
    if any(ends_head(token) for token in log[mine:]):
        following = [(kind, name) for kind, name, *_ in log[mine + 1 : mine + 3]]
        assert following[-1] in ((END, "head"), (START, "body")), "before the end of the head"
