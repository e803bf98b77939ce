"""The key-fetch budget in the deployment: real gunicorn workers sharing one store."""

from __future__ import annotations

import pytest

from tests.support.key_server import key_id

pytestmark = pytest.mark.slow


@pytest.mark.e2e
@pytest.mark.parametrize("workers", [4, 8])
def test_200_unknown_key_ids_cost_at_most_40_fetches_and_genuine_requests_still_pass(
        cloud, tmp_path, signer, test_key, store_kind, request, workers):
    import json
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from tests.conftest import load_fixture, service_environment
    from testbed.service import Gunicorn

    redis_url = request.getfixturevalue("redis_url") if store_kind == "redis" else None
    server = Gunicorn(service_environment(cloud, tmp_path, store=store_kind, redis_url=redis_url),
                      tmp_path / "gunicorn.log", workers=workers)

    def post(n: int, *, key: str | None = None) -> int:
        body = load_fixture("execute.json")
        body["executionId"] = f"00000000-0000-4000-8000-{n:012d}"
        raw = json.dumps(body).encode()
        headers = {**signer.headers(raw, key_id=key), "Connection": "close"}
        return requests.post(server.url + "/", data=raw, headers=headers, timeout=15).status_code

    try:
        assert post(0) == 200  # one worker fetches SmartThings' key and shares it
        before = cloud.keys.total_fetches
        with ThreadPoolExecutor(16) as pool:
            flood = list(pool.map(lambda n: post(n, key=key_id(5000 + n, region="flood1")), range(1, 201)))
            unknown_fetches = cloud.keys.total_fetches - before
            # While the budget is spent, workers that never fetched the genuine key still verify with it.
            genuine = list(pool.map(post, range(1000, 1000 + 4 * workers)))
    finally:
        server.stop()
    assert set(flood) <= {401, 503} and flood.count(401) == unknown_fetches
    assert unknown_fetches <= 40
    assert genuine == [200] * (4 * workers)
    assert cloud.keys.fetches(test_key.key_id) == 1
