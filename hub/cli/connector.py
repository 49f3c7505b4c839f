"""`hub connector`: agencies' exports onto the event topics."""
from __future__ import annotations

from pathlib import Path

import click

from hub.cli.common import main, require_pii_key, serve_metrics, settings_of, stop_on_sigterm

@main.group()
def connector() -> None:
    """Agency connectors (found through entry points)."""


@connector.command("list")
def connector_list() -> None:
    """List installed connectors."""
    from connectors.discovery import available

    for name, cls in available().items():
        click.echo(f"{name:<18} {cls.agency.value:<7} {cls.description}")


@connector.command("check")
@click.argument("name")
@click.option("--path", "path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A sample export (.csv in UTF-8/UTF-8-BOM/GBK, or .xlsx) in the connector's layout.")
@click.pass_context
def connector_check(ctx: click.Context, name: str, path: Path) -> None:
    """Check connector NAME on a sample export, without a broker; print the report.

    NAME is an installed connector's name, or module:Class for one not
    installed yet. The connector runs over the file as `hub connector run`
    would, and what it would publish is checked: its declaration, every row
    accounted for (events or a rejection with a reason code), the Avro
    contracts, deterministic event IDs, no personal data in clear, and the
    workers' flow taking every event (hub.testing.check_connector). Exit
    status: 0 every check passed, 1 a check failed."""
    from connectors.discovery import UnknownConnector
    from hub.testing import check_connector
    from hub.testing.conformance import connector_class

    try:
        found = connector_class(name)
    except (UnknownConnector, ImportError, AttributeError, TypeError) as exc:
        raise click.UsageError(str(exc)) from exc
    report = check_connector(found, path, settings=settings_of(ctx))
    click.echo(str(report))
    if not report.ok:
        ctx.exit(EXIT_NOT_CONFORMANT)


@connector.command("run")
@click.argument("name")
@click.option("--path", "path", required=True, type=click.Path(exists=True, path_type=Path),
              help="An export file (.csv in UTF-8/UTF-8-BOM/GBK, or .xlsx), or with --follow a folder.")
@click.option("--follow", is_flag=True, help="Watch the folder and process new files as they appear.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between folder scans with --follow.")
@click.pass_context
def connector_run(ctx: click.Context, name: str, path: Path, follow: bool, interval: float) -> None:
    """Publish an agency export through connector NAME; print a summary.

    Bad rows go to the dead-letter topic with the reason; a restarted run does
    not resend rows already delivered. Exit status: 0 every row published,
    3 finished with rows (or the file) rejected, 1 failed (the broker did not
    acknowledge within HUB_PUBLISH_TIMEOUT_S), 130 stopped by a signal; each
    prints the run's summary so far."""
    from confluent_kafka import KafkaException

    from connectors.discovery import UnknownConnector, load
    from connectors.runner import ConnectorRunner, PublishError
    from hub.kafka.broker import broker_for
    from hub.domain.pii import PersonalDataHasher
    from hub.edge.metrics import Metrics
    from hub.kafka.clients import KafkaClients
    from hub.kafka.topics import create_topics

    try:
        connector_cls = load(name)
    except UnknownConnector as exc:
        raise click.UsageError(str(exc)) from exc
    require_pii_key(settings_of(ctx))
    if follow and not path.is_dir():
        raise click.UsageError("--follow needs a folder as --path")
    if not follow and path.is_dir():
        raise click.UsageError("--path is a folder: add --follow, or name a file")
    stop_on_sigterm()
    with broker_for(settings_of(ctx)) as (settings, _), KafkaClients(settings) as clients:  # the run's clients
        if settings_of(ctx).embedded:
            create_topics(clients)
        metrics = Metrics()
        port = serve_metrics(metrics, settings)
        connector = connector_cls(PersonalDataHasher(settings.pii_key), settings.validation)
        runner = ConnectorRunner(clients, connector, metrics)
        click.echo(f"metrics: http://{settings.metrics_host}:{port}/metrics")
        try:
            if follow:
                for summary in runner.follow(path, interval):
                    click.echo(summary.line())
            else:
                summary = runner.run_file(path)
                click.echo(summary.line())
                if summary.rows_rejected:
                    ctx.exit(EXIT_REJECTED)
        except (PublishError, KafkaException) as exc:
            # KafkaException: the broker did not answer the cursors' read (it
            # was away longer than the reads retry): nothing was sent yet
            if runner.summary is not None:  # how far it got: the cursor says where a rerun resumes
                click.echo(runner.summary.line())
            raise click.ClickException(str(exc) if isinstance(exc, PublishError) else
                                       f"the broker at {settings.broker_url} did not answer: {exc.args[0].str()}; "
                                       "cursor kept at the last checkpoint") from exc
        except (KeyboardInterrupt, SystemError) as exc:
            # A signal that lands in a delivery callback reaches us as the
            # SystemError confluent-kafka raises around it.
            if isinstance(exc, SystemError) and not isinstance(exc.__cause__, KeyboardInterrupt):
                raise
            if follow:  # how a watching connector is meant to end
                click.echo("stopped")
                return
            if runner.summary is not None:
                click.echo(runner.summary.line())
            click.echo("stopped before the end; a rerun resumes from the last checkpoint")
            ctx.exit(EXIT_STOPPED)
        finally:
            runner.close()


# `hub connector run`: the run finished, but rejected rows (or the file).
EXIT_REJECTED = 3
# `hub connector run`: stopped by SIGTERM or Ctrl-C before the end (128 + SIGINT).
EXIT_STOPPED = 130
# `hub connector check`: a check failed.
EXIT_NOT_CONFORMANT = 1
