"""Where a report goes: a device stays a device (`-o /dev/null` as root once replaced the
system's /dev/null with a regular file), a regular file is replaced whole, errors are one line."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sitebeacon.errors import SitebeaconError
from sitebeacon.files import write_output


def test_a_fifo_is_written_to_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_output(fifo, b"report")
        assert os.read(reader, 100) == b"report"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_dev_null_stays_a_character_device() -> None:
    write_output("/dev/null", b"x" * 1000)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_regular_file_is_replaced_whole_and_nothing_is_left_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_bytes(b"old")
    write_output(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_an_unwritable_place_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(SitebeaconError, match="cannot write"):
        write_output(tmp_path / "missing" / "report.html", b"x")
