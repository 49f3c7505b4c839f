"""`hub broker`, `hub topics`, `hub schemas`: the broker and its contracts."""
from __future__ import annotations

import sys

import click

from hub.cli.common import main, settings_of, stop_on_sigterm

@main.command()
@click.option("--port", type=int, default=0,
              help="Loopback port (default: the one it had last time, if free, else any free one).")
@click.pass_context
def broker(ctx: click.Context, port: int) -> None:
    """Run the embedded Apache Kafka in the foreground, with the hub's topics.

    Its data lives under the state directory and survives a stop; other hub
    commands on the same state directory use it while it runs (Ctrl-C stops it)."""
    from hub.kafka.broker import EmbeddedBroker, embedded_dir, format_bytes, kafka_version
    from hub.kafka.clients import KafkaClients
    from hub.kafka.topics import create_topics

    settings = settings_of(ctx)
    if not settings.embedded:
        raise click.UsageError("a broker is configured (HUB_BROKER_URL); `hub broker` runs the embedded one")
    stop_on_sigterm()
    embedded = EmbeddedBroker(embedded_dir(settings), port=port).start()
    with embedded:
        try:
            with KafkaClients(settings.on_embedded(embedded.bootstrap)) as clients:
                create_topics(clients)
            click.echo(f"embedded Apache Kafka {kafka_version()} at {embedded.bootstrap} (pid {embedded.pid}); "
                       f"data in {embedded.log_dir} ({format_bytes(embedded.disk_bytes())}), kept across "
                       "restarts; Ctrl-C stops it")
            while (status := embedded.exited(0.5)) is None:
                pass
            raise click.ClickException(
                f"the embedded broker exited by itself (status {status}); its data stays in {embedded.log_dir}. "
                f"Its log ({embedded.log_file}) ends:\n{embedded.log_tail()}")
        except KeyboardInterrupt:
            click.echo(f"stopping; data kept in {embedded.log_dir} ({format_bytes(embedded.disk_bytes())})")


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
    from hub.kafka.broker import broker_for
    from hub.kafka.clients import KafkaClients
    from hub.kafka.topics import all_topics, create_topics, list_topics

    with broker_for(settings_of(ctx)) as (settings, private), KafkaClients(settings) as clients:
        if private:
            create_topics(clients)
        described = {t.name: t.description for t in all_topics(settings)}
        for name, partitions in list_topics(clients).items():
            click.echo(f"{name:<40} {partitions:>3} partitions  {described.get(name, '')}")


@topics.command("create")
@click.pass_context
def topics_create(ctx: click.Context) -> None:
    """Create every topic the hub owns with explicit partition counts (idempotent)."""
    from hub.kafka.broker import broker_for
    from hub.kafka.clients import KafkaClients
    from hub.kafka.topics import create_topics

    with broker_for(settings_of(ctx)) as (settings, _), KafkaClients(settings) as clients:
        for name, outcome in create_topics(clients).items():
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
    from hub.kafka.schemas import LocalRegistry, check

    settings = settings_of(ctx)
    problems = check(settings.schema_dir)
    for problem in problems:
        click.echo(f"FAIL {problem}", err=True)
    if problems:
        sys.exit(1)
    registry = LocalRegistry(settings.schema_dir)
    for contract, versions in registry.versions.items():
        click.echo(f"ok {contract}: v{versions[-1].version} (id {versions[-1].schema_id})")


@schemas.command("register")
@click.pass_context
def schemas_register(ctx: click.Context) -> None:
    """Register schemas/ with the configured schema registry (HUB_SCHEMA_REGISTRY_URL),
    subject <topic>-value per topic; refuses a version the registry finds incompatible."""
    from hub.kafka.schemas import IncompatibleSchema, register
    from hub.kafka.topics import all_topics

    settings = settings_of(ctx)
    if not settings.schema_registry_url:
        raise click.UsageError("no schema registry configured (HUB_SCHEMA_REGISTRY_URL); "
                               "without one, schemas/registry.json is the registry")
    try:
        for line in register(settings.schema_dir, settings.schema_registry_url,
                             {f"{t.name}-value": t.contract for t in all_topics(settings)}):
            click.echo(line)
    except IncompatibleSchema as exc:
        raise click.ClickException(str(exc)) from exc
