"""`PLUGINS = ["sitebeacon.pelican_plugin"]` in pelicanconf.py: the name users already wrote.

The plugin lives in `sitebeacon.plugins.pelican` (which Pelican accepts as a name too).
"""

from __future__ import annotations

from sitebeacon.plugins.pelican import register

__all__ = ["register"]
