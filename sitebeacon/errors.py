"""The one exception family the CLI turns into a one-line message and exit status 2."""


class SitebeaconError(Exception):
    """A problem the user can fix (bad config, missing directory, no browser); never a crash."""
