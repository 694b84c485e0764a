"""minify_js: a real minifier that shrinks valid JavaScript and refuses broken JavaScript."""

from __future__ import annotations

import pytest

from sitebeacon.errors import SitebeaconError
from sitebeacon.site.minify import MinifyError, minify_js


def test_shortens_locals_and_drops_comments() -> None:
    source = (
        "(function () {\n  // a comment\n  var longLocalName = 1;\n"
        "  window.x = longLocalName;\n})();\n"
    )
    minified = minify_js(source)
    assert "longLocalName" not in minified
    assert "comment" not in minified
    assert "window.x=" in minified
    assert len(minified) < len(source) / 2


def test_keeps_strings_and_property_names() -> None:
    minified = minify_js(
        '(() => { navigator.sendBeacon("/collect", JSON.stringify({type: "leave"})); })();'
    )
    assert 'navigator.sendBeacon("/collect"' in minified
    assert "type" in minified and '"leave"' in minified


@pytest.mark.parametrize(
    "source",
    [
        "function (",
        "var a = ;",
        "x = {a: 1",
        "}",
        "(() => { return 1 )();",
        "if (a) { b()",
    ],
)
def test_syntax_error_raises_with_the_minifiers_message(source: str) -> None:
    with pytest.raises(MinifyError) as caught:
        minify_js(source)
    message = str(caught.value)
    assert "line 1" in message and "column" in message
    assert "\n" not in message  # one line for the CLI; the excerpt is in .details
    assert caught.value.details.startswith(message.removeprefix("JavaScript does not parse: "))


def test_minify_error_is_a_sitebeacon_error() -> None:
    # The CLI turns SitebeaconError into one line and exit status 2, never a traceback.
    assert issubclass(MinifyError, SitebeaconError)


@pytest.mark.parametrize("source", ["", "   \n", "/* only a comment */", "// nothing\n"])
def test_never_returns_an_empty_module(source: str) -> None:
    with pytest.raises(MinifyError, match="nothing"):
        minify_js(source)
