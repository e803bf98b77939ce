"""One bounded GET of a key from the key server: no redirects, a size cap and a wall-clock deadline."""

from __future__ import annotations

import re
import threading
import time

import requests
import urllib3

from smartapp.errors import KeyUnavailable

_KEY_SERVER_RE = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?")
# Past the fetch deadline a waiting caller gives up even if the fetching thread is still stuck
# (e.g. in DNS, which requests' connect timeout does not cover).
FETCH_GRACE_SECONDS = 0.5
_READ_CHUNK = 4096


class KeyFetcher:
    """GETs `key_server + key_id`; every failure to ask is KeyUnavailable, never a hang or another error."""

    def __init__(self, key_server: str, *, session: requests.Session | None = None, connect_timeout: float = 1.0,
                 read_timeout: float = 1.0, max_bytes: int = 16384) -> None:
        key_server = key_server.rstrip("/")
        if not _KEY_SERVER_RE.fullmatch(key_server):
            raise ValueError(f"key server must be an http(s) scheme and host only, got {key_server!r}")
        self._key_server = key_server
        self._session = session or requests.Session()
        self._timeout = (connect_timeout, read_timeout)
        self.seconds = connect_timeout + read_timeout  # the most one fetch may take
        self._max_bytes = max_bytes

    def fetch(self, key_id: str) -> tuple[int, bytes]:
        """(status, body) of the GET, run in a helper thread so DNS, a stall or a drip cannot outlast the deadline.

        `key_id` must already be known safe to append to the URL (the resolver checks its shape).
        """
        url = self._key_server + key_id
        deadline = time.monotonic() + self.seconds
        result: list[tuple[int, bytes]] = []
        failure: list[KeyUnavailable] = []
        done = threading.Event()

        def run() -> None:
            try:
                result.append(self._get(url, deadline))
            except KeyUnavailable as exc:
                failure.append(exc)
            except Exception as exc:  # anything else is still "could not ask", never a 500
                failure.append(KeyUnavailable("key_fetch_failed", detail=type(exc).__name__))
            finally:
                done.set()

        threading.Thread(target=run, name="smartapp-key-fetch", daemon=True).start()
        if not done.wait(self.seconds + FETCH_GRACE_SECONDS):
            raise KeyUnavailable("key_fetch_timeout")
        if failure:
            raise failure[0]
        return result[0]

    def _get(self, url: str, deadline: float) -> tuple[int, bytes]:
        try:
            response = self._session.get(
                url,
                timeout=self._timeout,
                allow_redirects=False,  # a redirect could point anywhere; the host is fixed
                stream=True,
                headers={"Accept": "application/x-pem-file, */*", "Accept-Encoding": "identity"},
            )
        except requests.Timeout as exc:
            raise KeyUnavailable("key_fetch_timeout", detail=type(exc).__name__) from None
        except requests.RequestException as exc:
            raise KeyUnavailable("key_server_unreachable", detail=type(exc).__name__) from None
        with response:
            if response.status_code != 200:
                return response.status_code, b""
            if response.headers.get("Content-Encoding", "identity").lower() != "identity":
                raise KeyUnavailable("key_response_encoded")
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > self._max_bytes:
                raise KeyUnavailable("key_response_too_large")
            chunks: list[bytes] = []
            total = 0
            while True:
                # read1 returns whatever one socket read gives, so a 1 byte/s drip still reaches
                # this deadline check instead of blocking inside a fixed-size read.
                if time.monotonic() > deadline:
                    raise KeyUnavailable("key_fetch_timeout")
                try:
                    chunk = response.raw.read1(_READ_CHUNK, decode_content=False)
                except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
                    raise KeyUnavailable("key_fetch_failed", detail=type(exc).__name__) from None
                if not chunk:
                    break
                total += len(chunk)
                if total > self._max_bytes:
                    raise KeyUnavailable("key_response_too_large")
                chunks.append(chunk)
        return 200, b"".join(chunks)
