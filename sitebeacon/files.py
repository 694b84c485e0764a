"""Writing files so that a reader never sees half of one: every stage that writes output
(pages, the external module, reports) goes through here."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from sitebeacon.errors import SitebeaconError

TEMP_SUFFIX = ".sitebeacon-tmp"
"""Temporary files are `.<name>.<pid>.sitebeacon-tmp` beside their target (inject removes
ones a killed run left behind)."""


def write_atomic(path: str | Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` so that readers see the old file or the new one, never half.

    The temporary file sits in the same directory (os.replace is atomic only within a file
    system), gets permission bits `mode` (the old file's), and is removed if anything fails.
    It is created with `mode` directly: a separate chmod is one more journalled metadata
    update per page on ext4, so it happens only when the umask took bits away.
    """
    directory, name = os.path.split(path)
    temp = os.path.join(directory, f".{name}.{os.getpid()}{TEMP_SUFFIX}")
    created = replaced = False
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode & 0o777)
        created = True
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if os.fstat(fd).st_mode & 0o7777 != mode:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(temp, path)
        replaced = True
    except OSError as error:
        raise SitebeaconError(f"{path}: cannot write: {error.strerror or error}") from error
    finally:
        if created and not replaced:
            os.unlink(temp)


def write_output(path: str | Path, data: bytes) -> None:
    """Write a command's output file: atomically when it is (or will be) a regular file; as a
    plain write when it is a device, a pipe or a socket (`-o /dev/stdout`, `-o /dev/null`), which
    a rename would replace with a regular file."""
    if str(path) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as error:
        raise SitebeaconError(f"{path}: cannot write: {error.strerror or error}") from error
    if mode is None or stat.S_ISREG(mode):
        write_atomic(path, data)
        return
    try:
        with open(path, "wb") as handle:
            handle.write(data)
    except OSError as error:
        raise SitebeaconError(f"{path}: cannot write: {error.strerror or error}") from error
