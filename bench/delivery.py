"""How many leave records reach the receiver: sitebeacon against the two usual patterns.

For scenarios 1-9 of `sitebeacon verify`, N trials each, with and without Slow 3G emulation
(Chromium only: it is CDP network emulation), in one run, in one engine or all three (one
column group each), and against real receivers with real SQLite stores:

  (a) fetch      a plain fetch() POST on every link click and on visibilitychange to hidden;
                 the pattern that loses records (the page is torn down under the request)
  (b) beacon     navigator.sendBeacon on visibilitychange to hidden only; what most trackers do
  (c) sitebeacon the client module with the default configuration

(a) and (b) are small inline scripts sending protocol-shaped records (docs/protocol.md), each
send under a new id as ordinary trackers do, with the visit in `data.visit`; sitebeacon keeps
one id per visit. A visit counts as delivered when at least one leave row of it is stored;
every further row for the same visit is a duplicate. Records that arrive later than the
deadline (5 s, 15 s throttled) count as lost.

The three approaches of a trial run at once, except in scenarios 8 and 9: three browsers
crashing or shutting down together on two cores starve each other, and Chromium then loses more
of what it flushes at shutdown (2 of 6 closes lost in parallel, 0 of 20 one at a time).

    python bench/delivery.py                 # Chromium, 20 trials per scenario, approach, network
    python bench/delivery.py --trials 3      # quick
    python bench/delivery.py --throttle none --scenarios 8,9
    python bench/delivery.py --engine all --throttle none --trials 3   # Chromium, Firefox, WebKit
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sitebeacon.collect.server import running_receiver
from sitebeacon.collect.stores import open_store
from sitebeacon.config import Config
from sitebeacon.proof.engines import ENGINES, LABELS, locate, make_engine
from sitebeacon.proof.engines.base import Engine, Outcome, SitePlan
from sitebeacon.proof.scenarios import BY_NUMBER, SCENARIOS
from sitebeacon.proof.verify import (
    Expected,
    make_ready,
    plan_site,
    rows_about,
    wait_for_rows,
)
from sitebeacon.site.build import build_site
from sitebeacon.site.inject import inject_site

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_site"

# The shared part of both baselines: protocol records with the visit in data.visit, and a new
# visit on a back-forward-cache restore, as for sitebeacon.
_BASELINE_HEAD = """(function () {
  var endpoint = "/collect";
  function id() { return Math.random().toString(36).slice(2) + Date.now().toString(36); }
  var visit = id();
  function rec(type, fields) {
    var r = {v: 1, id: id(), type: type, url: location.href, ts: Date.now(), data: {visit: visit}};
    for (var k in fields) r[k] = fields[k];
    return r;
  }
  function pageview() { send(rec("pageview", {ref: document.referrer})); }
  addEventListener("pageshow", function (e) { if (e.persisted) { visit = id(); pageview(); } });
"""
BASELINE_FETCH = (
    _BASELINE_HEAD
    + """
  function send(r) {
    fetch(endpoint, {method: "POST", body: JSON.stringify(r)}).catch(function () {});
  }
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("a[href]")) send(rec("leave"));
  }, true);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") send(rec("leave"));
  });
  pageview();
})();
"""
)
BASELINE_BEACON = (
    _BASELINE_HEAD
    + """
  function send(r) { r.transport = "beacon"; navigator.sendBeacon(endpoint, JSON.stringify(r)); }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") send(rec("leave"));
  });
  pageview();
})();
"""
)

APPROACHES = ("fetch", "beacon", "sitebeacon")
LABELS_SHORT = {"fetch": "(a) fetch", "beacon": "(b) beacon", "sitebeacon": "(c) sitebeacon"}
DEADLINE = {None: 5.0, "slow3g": 15.0}
SETTLE = {None: 0.5, "slow3g": 2.0}


def visit_of(approach: str) -> Callable[[dict[str, Any]], str]:
    """How a leave row names its visit: sitebeacon's id, the baselines' data.visit."""
    if approach == "sitebeacon":
        return lambda row: str(row["id"])
    return lambda row: str((row["data"] or {}).get("visit"))


@dataclass
class Tally:
    visits: int = 0
    delivered: int = 0
    duplicates: int = 0
    failed_runs: list[str] = field(default_factory=list)

    def cell(self) -> str:
        if not self.visits:
            return "-"
        share = 100 * self.delivered / self.visits
        text = f"{share:5.1f}% dup {self.duplicates}"
        return text + (f" ({len(self.failed_runs)} err)" if self.failed_runs else "")


@dataclass
class Site:
    approach: str
    base: str
    read: Callable[[], list[dict[str, Any]]]
    plan: SitePlan


async def trial(
    engine: Engine, site: Site, number: int, throttle: str | None, token: str, tally: Tally
) -> None:
    url = f"{site.plan.url(site.plan.start_path)}?bench={token}"
    scenario = BY_NUMBER[number]
    visits = scenario.visits
    expected = [Expected("pageview", visits), Expected("leave", visits)]
    rows: list[dict[str, Any]] = []
    outcome = Outcome()
    try:
        async with engine.open(scenario, url, outcome) as tab:
            await scenario.drive(tab, site.plan, outcome, engine.ready)
            rows = await wait_for_rows(
                site.read, url, expected, timeout=DEADLINE[throttle], settle=SETTLE[throttle]
            )
        if outcome.failures:
            tally.failed_runs.append("; ".join(outcome.failures))
    except Exception as error:
        tally.failed_runs.append(f"{type(error).__name__}: {str(error).splitlines()[:1]}")
        rows = rows_about(site.read(), url)
    leaves = [row for row in rows if row["type"] == "leave"]
    named = {visit_of(site.approach)(row) for row in leaves}
    tally.visits += visits
    tally.delivered += min(len(named), visits)
    tally.duplicates += len(leaves) - min(len(named), visits)


# The default configuration, keeping the `bench` parameter that tells trials apart (the module
# drops query parameters not in privacy.keep_query from stored URLs).
BENCH_CONFIG = Config(keep_query=(*Config().keep_query, "bench"))


def build_sites(workdir: Path) -> dict[str, Path]:
    """One built sample site per approach: sitebeacon's default module, or a baseline."""
    config = BENCH_CONFIG
    built = workdir / "sitebeacon"
    build_site(SAMPLE, built, config)
    sites = {"sitebeacon": built}
    for approach, script in (("fetch", BASELINE_FETCH), ("beacon", BASELINE_BEACON)):
        copy = workdir / approach
        shutil.copytree(built, copy)
        inject_site(copy, config, script)  # replaces the marked sitebeacon script
        sites[approach] = copy
    return sites


