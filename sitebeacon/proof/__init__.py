"""Proof in real browsers: browser drivers, the leave scenarios, and `sitebeacon verify`."""
