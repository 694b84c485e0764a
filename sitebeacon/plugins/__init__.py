"""Plugins for MkDocs, Pelican and Sphinx: each runs the build side's `inject_site` pass."""
