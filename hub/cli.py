"""The ``hub`` command line."""
from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

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


def _existing_broker(ctx: click.Context, doing: str) -> Settings:
    """Settings on a broker that already holds data: the configured one, or the
    embedded one `hub broker` keeps up. A private broker would be empty."""
    from hub.broker import running_embedded_broker

    settings = _settings(ctx)
    if not settings.embedded:
        return settings
    shared = running_embedded_broker(settings)
    if shared is None:
        click.echo(f"no broker configured and no `hub broker` running: nothing to {doing}", err=True)
        sys.exit(1)
    return settings.with_overrides(broker_url=shared)


def _require_pii_key(settings: Settings) -> None:
    """The development key is public: on a real broker it would make the
    hashes of ID numbers reversible by brute force."""
    from hub.settings import DEV_PII_KEY

    if not settings.embedded and settings.pii_key == DEV_PII_KEY:
        raise click.UsageError("HUB_PII_KEY is the development key; set a secret key before "
                               "publishing to a configured broker")


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
        try:
            create_topics(settings.with_overrides(broker_url=embedded.bootstrap))
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


@schemas.command("register")
@click.pass_context
def schemas_register(ctx: click.Context) -> None:
    """Register schemas/ with the configured schema registry (HUB_SCHEMA_REGISTRY_URL),
    subject <topic>-value per topic; refuses a version the registry finds incompatible."""
    from hub.schemas import IncompatibleSchema, register
    from hub.topics import CATALOGUE, team_topics

    settings = _settings(ctx)
    if not settings.schema_registry_url:
        raise click.UsageError("no schema registry configured (HUB_SCHEMA_REGISTRY_URL); "
                               "without one, schemas/registry.json is the registry")
    try:
        for line in register(settings.schema_dir, settings.schema_registry_url,
                             {f"{t.name}-value": t.contract for t in [*CATALOGUE, *team_topics(settings)]}):
            click.echo(line)
    except IncompatibleSchema as exc:
        raise click.ClickException(str(exc)) from exc


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
    not resend rows already delivered. Exit status: 0 every row published,
    3 finished with rows (or the file) rejected, 1 failed (the broker did not
    acknowledge within HUB_PUBLISH_TIMEOUT_S), 130 stopped by a signal; each
    prints the run's summary so far."""
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
    _require_pii_key(_settings(ctx))
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
        connector = connector_cls(PersonalDataHasher(settings.pii_key), settings.validation)
        runner = ConnectorRunner(settings, connector, metrics)
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
        except PublishError as exc:
            if runner.summary is not None:  # how far it got: the cursor says where a rerun resumes
                click.echo(runner.summary.line())
            raise click.ClickException(str(exc)) from exc
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
        stop_board = _serve_board(metrics, settings)
        try:
            run_worker(settings, metrics)
        finally:
            stop_board()


def _parse_sources(values: tuple[str, ...]) -> list[tuple[str, Path]]:
    from connectors.discovery import UnknownConnector, load

    sources = []
    for value in values:
        kind, sep, path = value.partition("=")
        if not sep or not path:
            raise click.BadParameter(f"{value!r}: expected KIND=PATH", param_hint="--source")
        try:
            load(kind)
        except UnknownConnector as exc:
            raise click.BadParameter(str(exc), param_hint="--source") from exc
        if not Path(path).is_file():
            raise click.BadParameter(f"{path}: no such file", param_hint="--source")
        sources.append((kind, Path(path)))
    return sources


@main.command()
@click.option("--source", "sources", multiple=True, required=True, metavar="KIND=PATH",
              help="A connector name and an export file; repeat for more files.")
@click.option("--leads-out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the final state of each lead here, one JSON object per line.")
@click.option("--timeout", default=900.0, show_default=True, help="Seconds to wait for the workers.")
@click.pass_context
def backfill(ctx: click.Context, sources: tuple[str, ...], leads_out: Path, timeout: float) -> None:
    """Load historical exports in one shot: run the connectors over the files and
    a worker until every event is processed, write the leads, print a summary."""
    import json

    from hub.broker import broker_for
    from hub.metrics import Metrics
    from hub.pipeline import run_pipeline, to_json_ready
    from hub.topics import create_topics

    _require_pii_key(_settings(ctx))
    parsed = _parse_sources(sources)
    with broker_for(_settings(ctx)) as (settings, _):
        create_topics(settings)
        metrics = Metrics()
        _serve_metrics(metrics, settings)
        summary = run_pipeline(settings, parsed, metrics, timeout_s=timeout)
    with open(leads_out, "w", encoding="utf-8") as out:
        for lead in sorted(summary.leads.values(), key=lambda l: l["lead_id"]):
            out.write(json.dumps(to_json_ready(lead), ensure_ascii=False) + "\n")
    for line in summary.lines():
        click.echo(line)
    click.echo(f"leads written to {leads_out}")