async def run(
    engine_name: str,
    browser: str | None,
    sites: list[Site],
    scenarios: list[int],
    trials: int,
    throttles: list[str | None],
    progress: bool,
    serial: bool = False,
) -> tuple[dict[Any, Tally], str]:
    """Tallies keyed (engine, throttle, scenario, approach), and the browser's version."""
    tallies: dict[Any, Tally] = {}
    version = ""
    for throttle in throttles:
        engines: dict[str, Engine] = {}
        async with contextlib.AsyncExitStack() as stack:
            for site in sites:
                ready = make_ready(site.read, BENCH_CONFIG, DEADLINE[throttle] * 2)
                engine = make_engine(engine_name, ready, browser=browser, throttle=throttle)
                engines[site.approach] = await stack.enter_async_context(engine)
                version = engine.version()
            for scenario in scenarios:
                started = time.monotonic()
                for number in range(trials):
                    token = f"{secrets.token_hex(3)}-{scenario}-{number}"
                    runs = [
                        trial(
                            engines[site.approach],
                            site,
                            scenario,
                            throttle,
                            token,
                            tallies.setdefault(
                                (engine_name, throttle, scenario, site.approach), Tally()
                            ),
                        )
                        for site in sites
                    ]
                    if serial or BY_NUMBER[scenario].dead_page:
                        for one in runs:
                            await one
                    else:
                        await asyncio.gather(*runs)
                if progress:
                    print(
                        f"  {engine_name} {throttle or 'none'} scenario {scenario}: {trials}"
                        f" trials in {time.monotonic() - started:.0f} s",
                        file=sys.stderr,
                    )
    return tallies, version


