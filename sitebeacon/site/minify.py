"""Minify the client module with tdewolff-minify, a real JavaScript minifier.

A real parser matters here: the module is rendered from templates, so a template mistake must
stop the build with the parser's message instead of shipping broken or empty JavaScript.
"""

from __future__ import annotations

import minify

from sitebeacon.errors import SitebeaconError

JS_MEDIA_TYPE = "application/javascript"


class MinifyError(SitebeaconError):
    """The JavaScript did not parse (or minified to nothing).

    `str()` is the first line of the minifier's message (it names line and column), so the CLI
    can print it on one line; `details` keeps the whole message with the source excerpt.
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details or message


def minify_js(source: str) -> str:
    """Return `source` minified; raise MinifyError rather than return broken or empty code."""
    try:
        minified: str = minify.string(JS_MEDIA_TYPE, source)
    except minify.MinifyError as error:
        details = str(error).strip()
        first_line = details.splitlines()[0] if details else "unknown error"
        raise MinifyError(f"JavaScript does not parse: {first_line}", details) from error
    if not minified.strip():
        raise MinifyError("JavaScript minified to nothing: the source holds no code")
    return minified
