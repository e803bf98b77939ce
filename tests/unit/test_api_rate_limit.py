"""How long a 429 asks to wait: x-ratelimit-reset as seconds or as a moment, else Retry-After."""

from __future__ import annotations

import pytest
from requests.structures import CaseInsensitiveDict

from smartapp.api.rate_limit import wait_seconds

NOW = 1_700_000_000.0


@pytest.mark.parametrize("headers, wait", [
    ({"X-RateLimit-Reset": "2"}, 2.0),
    ({"x-ratelimit-reset": "0.25"}, 0.25),
    ({"x-ratelimit-reset": str(int((NOW + 3) * 1000))}, 3.0),       # the reset moment in epoch ms
    ({"x-ratelimit-reset": str(int(NOW + 4))}, 4.0),                # ... or in epoch seconds
    ({"x-ratelimit-reset": str(int((NOW - 10) * 1000))}, 0.0),      # a moment already past
    ({"Retry-After": "5"}, 5.0),
    ({"Retry-After": "Tue, 14 Nov 2023 22:13:26 GMT"}, 6.0),       # HTTP-date, NOW + 6 s
    ({"x-ratelimit-reset": "1", "Retry-After": "9"}, 1.0),
    ({}, None),
    ({"x-ratelimit-reset": "soon"}, None),
    ({"x-ratelimit-reset": "-3"}, None),
    ({"x-ratelimit-reset": "nan"}, None),
    ({"Retry-After": "whenever"}, None),
])
def test_wait_seconds(headers, wait):
    assert wait_seconds(CaseInsensitiveDict(headers), now=NOW) == wait