def table(
    tallies: dict[Any, Tally],
    engines: list[str],
    scenarios: list[int],
    throttles: list[str | None],
) -> str:
    """One row per network and scenario; a column group (the three approaches) per engine."""
    header = [
        "network",
        "scenario",
        *(f"{LABELS[e]} {LABELS_SHORT[a]}" for e in engines for a in APPROACHES),
    ]
    rows = [header]
    for throttle in throttles:
        for scenario in scenarios:
            cells = [
                tallies[key].cell() if (key := (e, throttle, scenario, a)) in tallies else "n/a"
                for e in engines
                for a in APPROACHES
            ]
            rows.append([throttle or "none", f"{scenario} {BY_NUMBER[scenario].name}"[:44], *cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per cell (default 20)")
    parser.add_argument("--throttle", choices=["both", "none", "slow3g"], default="both")
    parser.add_argument(
        "--engine",
        choices=[*ENGINES, "all"],
        default="chromium",
        help="the browser engine (default chromium); Slow 3G runs in chromium only",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(str(scenario.number) for scenario in SCENARIOS),
        help="comma-separated scenario numbers (default all)",
    )
    parser.add_argument("--browser", metavar="PATH", help="the Chromium executable")
    parser.add_argument(
        "--serial",
        action="store_true",
        help="one approach at a time (default: the three approaches of a trial run at once)",
    )
    args = parser.parse_args(argv)
    scenarios = [int(part) for part in args.scenarios.split(",")]
    networks: dict[str, list[str | None]] = {
        "both": [None, "slow3g"],
        "none": [None],
        "slow3g": ["slow3g"],
    }
    throttles = networks[args.throttle]
    engines = list(ENGINES) if args.engine == "all" else [args.engine]
    for name in engines:
        locate(name, args.browser)
    started = time.monotonic()
    tallies: dict[Any, Tally] = {}
    versions = []
    with (
        tempfile.TemporaryDirectory(prefix="sitebeacon-bench-") as temp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(temp)
        sites = []
        for approach, directory in build_sites(workdir).items():
            db_url = f"sqlite:///{workdir / (approach + '.db')}"
            base = stack.enter_context(running_receiver(db_url, site_dir=directory))
            store = stack.enter_context(open_store(db_url))
            plan, _ = plan_site(directory)
            plan = replace(plan, base=base)
            sites.append(Site(approach, base, store.records, plan))
        sites.sort(key=lambda site: APPROACHES.index(site.approach))
        for name in engines:
            # Network emulation is Chromium's (CDP): the others run without a throttle.
            networks_here: list[str | None] = throttles if name == "chromium" else []
            if name != "chromium" and None in throttles:
                networks_here = [None]
            found, version = asyncio.run(
                run(
                    name,
                    args.browser,
                    sites,
                    scenarios,
                    args.trials,
                    networks_here,
                    True,
                    args.serial,
                )
            )
            tallies.update(found)
            versions.append(f"{LABELS[name]}: {version}")
    mode = "serial" if args.serial else "approaches in parallel"
    print(
        f"leave records delivered (% of visits) and duplicate rows; {args.trials} trials per"
        f" cell, {mode}; {'; '.join(versions)}; {time.monotonic() - started:.0f} s"
    )
    print(table(tallies, engines, scenarios, throttles))
    errors = [(key, message) for key, tally in tallies.items() for message in tally.failed_runs]
    for (engine, throttle, scenario, approach), message in errors[:20]:
        print(f"error: {engine} {throttle or 'none'} {scenario} {approach}: {message}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