@main.command()
@click.option("--follow", is_flag=True, help="Stay up after the sample data (Ctrl-C stops).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write the sample exports (default: a temporary folder).")
@click.pass_context
def demo(ctx: click.Context, follow: bool, data_dir: Path | None) -> None:
    """The whole hub on built-in sample data: five agency exports (GBK, UTF-8
    with BOM, Excel; bad rows and a duplicate included) become events, then
    leads, printed as they appear."""
    import tempfile
    import threading

    from hub.broker import broker_for
    from hub.leadview import follow_leads, render
    from hub.metrics import Metrics
    from hub.pipeline import run_pipeline
    from hub.samples import write_scenario
    from hub.topics import create_topics

    if not _settings(ctx).embedded:  # sample CRITICAL leads, the development key: never on a real cluster
        raise click.UsageError("hub demo runs on its own embedded broker; unset the broker URL")
    folder = data_dir or Path(tempfile.mkdtemp(prefix="hub-demo-"))
    files = write_scenario(folder)
    sources = list(files.items()) + [("samr.penalty", files["samr.penalty"].with_name("行政处罚-市级重报.csv"))]
    sources[-1][1].write_bytes(files["samr.penalty"].read_bytes() + b"\r\n")  # the city system's resend
    with broker_for(_settings(ctx)) as (settings, _):
        create_topics(settings)
        metrics = Metrics()
        port = _serve_metrics(metrics, settings)
        click.echo(f"embedded broker {settings.broker_url}; metrics: http://{settings.metrics_host}:{port}/metrics")
        click.echo(f"sample exports in {folder}:")
        for kind, path in sources:
            click.echo(f"  {kind:<16} {path.name}")
        printing = threading.Event()

        def print_leads() -> None:
            for lead in follow_leads(settings, from_beginning=True, should_stop=printing.is_set):
                click.echo("\n" + render(lead))

        printer = threading.Thread(target=print_leads, daemon=True)
        printer.start()
        summary = run_pipeline(settings, sources, metrics, stop_when_done=not follow,
                               on_done=lambda s: time.sleep(1.0))
        printing.set()
        printer.join(5)
    click.echo("")
    for line in summary.lines():
        click.echo(line)


