"""Hypothesis strategies for HTML-ish pages full of the constructs that fool naive scanners."""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# The property tests' settings; SITEBEACON_EXAMPLES=5000 runs them harder (for scanner changes).
PROPERTY = settings(
    max_examples=int(os.environ.get("SITEBEACON_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TAG_NAMES = [
    "head",
    "HEAD",
    "body",
    "html",
    "a",
    "A",
    "script",
    "SCRIPT",
    "style",
    "title",
    "textarea",
    "template",
    "svg",
    "math",
    "foreignObject",
    "desc",
    "mi",
    "xmp",
    "iframe",
    "noembed",
    "noframes",
    "noscript",
    "meta",
    "div",
    "p",
    "b",
    "br",
    "font",
    "g",
    "base",
    "abbr",
]
ATTR_NAMES = ["href", "HREF", "ping", "Ping", "title", "class", "=", "charset", "x/"]
VALUES = [
    "http://x.test/",
    "HTTPS://X.TEST",
    "//x.test",
    " https://x.test ",
    "mailto:a@b",
    "javascript:x()",
    "#f",
    "/p",
    "?q",
    "&#104;ttp://x.test",
    "\\\\x.test",
    "tel:1",
    "",
    "a>b",
    "</head>",
    "<!--",
    "</script>",
    "<body>",
    "p a",
    "http:p",
]
TEXT = st.text(alphabet=" \t\r\n<>/!-=\"'?&#;abhtp:[]\u00e9", max_size=8)


@st.composite
def attribute(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(ATTR_NAMES))
    if not draw(st.booleans()):
        return name
    value = draw(st.sampled_from(VALUES))
    quote = draw(st.sampled_from(['"', "'", ""]))
    space = draw(st.sampled_from(["", " ", "\n"]))
    return f"{name}{space}={space}{quote}{value.replace(quote, '') if quote else value}{quote}"


@st.composite
def start_tag(draw: st.DrawFn) -> str:
    attrs = draw(st.lists(attribute(), max_size=3))
    seps = [draw(st.sampled_from([" ", "\n", "/", " /"])) for _ in attrs]
    inner = "".join(sep + attr for sep, attr in zip(seps, attrs, strict=True))
    close = draw(st.sampled_from([">", "/>", " >"]))
    return f"<{draw(st.sampled_from(TAG_NAMES))}{inner}{close}"


PIECE = st.one_of(
    TEXT,
    start_tag(),
    st.builds(
        lambda n, a: f"</{n}{a}>", st.sampled_from(TAG_NAMES), st.sampled_from(["", " x='>'"])
    ),
    st.builds(lambda t, e: f"<!--{t}{e}", TEXT, st.sampled_from(["-->", "--!>", "", "->"])),
    st.sampled_from(
        [
            "<!-->",
            "<!--->",
            "<!DOCTYPE html>",
            "<?x>",
            "</ x>",
            "</>",
            "<![CDATA[",
            "]]>",
            "<",
            "</",
            "<!",
            "-->",
        ]
    ),
)
PAGE = st.lists(PIECE, max_size=25).map("".join)


def html5lib_agrees(text: str) -> bool:
    """False for pages where html5lib 1.1 (2020) predates the spec.

    Since 2022 the spec has `</p>` and `</br>` end tags break out of <svg>/<math> content, as
    browsers do; html5lib does not, so it cannot be the oracle for such pages.
    """
    return not (
        re.search(r"</(p|br)[\t\n\f\r />]", text, re.I) and re.search(r"<(svg|math)", text, re.I)
    )
