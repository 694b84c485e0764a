"""sitebeacon: reliable page-leave reporting for static sites."""

__version__ = "0.1.0"
