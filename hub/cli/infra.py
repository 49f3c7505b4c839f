"""`hub broker`, `hub topics`, `hub schemas`: the broker and its contracts."""
from __future__ import annotations

import sys

import click

from hub.cli.common import main, settings_of, stop_on_sigterm

@main.command()
@click.option("--port", type=int, default=0, help="Loopback port (default: a free one).")
@click.pass_context
def broker(ctx: click.Context, port: int) -> None:
    """Run the embedded Tansu broker in the foreground, with the hub's topics.

    Other hub commands on this machine (same state dir) use it until it stops (Ctrl-C)."""
    from hub.broker import EmbeddedBroker, forget_running_broker, record_running_broker
    from hub.topics import create_topics

    settings = settings_of(ctx)
    stop_on_sigterm()
    with EmbeddedBroker(port=port).start(log_dir=settings.state_dir) as embedded:
        try:
            create_topics(settings.on_embedded(embedded.bootstrap))
            # Only a broker with its topics is offered to later commands.
            record_running_broker(settings, embedded)
            click.echo(f"embedded broker at {embedded.bootstrap} (memory only); Ctrl-C stops it")
            while (status := embedded.exited(0.5)) is None:
                pass
            # Its data went with it: clients must not carry on as if it were there.
            raise click.ClickException(f"the embedded broker died (exit status {status}); its data is gone")
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

    with broker_for(settings_of(ctx)) as (settings, private):
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

    with broker_for(settings_of(ctx)) as (settings, _):
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
    from hub.schemas import IncompatibleSchema, register
    from hub.topics import CATALOGUE, team_topics

    settings = settings_of(ctx)
    if not settings.schema_registry_url:
        raise click.UsageError("no schema registry configured (HUB_SCHEMA_REGISTRY_URL); "
                               "without one, schemas/registry.json is the registry")
    try:
        for line in register(settings.schema_dir, settings.schema_registry_url,
                             {f"{t.name}-value": t.contract for t in [*CATALOGUE, *team_topics(settings)]}):
            click.echo(line)
    except IncompatibleSchema as exc:
        raise click.ClickException(str(exc)) from exc
