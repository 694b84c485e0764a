"""The documented import path `sitebeacon.receiver:create_app` (the app lives in `collect/`)."""

from __future__ import annotations

from sitebeacon.collect.app import Receiver, create_app
from sitebeacon.collect.server import running_receiver, serve

__all__ = ["Receiver", "create_app", "running_receiver", "serve"]
