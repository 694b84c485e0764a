"""The `sitebeacon` command: one subcommand per job, each a thin call into its module.

Modules are imported inside the subcommands so that `sitebeacon js` does not pay for uvicorn
or Playwright, and so that a missing optional extra only matters to the command that needs it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sitebeacon import __version__
from sitebeacon.config import Config, load_config
from sitebeacon.errors import SitebeaconError


def _config(args: argparse.Namespace, *search: Path) -> Config:
    """--config wins; then sitebeacon.toml in each `search` dir; then the current directory."""
    if args.config is not None:
        return load_config(Path(args.config))
    for directory in search:
        if (directory / "sitebeacon.toml").is_file():
            return load_config(directory / "sitebeacon.toml")
    return load_config(None, Path.cwd())


def cmd_js(args: argparse.Namespace) -> int:
    from sitebeacon.site.generate import build_module, module_sizes

    config = _config(args)
    if args.sizes:
        for name, size in module_sizes(config).items():
            print(f"{name}\t{size}")
    else:
        sys.stdout.write(build_module(config))
    return 0


def cmd_inject(args: argparse.Namespace) -> int:
    from sitebeacon.site.generate import build_module
    from sitebeacon.site.inject import inject_site

    config = _config(args)
    report = inject_site(Path(args.dir), config, build_module(config))
    for line in report.summary_lines():
        print(line)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from sitebeacon.site.build import build_site

    src = Path(args.src)
    config = _config(args, src)
    out = Path(args.output) if args.output else src / "_site"
    report = build_site(src, out, config)
    for line in report.summary_lines():
        print(line)
    return 0


def cmd_receive(args: argparse.Namespace) -> int:
    from sitebeacon.collect.server import serve

    if args.max_connections is not None and args.max_connections < 1:
        raise SitebeaconError(f"--max-connections must be at least 1, not {args.max_connections}")
    options: dict[str, Any] = {
        "visitors": not args.no_visitors,
        "trusted_proxies": [cidr for group in args.trusted_proxy for cidr in group],
    }
    token = args.dashboard_token or os.environ.get("SITEBEACON_DASHBOARD_TOKEN") or None
    if token is not None:
        # Composed here, so collect never imports report: the receiver only knows "mounts".
        from sitebeacon.report.dashboard import Dashboard

        options["mounts_for"] = lambda store: {"/dashboard": Dashboard(store, token)}
    keeper = None
    if not args.no_summaries:
        # Composed here too: the report's daily summaries, made beside the receiver.
        from sitebeacon.report.keeper import SummaryKeeper

        keeper = SummaryKeeper(args.db)
        keeper.start()
    try:
        serve(
            db_url=args.db,
            host=args.host,
            port=args.port,
            path=args.path,
            allow_origins=list(args.allow_origin),
            site_dir=Path(args.site) if args.site else None,
            max_connections=args.max_connections,
            **options,
        )
    finally:
        if keeper is not None:
            keeper.stop()
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from sitebeacon.report.render import write_report

    write_report(
        args.db,
        output=args.output,
        since=args.since,
        until=args.until,
        fmt=args.format,
        include_bots=args.include_bots,
        site=args.site,
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from sitebeacon.report.importer import import_file

    if args.file == "-":
        result = import_file(args.db, sys.stdin.buffer)
    else:
        try:
            with open(args.file, "rb") as lines:
                result = import_file(args.db, lines)
        except OSError as error:
            raise SitebeaconError(f"cannot read {args.file}: {error.strerror}") from None
    for number, reason in result.bad:
        print(f"sitebeacon: line {number}: {reason}", file=sys.stderr)
    print(
        f"sitebeacon: imported {result.imported} records"
        + (f", {len(result.bad)} bad lines left out" if result.bad else ""),
        file=sys.stderr,
    )
    return 1 if result.bad else 0


def cmd_export(args: argparse.Namespace) -> int:
    from sitebeacon.report.export import export_records

    export_records(args.db, sys.stdout)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from sitebeacon.report.stats import compute_stats, format_stats, stats_json

    stats = compute_stats(args.db, include_bots=args.include_bots)
    sys.stdout.write(stats_json(stats) if args.json else format_stats(stats))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from sitebeacon.proof.engines import ENGINES
    from sitebeacon.proof.verify import run_verify

    site = Path(args.site_dir)
    config = _config(args, site)
    engines = ENGINES if args.engine == "all" else (args.engine,)
    reports = run_verify(
        site, config, engines=engines, browser=args.browser, throttle=args.throttle
    )
    ok = all(report.ok for report in reports)
    if args.json and len(reports) == 1:
        sys.stdout.write(reports[0].to_json())
    elif args.json:
        combined = {"ok": ok, "engines": [report.to_dict() for report in reports]}
        sys.stdout.write(json.dumps(combined, indent=2) + "\n")
    else:
        sys.stdout.write("\n".join(report.table() for report in reports))
    return 0 if ok else 1


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sitebeacon", description="Reliable page-leave reporting for static sites."
    )
    parser.add_argument("--version", action="version", version=f"sitebeacon {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        return sub

    def with_config(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", metavar="PATH", help="config file (default: sitebeacon.toml)")

    js = add("js", "print the minified client module for the configuration")
    with_config(js)
    js.add_argument("--sizes", action="store_true", help="print raw, minified and gzip sizes")
    js.set_defaults(func=cmd_js)

    inject = add("inject", "add the client module to every HTML page of a built site")
    inject.add_argument("dir", metavar="DIR")
    with_config(inject)
    inject.set_defaults(func=cmd_inject)

    build = add("build", "render a Markdown site, then inject the client module")
    build.add_argument("src", metavar="SRC")
    build.add_argument("-o", "--output", metavar="OUT", help="output directory (default SRC/_site)")
    with_config(build)
    build.set_defaults(func=cmd_build)

    receive = add("receive", "run the receiver that stores records")
    receive.add_argument("--db", default="sqlite:///sitebeacon.db", metavar="URL")
    receive.add_argument("--host", default="127.0.0.1")
    receive.add_argument("--port", type=int, default=8787)
    receive.add_argument("--path", default="/collect")
    receive.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN")
    receive.add_argument("--site", metavar="DIR", help="also serve this built site (same origin)")
    receive.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="connections at once; beyond: 503 with Retry-After (default 10000, or the fd limit)",
    )
    receive.add_argument(
        "--dashboard-token",
        metavar="TOKEN",
        help="serve the live dashboard at /dashboard?token=TOKEN (or $SITEBEACON_DASHBOARD_TOKEN)",
    )
    receive.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="CIDR",
        nargs="+",
        help="take the client address from X-Forwarded-For when the peer is in CIDR",
    )
    receive.add_argument(
        "--no-visitors", action="store_true", help="store no daily visitor id (no unique visitors)"
    )
    receive.add_argument(
        "--no-summaries",
        action="store_true",
        help="do not summarise finished days for the report in the background (hourly)",
    )
    receive.set_defaults(func=cmd_receive)

    export = add("export", "write every stored record as JSON lines")
    export.add_argument("--db", default="sqlite:///sitebeacon.db", metavar="URL")
    export.set_defaults(func=cmd_export)

    report = add("report", "the report for a period: one self-contained HTML file, JSON or CSV")
    report.add_argument("--db", default="sqlite:///sitebeacon.db", metavar="URL")
    report.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="default report.html (json: stdout; csv: report-csv/)",
    )
    report.add_argument("--since", metavar="YYYY-MM-DD", help="first day (default: 30 days ago)")
    report.add_argument("--until", metavar="YYYY-MM-DD", help="last day (default: today, UTC)")
    report.add_argument("--format", choices=["html", "json", "csv"], default="html")
    report.add_argument("--include-bots", action="store_true")
    report.add_argument("--site", metavar="HOST", help="only pages of this host")
    report.set_defaults(func=cmd_report)

    load = add("import", "read JSON lines as export writes them into a store (dedup by id)")
    load.add_argument("--db", default="sqlite:///sitebeacon.db", metavar="URL")
    load.add_argument("file", metavar="FILE|-")
    load.set_defaults(func=cmd_import)

    stats = add("stats", "page views, leaves, outbound clicks and the transport mix")
    stats.add_argument("--db", default="sqlite:///sitebeacon.db", metavar="URL")
    stats.add_argument("--json", action="store_true")
    stats.add_argument("--include-bots", action="store_true")
    stats.set_defaults(func=cmd_stats)

    verify = add("verify", "drive real browsers through leave scenarios and report what arrived")
    verify.add_argument("site_dir", metavar="SITE_DIR")
    with_config(verify)
    verify.add_argument(
        "--engine", choices=["chromium", "firefox", "webkit", "all"], default="chromium"
    )
    verify.add_argument("--browser", metavar="PATH", help="the Chromium executable to drive")
    verify.add_argument("--throttle", choices=["slow3g"])
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=cmd_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except SitebeaconError as error:
        print(f"sitebeacon: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    raise SystemExit(main())
