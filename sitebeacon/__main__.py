"""`python -m sitebeacon` is the `sitebeacon` command."""

from sitebeacon.cli import main

raise SystemExit(main())