@main.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Broker, topics and partitions, worker lag per event topic, connectors' last
    success, dead-letter counts and open leads, at a glance."""
    from hub.status import collect

    for line in collect(_existing_broker(ctx, "report")).lines():
        click.echo(line)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per record.")
@click.pass_context
def unresolved(ctx: click.Context, as_json: bool) -> None:
    """Records without a USCC not tied to a business: parked (no registered
    business matches yet) or ambiguous (several do), with why, the candidates
    and how long they have waited."""
    import dataclasses
    import json

    from hub.unresolved import collect_unresolved, report

    records = collect_unresolved(_existing_broker(ctx, "report"))
    for line in ([json.dumps(dataclasses.asdict(r), ensure_ascii=False) for r in records] if as_json
                 else report(records)):
        click.echo(line)


@main.command()
@click.option("--events", default=100_000, show_default=True, help="Synthetic penalty rows to push through.")
@click.option("--businesses", default=20_000, show_default=True, help="Distinct businesses among them.")
@click.pass_context
def bench(ctx: click.Context, events: int, businesses: int) -> None:
    """Benchmark on a private embedded broker: connector rows/s, end-to-end
    events/s, event-to-lead latency and peak memory, beside a plain
    confluent-kafka consume/json/produce loop on the same broker."""
    from hub.bench import run_benchmark
    from hub.broker import EmbeddedBroker
    from hub.topics import create_topics

    settings = _settings(ctx)
    if not settings.embedded:
        raise click.UsageError("hub bench runs on its own embedded broker; unset the broker URL")
    with EmbeddedBroker().start(log_dir=settings.state_dir) as embedded:
        on_broker = settings.with_overrides(broker_url=embedded.bootstrap, metrics_port=0)
        create_topics(on_broker)
        pid = embedded.process.pid if embedded.process else None
        result = run_benchmark(on_broker, events, businesses, pid)
    for line in result.lines():
        click.echo(line)


@main.command()
@click.option("--storms", default=10, show_default=True, help="Storms to run against the clean run.")
@click.option("--kills", default=8, show_default=True, help="Workers SIGKILLed per storm (every 2-9 s).")
@click.option("--pauses", default=1, show_default=True, help="Workers SIGSTOPped 8-15 s per storm.")
@click.option("--rows", default=600, show_default=True, help="Rows per connector (about 5 events each, all told).")
@click.option("--seed", default=1, show_default=True, help="Seed of the exports and of the storms.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where exports, broker and process logs go (default: under the state dir).")
@click.pass_context
def chaos(ctx: click.Context, storms: int, kills: int, pauses: int, rows: int, seed: int,
          workdir: Path | None) -> None:
    """Crash-test the hub Jepsen-style on embedded brokers: a clean run, then
    STORMS runs with two workers SIGKILLed and restarted, one paused beyond
    the session timeout and a connector killed mid-file; each compared with
    the clean run (open leads field by field, events applied once, rejected
    rows dead-lettered). Exit status 1 unless every storm was identical."""
    from hub.chaos import Storm, storms as run_storms

    settings = _settings(ctx)
    if not settings.embedded:
        raise click.UsageError("hub chaos starts its own embedded brokers; unset the broker URL")
    folder = workdir or settings.state_dir / "chaos"
    identical = run_storms(folder, storms, Storm(kills=kills, pauses=pauses), rows, seed,
                           lambda line: click.echo(line))
    click.echo(f"logs and exports: {folder}")
    if identical < storms:
        ctx.exit(1)


@main.group()
def leads() -> None:
    """Shared enforcement leads."""


@leads.command("tail")
@click.option("--region", "region_prefix", metavar="CODE", help="Only leads whose division code starts with CODE.")
@click.option("--severity", type=click.Choice(["LOW", "MEDIUM", "HIGH", "CRITICAL"], case_sensitive=False),
              help="Only leads of this severity or higher.")
@click.option("--from-beginning", is_flag=True, help="Replay the leads already published first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per lead instead of text.")
@click.option("--team", metavar="NAME", help="Follow this team's topic (its leads, redacted to its clearance).")
@click.pass_context
def leads_tail(ctx: click.Context, region_prefix: str | None, severity: str | None, from_beginning: bool,
               as_json: bool, team: str | None) -> None:
    """Print leads as they arrive on the lead topic, or a team's (Ctrl-C stops)."""
    import json

    from hub.leadview import follow_leads, matches, render
    from hub.pipeline import to_json_ready
    from hub.topics import LEADS_TOPIC

    topic = LEADS_TOPIC
    if team is not None:
        teams = _teams(_settings(ctx))
        if team not in teams:
            raise click.BadParameter(f"no team {team!r} (known: {', '.join(sorted(teams)) or 'none'})",
                                     param_hint="--team")
        topic = teams[team].topic
    settings = _existing_broker(ctx, "follow")
    _stop_on_sigterm()
    try:
        for lead in follow_leads(settings, from_beginning, topic=topic):
            if matches(lead, region_prefix, severity.upper() if severity else None):
                click.echo(json.dumps(to_json_ready(lead), ensure_ascii=False) if as_json else render(lead) + "\n")
    except KeyboardInterrupt:
        pass


def _serve_board(metrics: Any, settings: Settings) -> Callable[[], None]:
    """The read-only lead board and the open/overdue gauges, when teams are configured."""
    import threading

    from hub.board import BoardCollector, LeadBoard, follow_into, serve_board

    teams = _teams(settings)
    if settings.web_port < 0 or not teams:
        return lambda: None
    board = LeadBoard(teams)
    metrics.registry.register(BoardCollector(board))
    stop = threading.Event()
    follow_into(board, settings, stop)
    try:
        server = serve_board(board, settings.web_host, settings.web_port)
    except OSError:
        server = serve_board(board, settings.web_host, 0)
        log.warning("lead board port %s is taken; serving on %s", settings.web_port, server.server_port)
    click.echo(f"lead board: http://{settings.web_host}:{server.server_port}/", err=True)

    def close() -> None:
        stop.set()
        server.shutdown()

    return close


def _teams(settings: Settings) -> dict[str, Any]:
    from hub.domain.teams import TeamConfigError, load_teams

    try:
        return load_teams(settings.teams_file)
    except TeamConfigError as exc:
        raise click.ClickException(f"teams configuration: {exc}") from exc


