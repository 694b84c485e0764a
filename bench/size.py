"""How big the client module is, against issue 11's budget and against a floor written by hand.

For each configuration of the README's size table: the module's minified and gzip -9 bytes (as
`sitebeacon js --sizes` prints them). For the three configurations issue 11 gives a budget, the
budget; for two of them, the floor: a module written by hand for size alone
(`bench/size_floor/*.js`, minified by the same minifier, gzipped the same way), with only the
behaviour the issue requires of that configuration, and the ratio of the module to it. A budget
below the floor cannot be met by code that keeps that behaviour; the ratio says how much the
templates (one feature a file, shared by every configuration) cost over writing it by hand.

Run: python bench/size.py
"""

from __future__ import annotations

from pathlib import Path

from sitebeacon.config import Config
from sitebeacon.site.generate import gzip_size, module_sizes
from sitebeacon.site.minify import minify_js

FLOORS = Path(__file__).with_name("size_floor")
EVERY_EVENT = ("pageview", "leave", "outbound", "download", "custom")

# name: (configuration, issue 11's budget or 0, hand-written floor or "")
CONFIGS: dict[str, tuple[Config, int, str]] = {
    "default": (Config(), 950, "default_beacon.js"),
    'spa = "off"': (Config(spa="off"), 0, ""),
    'transport = ["beacon"]': (Config(transport=("beacon",)), 0, ""),
    'transport = ["keepalive"]': (Config(transport=("keepalive",)), 0, ""),
    'transport = ["fetchlater"]': (Config(transport=("fetchlater",)), 0, ""),
    "beacon, keepalive; json": (Config(transport=("beacon", "keepalive"), encoding="json"), 0, ""),
    "default; form": (Config(encoding="form"), 0, ""),
    "beacon; leave": (Config(transport=("beacon",), events=("leave",)), 450, "beacon_leave.js"),
    "every feature": (
        Config(
            events=EVERY_EVENT,
            spa="hash",
            hosts=("example.com",),
            respect_dnt=True,
            ignore_hosts=("localhost",),
        ),
        1600,
        "",
    ),
}


def main() -> None:
    print(
        f"{'configuration':28} {'minified':>8} {'gzip':>6} {'budget':>6} "
        f"{'floor':>6} {'module/floor':>12}"
    )
    for name, (config, budget, floor_file) in CONFIGS.items():
        sizes = module_sizes(config)
        floor = gzip_size(minify_js((FLOORS / floor_file).read_text())) if floor_file else 0
        ratio = f"{sizes['gzip'] / floor:.2f}x" if floor else ""
        print(
            f"{name:28} {sizes['minified']:8} {sizes['gzip']:6} {budget or '':>6} "
            f"{floor or '':>6} {ratio:>12}"
        )
    print(
        "floor: written by hand for size alone (bench/size_floor/); the default's has beacon as"
        " its only transport, so the real default's floor is higher still"
    )


if __name__ == "__main__":
    main()
