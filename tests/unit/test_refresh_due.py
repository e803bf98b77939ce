"""`refresh-due` without a store: its arguments, and a sweep process's report read back even when cut short."""

from __future__ import annotations

import argparse

import pytest

from smartapp import refresh_due
from smartapp.commands import refresh_due as refresh_due_command


def test_a_report_cut_short_reads_as_a_dead_process():
    """A process killed while it sends a large report (blocked until the parent reads) leaves half a message."""
    import multiprocessing
    import struct

    receiver, sender = multiprocessing.Pipe(duplex=False)
    sender._send(struct.pack("!i", 100_000) + b"\x80" * 10)  # a length header, then the first bytes only
    sender.close()
    assert refresh_due._receive_report(receiver) is None
    receiver, sender = multiprocessing.Pipe(duplex=False)
    sender.close()  # died before sending anything
    assert refresh_due._receive_report(receiver) is None
    receiver, sender = multiprocessing.Pipe(duplex=False)
    sender.send(refresh_due.RefreshReport(checked=3, refreshed=2))
    assert refresh_due._receive_report(receiver) == refresh_due.RefreshReport(checked=3, refreshed=2)


@pytest.mark.parametrize("text,seconds", [("3600", 3600), ("90m", 5400), ("1h", 3600), ("2d", 172800),
                                          ("1.5h", 5400), ("30s", 30)])
def test_durations(text, seconds):
    assert refresh_due_command.duration(text) == seconds


@pytest.mark.parametrize("arguments", [["--within", "soon"], ["--processes", "0"], ["--processes", "two"],
                                       ["--concurrency", "-1"]])
def test_bad_arguments_are_usage_errors(arguments):
    parser = argparse.ArgumentParser()
    refresh_due_command.add_parser(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["refresh-due", *arguments])
    args = parser.parse_args(["refresh-due"])
    assert args.within == 3600 and args.concurrency == 8 and args.run is refresh_due_command.main
