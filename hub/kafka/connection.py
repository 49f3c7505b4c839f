"""How every Kafka client the hub makes reaches the brokers: the bootstrap
servers and the security settings (TLS, SASL/SCRAM), from one place, for
confluent-kafka's producers, consumers and admin clients and for Faust's
aiokafka."""
from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from hub.settings import Settings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


class ConnectionSettingsError(ValueError):
    pass


def _check(settings: Settings) -> None:
    protocol = settings.kafka_security_protocol
    if protocol not in PROTOCOLS:
        raise ConnectionSettingsError(f"HUB_KAFKA_SECURITY_PROTOCOL {protocol!r}: one of {', '.join(PROTOCOLS)}")
    if protocol.startswith("SASL"):
        if settings.kafka_sasl_mechanism not in MECHANISMS:
            raise ConnectionSettingsError(f"HUB_KAFKA_SASL_MECHANISM {settings.kafka_sasl_mechanism!r}: one of "
                                          f"{', '.join(MECHANISMS)}")
        if not (settings.kafka_sasl_username and settings.kafka_sasl_password_file):
            raise ConnectionSettingsError("SASL needs HUB_KAFKA_SASL_USERNAME and HUB_KAFKA_SASL_PASSWORD_FILE")
    if bool(settings.kafka_ssl_cert_file) != bool(settings.kafka_ssl_key_file):
        raise ConnectionSettingsError("a client certificate needs its key: HUB_KAFKA_SSL_CERT_FILE and "
                                      "HUB_KAFKA_SSL_KEY_FILE together")


def _password(settings: Settings) -> str:
    return Path(settings.kafka_sasl_password_file).read_text(encoding="utf-8").strip()


def client_config(settings: Settings) -> dict[str, Any]:
    """librdkafka's settings for a client of the configured cluster."""
    _check(settings)
    config: dict[str, Any] = {"bootstrap.servers": settings.broker_url,
                              "security.protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.startswith("SASL"):
        config.update({"sasl.mechanisms": settings.kafka_sasl_mechanism,
                       "sasl.username": settings.kafka_sasl_username, "sasl.password": _password(settings)})
    if settings.kafka_security_protocol.endswith("SSL"):
        config["ssl.endpoint.identification.algorithm"] = "https"  # the broker's name is checked too
        if settings.kafka_ssl_ca_file:
            config["ssl.ca.location"] = settings.kafka_ssl_ca_file
        if settings.kafka_ssl_cert_file:
            config.update({"ssl.certificate.location": settings.kafka_ssl_cert_file,
                           "ssl.key.location": settings.kafka_ssl_key_file})
    return config


def producer_config(settings: Settings, connection: dict[str, Any]) -> dict[str, object]:
    """What every confluent-kafka producer of the hub shares, on ``connection``
    (the process's ``client_config``, checked once by ``KafkaClients``)."""
    # murmur2: the Java client's partitioner, which the workers' Faust (aiokafka)
    # producer uses too; the workers rely on a key mapping to one partition everywhere.
    return {**connection, "linger.ms": 20, "acks": "all",
            "compression.type": "lz4", "partitioner": "murmur2_random", "enable.idempotence": True,
            "message.timeout.ms": int(settings.publish_timeout_s * 1000)}


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """For aiokafka: verifies the brokers' certificates and names, TLS 1.2 at least."""
    if not settings.kafka_security_protocol.endswith("SSL"):
        return None
    context = ssl.create_default_context(cafile=settings.kafka_ssl_ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.kafka_ssl_cert_file:
        context.load_cert_chain(settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file)
    return context


def faust_credentials(settings: Settings) -> Any:
    """Faust's ``broker_credentials`` for these settings (None: PLAINTEXT)."""
    import faust

    _check(settings)
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(username=settings.kafka_sasl_username, password=_password(settings),
                                     ssl_context=ssl_context(settings), mechanism=settings.kafka_sasl_mechanism)
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    return None
