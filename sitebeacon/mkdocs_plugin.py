"""Old import path of the MkDocs plugin, kept for configs and code that name it.

The `sitebeacon` entry point (what `plugins: [sitebeacon]` in mkdocs.yml uses) points at
`sitebeacon.plugins.mkdocs` directly.
"""

from __future__ import annotations

from sitebeacon.plugins.mkdocs import SitebeaconPlugin

__all__ = ["SitebeaconPlugin"]
