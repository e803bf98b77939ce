"""rediss:// against a real TLS redis-server with a private CA: trusted, untrusted (with the reason), unchecked."""

from __future__ import annotations

import copy
import uuid

import pytest

from smartapp import create_app
from tests.conftest import TOKEN_KEY, load_fixture, service_environment
from tests.support.commands import findings, run
from tests.support.redis_tls import TlsRedisServer
from tests.support.webhook_client import post_signed


@pytest.fixture(scope="module")
def tls_server():
    server = TlsRedisServer().start()
    yield server
    server.stop()


def app_on(cloud, tmp_path, url: str, **settings):
    env = service_environment(cloud, tmp_path, store="redis", redis_url=url)
    return create_app({**env, **settings})


def install(client, signer):
    body = copy.deepcopy(load_fixture("install.json"))
    body["installData"]["installedApp"]["installedAppId"] = str(uuid.uuid4())
    return post_signed(client, signer, body)


def test_a_private_ca_given_as_a_file_or_as_text_is_trusted(cloud, tmp_path, signer, tls_server):
    for ca in (f"@{tls_server.ca_path}", tls_server.ca_path.read_text()):
        app = app_on(cloud, tmp_path, tls_server.url(), SMARTAPP_REDIS_CA_CERT=ca)
        client = app.test_client()
        assert client.get("/readyz").status_code == 200
        assert install(client, signer).status_code == 200
        assert "TLS verify full" in app.extensions["smartapp"].store.describe()


def test_without_the_ca_every_request_is_503_and_the_log_says_why(cloud, tmp_path, signer, tls_server,
                                                                     smartapp_log):
    client = app_on(cloud, tmp_path, tls_server.url()).test_client()
    response = install(client, signer)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert client.get("/readyz").status_code == 503
    details = {getattr(record, "detail", "") for record in smartapp_log.records}
    assert any("TLS certificate" in detail and "certificate" in detail for detail in details), details


def test_a_certificate_for_another_host_name_is_named_as_such_and_ca_mode_accepts_it(cloud, tmp_path, signer,
                                                                                        tls_server, smartapp_log):
    # The server's certificate names `localhost`; 127.0.0.1 is not in it.
    url = tls_server.url("127.0.0.1")
    ca = f"@{tls_server.ca_path}"
    strict = app_on(cloud, tmp_path, url, SMARTAPP_REDIS_CA_CERT=ca).test_client()
    assert install(strict, signer).status_code == 503
    assert any("TLS host name" in getattr(record, "detail", "") for record in smartapp_log.records)
    chain_only = app_on(cloud, tmp_path, url, SMARTAPP_REDIS_CA_CERT=ca, SMARTAPP_REDIS_TLS_VERIFY="ca")
    assert install(chain_only.test_client(), signer).status_code == 200


@pytest.mark.parametrize("settings", [{"SMARTAPP_REDIS_TLS_VERIFY": "none"}, {}], ids=["variable", "query"])
def test_verification_off_accepts_a_certificate_nobody_vouches_for(cloud, tmp_path, signer, tls_server, settings):
    url = tls_server.url("127.0.0.1") + ("" if settings else "?ssl_cert_reqs=none")
    app = app_on(cloud, tmp_path, url, **settings)
    assert install(app.test_client(), signer).status_code == 200
    assert "TLS verify none" in app.extensions["smartapp"].store.describe()


@pytest.mark.slow
def test_doctor_gives_the_tls_reason_and_the_fix(tmp_path, tls_server):
    env = {"REDIS_URL": tls_server.url(), "SMARTAPP_TOKEN_KEYS": TOKEN_KEY}
    untrusted = run(["doctor", "--offline"], env, tmp_path)
    assert untrusted.returncode == 1
    store = [message for level, topic, message in findings(untrusted.stdout) if topic == "store"]
    assert store and "TLS certificate" in store[0], untrusted.stdout
    assert "SMARTAPP_REDIS_CA_CERT" in untrusted.stdout
    trusted = run(["doctor", "--offline"], {**env, "SMARTAPP_REDIS_CA_CERT": f"@{tls_server.ca_path}"}, tmp_path)
    assert "single server" in trusted.stdout and "TLS verify full" in trusted.stdout, trusted.stdout
    assert {level for level, topic, _ in findings(trusted.stdout) if topic == "store"} == {"ok"}


def test_a_plain_url_to_the_tls_port_is_unavailable_not_a_crash(cloud, tmp_path, signer, tls_server):
    client = app_on(cloud, tmp_path, f"redis://localhost:{tls_server.port}/0").test_client()
    assert install(client, signer).status_code == 503
