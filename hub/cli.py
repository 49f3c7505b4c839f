"""The ``hub`` command line."""
from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click

from hub.settings import Settings, load_settings

log = logging.getLogger("hub")


def _settings(ctx: click.Context) -> Settings:
    return ctx.find_object(dict)["settings"]  # type: ignore[no-any-return]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(exists=True, dir_okay=False),
              help="TOML config file (default: $HUB_CONFIG). Env vars HUB_* override it.")
@click.option("--broker", "broker_url", metavar="HOST:PORT",
              help="Kafka bootstrap servers (default: $HUB_BROKER_URL; empty starts the embedded broker).")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, config: str | None, broker_url: str | None, verbose: int) -> None:
    """supervision-hub: agency exports in, shared enforcement leads out.

    With no broker configured, every command runs on an embedded Tansu broker:
    the one `hub broker` keeps up, or else a private one for the command's
    lifetime (in memory only: its data ends with the command)."""
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(config).with_overrides(broker_url=broker_url)
    except (ValueError, OSError) as exc:
        raise click.UsageError(f"bad configuration: {exc}") from exc
    ctx.ensure_object(dict)["settings"] = settings


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so context managers (the embedded
    broker above all) are unwound as on Ctrl-C."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


# -- broker and topics ------------------------------------------------------

@main.command()
@click.option("--port", type=int, default=0, help="Loopback port (default: a free one).")
@click.pass_context
def broker(ctx: click.Context, port: int) -> None:
    """Run the embedded Tansu broker in the foreground, with the hub's topics.

    Other hub commands on this machine (same state dir) use it until it stops (Ctrl-C)."""
    from hub.broker import EmbeddedBroker, forget_running_broker, record_running_broker
    from hub.topics import create_topics

    settings = _settings(ctx)
    _stop_on_sigterm()
    with EmbeddedBroker(port=port).start(log_dir=settings.state_dir) as embedded:
        record_running_broker(settings, embedded)
        try:
            create_topics(settings.with_overrides(broker_url=embedded.bootstrap))
            click.echo(f"embedded broker at {embedded.bootstrap} (memory only); Ctrl-C stops it")
            signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            forget_running_broker(settings)


@main.group(invoke_without_command=True)
@click.pass_context
def topics(ctx: click.Context) -> None:
    """List the broker's topics with partition counts (see `hub topics create`)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(topics_list)


@topics.command("list")
@click.pass_context
def topics_list(ctx: click.Context) -> None:
    """List the broker's topics with partition counts."""
    from hub.broker import broker_for
    from hub.topics import CATALOGUE, create_topics, list_topics

    with broker_for(_settings(ctx)) as (settings, private):
        if private:
            create_topics(settings)
            click.echo("(a private embedded broker was started for this command; "
                       "run `hub broker` to keep one up)")
        described = {t.name: t.description for t in CATALOGUE}
        for name, partitions in list_topics(settings).items():
            click.echo(f"{name:<40} {partitions:>3} partitions  {described.get(name, '')}")


@topics.command("create")
@click.pass_context
def topics_create(ctx: click.Context) -> None:
    """Create every topic the hub owns with explicit partition counts (idempotent)."""
    from hub.broker import broker_for
    from hub.topics import create_topics

    with broker_for(_settings(ctx)) as (settings, _):
        for name, outcome in create_topics(settings).items():
            click.echo(f"{name:<40} {outcome}")


# -- schemas ----------------------------------------------------------------

@main.group()
def schemas() -> None:
    """Avro contracts in schemas/."""


@schemas.command("check")
@click.pass_context
def schemas_check(ctx: click.Context) -> None:
    """Parse every schema; fail if a released one was edited or a new version is
    not backward compatible with the one it replaces."""
    from hub.schemas import LocalRegistry, check

    settings = _settings(ctx)
    problems = check(settings.schema_dir)
    for problem in problems:
        click.echo(f"FAIL {problem}", err=True)
    if problems:
        sys.exit(1)
    registry = LocalRegistry(settings.schema_dir)
    for contract, versions in registry.versions.items():
        click.echo(f"ok {contract}: v{versions[-1].version} (id {versions[-1].schema_id})")


# -- connectors -------------------------------------------------------------

@main.group()
def connector() -> None:
    """Agency connectors (found through entry points)."""


@connector.command("list")
def connector_list() -> None:
    """List installed connectors."""
    from connectors.discovery import available

    for name, cls in available().items():
        click.echo(f"{name:<18} {cls.agency.value:<7} {cls.description}")


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
    not resend rows already delivered."""
    from connectors.discovery import UnknownConnector, load
    from connectors.runner import ConnectorRunner, PublishError
    from hub.broker import broker_for
    from hub.domain.pii import PersonalDataHasher
    from hub.metrics import Metrics
    from hub.topics import create_topics

    try:
        connector_cls = load(name)
    except UnknownConnector as exc:
        raise click.UsageError(str(exc)) from exc
    if follow and not path.is_dir():
        raise click.UsageError("--follow needs a folder as --path")
    if not follow and path.is_dir():
        raise click.UsageError("--path is a folder: add --follow, or name a file")
    _stop_on_sigterm()
    with broker_for(_settings(ctx)) as (settings, _):
        if _settings(ctx).embedded:
            create_topics(settings)
        metrics = Metrics()
        port = _serve_metrics(metrics, settings)
        runner = ConnectorRunner(settings, connector_cls(PersonalDataHasher(settings.pii_key)), metrics)
        click.echo(f"metrics: http://{settings.metrics_host}:{port}/metrics")
        try:
            if follow:
                for summary in runner.follow(path, interval):
                    click.echo(summary.line())
            else:
                click.echo(runner.run_file(path).line())
        except PublishError as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt:
            click.echo("stopped")
        finally:
            runner.close()


@main.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run a stream-processing worker: deduplicate, join by business ID, publish leads.

    Start several to share the partitions; each serves Prometheus metrics."""
    from hub.broker import broker_for
    from hub.metrics import Metrics
    from hub.topics import create_topics
    from hub.worker import run_worker

    with broker_for(_settings(ctx)) as (settings, _):
        if _settings(ctx).embedded:
            create_topics(settings)
        metrics = Metrics()
        port = _serve_metrics(metrics, settings)
        click.echo(f"worker on {settings.broker_url}; metrics: http://{settings.metrics_host}:{port}/metrics",
                   err=True)
        run_worker(settings, metrics)


def _serve_metrics(metrics: Any, settings: Settings) -> int:
    try:
        return int(metrics.serve(settings.metrics_host, settings.metrics_port))
    except OSError:
        port = int(metrics.serve(settings.metrics_host, 0))
        log.warning("metrics port %s is taken; serving on %s", settings.metrics_port, port)
        return port


if __name__ == "__main__":
    main()
