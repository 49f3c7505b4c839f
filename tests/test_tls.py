"""TLS from every client the hub makes, for real: the embedded broker behind
a TLS terminator (Debian's stunnel) that requires a client certificate,
advertising only the TLS address, so a client that did not speak TLS with
its certificate could not get a single record through. A connector
(confluent-kafka), a worker (Faust's aiokafka), the admin client and the
lead reader all go through it."""
from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time
from pathlib import Path
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from connectors.runner import ConnectorRunner
from connectors.samr_penalty import SamrPenaltyConnector
from hub.kafka.broker import EmbeddedBroker, free_port
from hub.kafka.connection import client_config
from hub.domain.pii import PersonalDataHasher
from hub.kafka.readers import final_leads
from hub.edge.metrics import Metrics
from hub.apps.pipeline import wait_until_processed
from hub.devtools.samples import synthetic_penalties
from hub.settings import Settings, load_settings
from hub.kafka.tls import make_ca, make_cert
from hub.kafka.topics import create_topics
from hub.trust import ensure_keys
from tests.conftest import TEST_PII_KEY
from tests.helpers import start_worker

pytestmark = pytest.mark.broker
STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel")


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> Iterator[tuple[Settings, Path]]:
    assert STUNNEL, "stunnel not found: apt-get install stunnel4 (setup.sh does)"
    tmp = tmp_path_factory.mktemp("tls")
    certs = tmp / "certs"
    now = dt.datetime.now(dt.UTC)
    make_ca(certs, now)
    make_cert(certs, "broker", ["localhost"], now)
    make_cert(certs, "hub-worker", [], now, client=True)
    port = free_port()
    with EmbeddedBroker(tmp / "kafka", advertised=f"localhost:{port}").start() as broker:
        conf = tmp / "stunnel.conf"
        conf.write_text(f"foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{port}\n"
                        f"connect = 127.0.0.1:{broker.port}\ncert = {certs}/broker.pem\nkey = {certs}/broker.key\n"
                        f"CAfile = {certs}/ca.pem\nverifyChain = yes\nsslVersionMin = TLSv1.2\n")
        stunnel = subprocess.Popen([STUNNEL, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            settings = load_settings(environ={}).on_embedded(
                f"localhost:{port}", state_dir=tmp / "state", pii_key=TEST_PII_KEY, app_id="hub-tls",
                kafka_security_protocol="SSL", kafka_ssl_ca_file=str(certs / "ca.pem"),
                kafka_ssl_cert_file=str(certs / "hub-worker.pem"), kafka_ssl_key_file=str(certs / "hub-worker.key"))
            deadline = time.monotonic() + 20
            while True:
                try:
                    AdminClient({**client_config(settings), "log_level": 0}).list_topics(timeout=2)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            yield settings, tmp
        finally:
            stunnel.terminate()
            stunnel.wait(10)


def _refused(config: dict[str, object]) -> bool:
    try:
        AdminClient({**config, "log_level": 0}).list_topics(timeout=3)
    except Exception:
        return True
    return False


def test_without_tls_or_without_a_client_certificate_nothing_gets_through(tls) -> None:
    settings, _ = tls
    assert _refused({"bootstrap.servers": settings.broker_url})  # plaintext to the TLS port
    no_cert = {k: v for k, v in client_config(settings).items() if not k.startswith(("ssl.certificate", "ssl.key"))}
    assert _refused(no_cert)
    assert not _refused(client_config(settings))


def test_a_connector_and_a_worker_carry_leads_over_tls(tls, make_clients) -> None:
    settings, tmp = tls
    clients = make_clients(settings)
    create_topics(clients)  # the admin client
    ensure_keys(settings)
    path = synthetic_penalties(tmp / "penalties.csv", rows=200, businesses=40, seed=3)
    runner = ConnectorRunner(clients, SamrPenaltyConnector(PersonalDataHasher(TEST_PII_KEY)), Metrics())
    assert runner.run_file(path).events_published == 200  # confluent-kafka's producer
    runner.close()
    worker = start_worker(settings, tmp, HUB_LIFECYCLE_TICK_S="0", HUB_KAFKA_SECURITY_PROTOCOL="SSL",
                          HUB_KAFKA_SSL_CA_FILE=settings.kafka_ssl_ca_file,
                          HUB_KAFKA_SSL_CERT_FILE=settings.kafka_ssl_cert_file,
                          HUB_KAFKA_SSL_KEY_FILE=settings.kafka_ssl_key_file)
    try:
        wait_until_processed(clients, timeout_s=180)  # Faust's aiokafka consumer and producer, over TLS
    except Exception:
        worker.terminate()
        raise AssertionError(worker.communicate(timeout=30)[1][-3000:]) from None
    finally:
        worker.terminate()
        worker.wait(30)
    leads = final_leads(clients)  # the lead reader, verifying the worker's signatures
    assert leads and all(lead["rules"] == ["REPEAT_OFFENDER"] for lead in leads.values())