@main.command("teams")
@click.option("--acls", is_flag=True, help="Print the Kafka ACLs that give each team its topic and nothing else.")
@click.pass_context
def teams_command(ctx: click.Context, acls: bool) -> None:
    """List the joint-enforcement teams (HUB_TEAMS_FILE) and what each receives."""
    from hub.domain.teams import describe
    from hub.topics import FEEDBACK_TOPIC, LEADS_TOPIC

    settings = _settings(ctx)
    teams = _teams(settings)
    if not teams:
        click.echo(f"no teams configured ({settings.teams_file} is missing or empty)")
        return
    if not acls:
        click.echo(f"{len(teams)} teams from {settings.teams_file}; operators read {LEADS_TOPIC} in full\n")
        click.echo("\n".join(line for team in teams.values() for line in describe(team)))
        return
    server = "--bootstrap-server \"$KAFKA\" --command-config \"$ADMIN_CONFIG\""
    click.echo("# team principals User:team-<name>; operators User:hub-operator; workers User:hub-worker")
    click.echo(f"kafka-acls.sh {server} --add --allow-principal User:hub-operator --operation Read "
               f"--topic {LEADS_TOPIC} --group hub-")
    for team in teams.values():
        principal = f"User:team-{team.name}"
        click.echo(f"kafka-acls.sh {server} --add --allow-principal {principal} --operation Read "
                   f"--operation Describe --topic {team.topic} --group team-{team.name} --resource-pattern-type prefixed")
        click.echo(f"kafka-acls.sh {server} --add --allow-principal {principal} --operation Write "
                   f"--topic {FEEDBACK_TOPIC}")


def _serve_metrics(metrics: Any, settings: Settings) -> int:
    try:
        return int(metrics.serve(settings.metrics_host, settings.metrics_port))
    except OSError:
        port = int(metrics.serve(settings.metrics_host, 0))
        log.warning("metrics port %s is taken; serving on %s", settings.metrics_port, port)
        return port


def _feedback_command(action: str, verb: str, note_label: str | None) -> None:
    """``hub leads <verb> LEAD_ID --team NAME [...]``: one status change onto the feedback topic."""

    @click.option("--team", required=True, metavar="NAME", help="The team answering (it must receive the lead).")
    @click.option("--by", metavar="DESK", help="Who answers, as a desk or role; kept as a keyed token.")
    @click.argument("lead_id")
    @click.pass_context
    def command(ctx: click.Context, lead_id: str, team: str, by: str | None, note: str | None = None) -> None:
        from hub.domain.lifecycle import FeedbackRejected, LeadMark, apply_feedback
        from hub.domain.pii import PersonalDataHasher
        from hub.domain.teams import route
        from hub.feedback import feedback, publish_feedback
        from hub.leadview import final_leads

        _require_pii_key(_settings(ctx))
        settings = _existing_broker(ctx, verb)
        teams = _teams(settings)
        lead = final_leads(settings).get(lead_id)
        if lead is None:
            raise click.ClickException(f"no lead {lead_id} on the lead topic")
        if team not in {t.name for t, _ in route(lead, teams)}:
            raise click.ClickException(f"team {team!r} does not receive lead {lead_id}")
        try:  # the worker checks again; this gives the user the answer now
            apply_feedback(LeadMark(0, "", lead["rules"][0], lead["window_start"], status=lead["status"]),
                           action, team, note, 0)
        except FeedbackRejected as exc:
            raise click.ClickException(str(exc)) from exc
        # Never onto the topic in clear: the lead's people (by their tokens)
        # and ID or phone numbers in the note; who answered, as a token.
        hasher = PersonalDataHasher(settings.pii_key)
        note = hasher.scrub_feedback(note, frozenset(lead.get("person_refs") or ()))
        publish_feedback(settings, feedback(lead, action, team, note, hasher.desk(by), time.time()))
        click.echo(f"{lead_id}: {action} by {team} sent; the workers apply it and republish the lead")

    if note_label is not None:
        required = action in ("CLOSED", "REJECTED")
        command = click.option(note_label, "note", required=required, help=f"The {note_label.strip('-')}.")(command)
    leads.command(verb, help=f"Mark a lead {action} (onto the feedback topic).")(command)


_feedback_command("ACKNOWLEDGED", "ack", None)
_feedback_command("INVESTIGATING", "investigate", "--note")
_feedback_command("TRANSFERRED", "transfer", "--note")
_feedback_command("CLOSED", "close", "--outcome")
_feedback_command("REJECTED", "reject", "--reason")


@leads.command("tick")
@click.option("--at", "at", metavar="ISO-TIME", help="Check deadlines as of this time (default: now).")
@click.pass_context
def leads_tick(ctx: click.Context, at: str | None) -> None:
    """Make the workers check lead deadlines now, or as of another time (drills, tests)."""
    import datetime as dt

    from hub.feedback import publish_ticks

    settings = _existing_broker(ctx, "tick")
    when = dt.datetime.fromisoformat(at).timestamp() if at else time.time()
    n = publish_ticks(settings, when)
    click.echo(f"tick at {dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat()} on {n} partitions")


if __name__ == "__main__":
    main()
