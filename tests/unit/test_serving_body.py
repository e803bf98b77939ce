"""wsgi.input of the default worker: PEP 3333's reads over a body that arrives in parts, and what it keeps."""

from __future__ import annotations

import pytest

from smartapp.serving.connection import BodyStream
from smartapp.serving.request_head import RequestHead


class Arrivals:
    """Stands in for the connection: each receive_body call delivers the next part of the body."""

    def __init__(self, head: RequestHead, parts: list[bytes]) -> None:
        self.head = head
        self.parts = list(parts)
        self.receives = 0

    def receive_body(self, head: RequestHead) -> None:
        assert head is self.head
        if not self.parts:
            raise ConnectionError("the client closed before its body ended")
        self.receives += 1
        head.body += self.parts.pop(0)
        head.complete = not self.parts


def stream(parts: list[bytes]) -> tuple[BodyStream, Arrivals, RequestHead]:
    head = RequestHead()
    arrivals = Arrivals(head, parts)
    return BodyStream(arrivals, head), arrivals, head  # type: ignore[arg-type]


def test_read_in_pieces_keeps_only_what_is_not_read_yet():
    body, arrivals, head = stream([b"a" * 1000, b"b" * 1000, b"c" * 1000])
    pieces = []
    while piece := body.read(700):
        pieces.append(piece)
        assert len(head.body) < 1000  # never the whole body
    assert b"".join(pieces) == b"a" * 1000 + b"b" * 1000 + b"c" * 1000
    assert arrivals.receives == 3


def test_read_without_a_size_waits_for_the_end():
    body, _, _ = stream([b"one ", b"two ", b"three"])
    assert body.read() == b"one two three"
    assert body.read() == b"" and body.read(10) == b""


def test_lines_across_parts():
    body, _, _ = stream([b"first\nsec", b"ond\n", b"last"])
    assert body.readline() == b"first\n"
    assert body.readline(3) == b"sec"
    assert list(body) == [b"ond\n", b"last"]


def test_readlines_with_a_hint_stops_after_it():
    body, _, _ = stream([b"a\nb\nc\nd\n"])
    assert body.readlines(3) == [b"a\n", b"b\n"]
    assert body.readlines() == [b"c\n", b"d\n"]


def test_a_body_that_breaks_off_fails_the_read():
    body, _, head = stream([b"partial"])
    head.complete = False
    body._connection.parts = []  # nothing more will come
    with pytest.raises(OSError):
        body.read()
