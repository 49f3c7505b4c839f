"""The ``hub`` command group and what its commands share."""
from __future__ import annotations

import logging
import signal
import sys
from typing import TYPE_CHECKING, Any, cast
from collections.abc import Callable

import click

from hub.settings import Settings, load_settings

if TYPE_CHECKING:
    from hub.kafka.clients import KafkaClients

log = logging.getLogger("hub")


def settings_of(ctx: click.Context) -> Settings:
    found = ctx.find_object(dict)
    assert found is not None, "the hub group sets its settings first"
    return cast(Settings, found["settings"])


class HubGroup(click.Group):
    """The ``hub`` group: an embedded broker that cannot start or be reached
    is a one-line error naming it (exit 1), never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from hub.kafka.broker import BrokerError

        try:
            return super().invoke(ctx)
        except BrokerError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=HubGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(exists=True, dir_okay=False),
              help="TOML config file (default: $HUB_CONFIG). Env vars HUB_* override it.")
@click.option("--broker", "broker_url", metavar="HOST:PORT",
              help="Kafka bootstrap servers (default: $HUB_BROKER_URL; empty starts the embedded broker).")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, config: str | None, broker_url: str | None, verbose: int) -> None:
    """supervision-hub: agency exports in, shared enforcement leads out.

    With no broker configured, every command runs on the embedded Apache Kafka
    of its state directory: the one `hub broker` keeps up, or else the same
    broker started for the command's lifetime (its data is kept on disk)."""
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(config).with_overrides(broker_url=broker_url)
    except (ValueError, OSError) as exc:
        raise click.UsageError(f"bad configuration: {exc}") from exc
    ctx.ensure_object(dict)["settings"] = settings


def existing_broker(ctx: click.Context, doing: str) -> Settings:
    """Settings on a broker that already holds data: the configured one, or the
    embedded one on the state directory (running, or started for this
    command's lifetime when it has data). None yet: nothing to do."""
    from hub.kafka.broker import broker_for, embedded_dir, running_broker

    settings = settings_of(ctx)
    if not settings.embedded:
        return settings
    if running_broker(embedded_dir(settings)) is None and not (embedded_dir(settings) / "cluster.id").exists():
        click.echo(f"no broker configured and no embedded broker's data in {settings.state_dir}: "
                   f"nothing to {doing}", err=True)
        sys.exit(1)
    return ctx.with_resource(broker_for(settings))[0]


def kafka_clients(ctx: click.Context, settings: Settings) -> KafkaClients:
    """The command's Kafka clients, made once for ``settings`` (the broker it
    runs on) and handed to whatever it calls; closed as the command ends,
    before a broker it started for its lifetime (``existing_broker``) stops."""
    from hub.kafka.clients import KafkaClients

    return ctx.with_resource(KafkaClients(settings))


def require_pii_key(settings: Settings) -> None:
    """The development key is public: on a real broker it would make the
    hashes of ID numbers reversible by brute force."""
    from hub.settings import DEV_PII_KEY

    if not settings.embedded and settings.pii_key == DEV_PII_KEY:
        raise click.UsageError("HUB_PII_KEY is the development key; set a secret key before "
                               "publishing to a configured broker")


def stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so context managers (the embedded
    broker above all) are unwound as on Ctrl-C."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)



def team_config(settings: Settings) -> dict[str, Any]:
    from hub.domain.teams import TeamConfigError, load_teams

    try:
        return load_teams(settings.teams_file)
    except TeamConfigError as exc:
        raise click.ClickException(f"teams configuration: {exc}") from exc


def serve_metrics(metrics: Any, settings: Settings) -> int:
    try:
        return int(metrics.serve(settings.metrics_host, settings.metrics_port, settings.http))
    except OSError:
        port = int(metrics.serve(settings.metrics_host, 0, settings.http))
        log.warning("metrics port %s is taken; serving on %s", settings.metrics_port, port)
        return port


def serve_board(metrics: Any, clients: KafkaClients, audit: Any = None) -> Callable[[], None]:
    """The read-only lead board and the open/overdue gauges, when teams are
    configured; it follows the team topics with the process's ``clients``."""
    import threading

    from hub.apps.board import BoardCollector, LeadBoard, Sessions, follow_into, serve_board
    from hub.trust import ensure_keys
    from hub.trust.signatures import TrustStoreFile

    settings = clients.settings
    teams = team_config(settings)
    if settings.web_port < 0 or not teams:
        return lambda: None
    board = LeadBoard(teams)
    metrics.registry.register(BoardCollector(board))
    stop = threading.Event()
    follow_into(board, clients, stop)
    ensure_keys(settings)
    sessions = Sessions(TrustStoreFile(settings.trust_path), settings.board_session_hours)
    record = audit.record if audit else lambda notes: None
    try:
        server = serve_board(board, settings.web_host, settings.web_port, sessions, settings.web_allowed_hosts,
                             record, settings.http)
    except OSError:
        server = serve_board(board, settings.web_host, 0, sessions, settings.web_allowed_hosts, record, settings.http)
        log.warning("lead board port %s is taken; serving on %s", settings.web_port, server.server_port)
    click.echo(f"lead board: http://{settings.web_host}:{server.server_port}/", err=True)

    def close() -> None:
        stop.set()
        server.shutdown()

    return close
