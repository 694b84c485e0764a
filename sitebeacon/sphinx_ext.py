"""`extensions = ["sitebeacon.sphinx_ext"]` in conf.py: the name users already wrote.

The extension lives in `sitebeacon.plugins.sphinx` (which Sphinx accepts as a name too).
"""

from __future__ import annotations

from sitebeacon.plugins.sphinx import setup

__all__ = ["setup"]
