"""Commands that run the pipeline: `hub worker`, `backfill`, `demo`, `status`, `unresolved`, `bench`, `chaos`."""
from __future__ import annotations

import time
from pathlib import Path

import click

from hub.cli.common import (existing_broker, kafka_clients, main, require_pii_key, serve_board, serve_metrics,
                            settings_of)

@main.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run a stream-processing worker: deduplicate, join by business ID, publish leads.

    Start several to share the partitions; each serves Prometheus metrics."""
    from hub.edge.audit_log import AuditLog
    from hub.kafka.broker import broker_for
    from hub.edge.metrics import Metrics
    from hub.kafka.topics import create_topics
    from hub.trust import Role, signer
    from hub.edge.worker import run_worker
    from hub.kafka.clients import KafkaClients

    with broker_for(settings_of(ctx)) as (settings, _), KafkaClients(settings) as clients:
        if settings_of(ctx).embedded:
            create_topics(clients)
        metrics = Metrics()
        port = serve_metrics(metrics, settings)
        click.echo(f"worker on {settings.broker_url}; metrics: http://{settings.metrics_host}:{port}/metrics",
                   err=True)
        # one audit chain for the worker and its board; one set of Kafka clients for the process
        audit = AuditLog(clients, signer(settings, Role.WORKER, settings.worker_name), metrics)
        stop_board = serve_board(metrics, clients, audit)
        try:
            run_worker(clients, metrics, audit=audit)
        finally:
            stop_board()
        audit.close(settings.publish_timeout_s)  # the board's last records with the worker's


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

    from hub.kafka.broker import broker_for
    from hub.edge.metrics import Metrics
    from hub.apps.pipeline import run_pipeline
    from hub.apps.leadview import to_json_ready
    from hub.kafka.clients import KafkaClients
    from hub.kafka.topics import create_topics

    require_pii_key(settings_of(ctx))
    parsed = _parse_sources(sources)
    with broker_for(settings_of(ctx)) as (settings, _), KafkaClients(settings) as clients:
        create_topics(clients)
        metrics = Metrics()
        serve_metrics(metrics, settings)
        summary = run_pipeline(clients, parsed, metrics, timeout_s=timeout)
    with open(leads_out, "w", encoding="utf-8") as out:
        for lead in sorted(summary.leads.values(), key=lambda entry: entry["lead_id"]):
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
    """The whole hub on built-in sample data: the agencies' exports (GBK, UTF-8
    with BOM, Excel; bad rows and a duplicate included; 12315 complaints, the
    serious-violation list) become events, then leads, printed as they appear."""
    import datetime as dt
    import tempfile
    import threading

    from hub.edge.audit_log import read_trail
    from hub.audit.verify import verify
    from hub.kafka.broker import broker_for
    from hub.cli.report import write_report
    from hub.domain.events import CST
    from hub.kafka.readers import follow_leads
    from hub.apps.leadview import render
    from hub.edge.metrics import Metrics
    from hub.apps.pipeline import run_pipeline
    from hub.devtools.samples import write_scenario
    from hub.devtools.signal_samples import write_signals
    from hub.kafka.clients import KafkaClients
    from hub.kafka.topics import create_topics
    from hub.trust import TrustStore

    if not settings_of(ctx).embedded:  # sample CRITICAL leads, the development key: never on a real cluster
        raise click.UsageError("hub demo runs on its own embedded broker; unset the broker URL")
    folder = data_dir or Path(tempfile.mkdtemp(prefix="hub-demo-"))
    files = write_scenario(folder)
    sources = [*list(files.items()), ("samr.penalty", files["samr.penalty"].with_name("行政处罚-市级重报.csv"))]
    sources[-1][1].write_bytes(files["samr.penalty"].read_bytes() + b"\r\n")  # the city system's resend
    sources += write_signals(folder / "signals")
    with broker_for(settings_of(ctx)) as (settings, _), KafkaClients(settings) as clients:
        create_topics(clients)
        metrics = Metrics()
        port = serve_metrics(metrics, settings)
        click.echo(f"embedded broker {settings.broker_url}; metrics: http://{settings.metrics_host}:{port}/metrics")
        click.echo(f"sample exports in {folder}:")
        for kind, path in sources:
            click.echo(f"  {kind:<16} {path.name}")
        printing = threading.Event()

        def print_leads() -> None:
            for lead in follow_leads(clients, from_beginning=True, should_stop=printing.is_set):
                click.echo("\n" + render(lead))

        printer = threading.Thread(target=print_leads, daemon=True)
        printer.start()
        summary = run_pipeline(clients, sources, metrics, stop_when_done=not follow,
                               on_done=lambda s: time.sleep(1.0))
        printing.set()
        printer.join(5)
        trail = verify(read_trail(clients), TrustStore.load(settings.trust_path))  # before the broker goes
        today = dt.datetime.now(CST).date()
        report = write_report(clients, today - dt.timedelta(days=30), today, folder)
    click.echo("")
    for line in summary.lines():
        click.echo(line)
    click.echo(f"audit trail: {'; '.join(trail.lines())}")
    click.echo(f"report (通报) of the last 30 days: {report[0]} and {report[1].name}")
    click.echo(f"signing keys and trust store: {settings.keys_path} (`hub keys list`)")


@main.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Broker, topics and partitions, worker lag per event topic, connectors' last
    success, dead-letter counts and open leads, at a glance."""
    from hub.apps.status import collect

    for line in collect(kafka_clients(ctx, existing_broker(ctx, "report"))).lines():
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

    from hub.apps.unresolved import collect_unresolved, report

    records = collect_unresolved(kafka_clients(ctx, existing_broker(ctx, "report")))
    for line in ([json.dumps(dataclasses.asdict(r), ensure_ascii=False) for r in records] if as_json
                 else report(records)):
        click.echo(line)


@main.command()
@click.option("--events", default=100_000, show_default=True, help="Synthetic penalty rows to push through.")
@click.option("--businesses", default=20_000, show_default=True, help="Distinct businesses among them.")
@click.pass_context
def bench(ctx: click.Context, events: int, businesses: int) -> None:
    """Benchmark on an embedded broker of its own (a fresh log directory): connector rows/s, end-to-end
    events/s, event-to-lead latency and peak memory, beside a plain
    confluent-kafka consume/json/produce loop on the same broker."""
    from hub.devtools.bench import run_benchmark
    from hub.kafka.broker import EmbeddedBroker
    from hub.kafka.clients import KafkaClients
    from hub.kafka.topics import create_topics

    import tempfile

    settings = settings_of(ctx)
    if not settings.embedded:
        raise click.UsageError("hub bench runs on its own embedded broker; unset the broker URL")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    # a broker of its own, on a fresh log directory: its disk figure is the bench's alone
    with tempfile.TemporaryDirectory(prefix="bench-", dir=settings.state_dir) as home, \
            EmbeddedBroker(Path(home) / "kafka", extra_config={"log.cleaner.backoff.ms": "1000"}).start() as embedded:
        # changelog segments roll every 10 s, so the cleaner compacts them within the run
        on_broker = settings.on_embedded(embedded.bootstrap, metrics_port=0, compacted_segment_ms=10_000)
        with KafkaClients(on_broker) as clients:  # the run's, handed to every phase
            create_topics(clients)
            result = run_benchmark(clients, events, businesses, embedded)
    for line in result.lines():
        click.echo(line)


@main.command()
@click.option("--storms", default=10, show_default=True, help="Storms to run against the clean run.")
@click.option("--kills", default=8, show_default=True, help="Workers SIGKILLed per storm (every 2-9 s).")
@click.option("--pauses", default=1, show_default=True, help="Workers SIGSTOPped 8-15 s per storm.")
@click.option("--broker-kills", default=1, show_default=True,
              help="Broker JVMs SIGKILLed per storm, each restarted 1-3 s later on the same log directory.")
@click.option("--broker-stops", default=0, show_default=True,
              help="Graceful stops of the broker per storm, each started again 1-3 s later.")
@click.option("--rows", default=600, show_default=True, help="Rows per connector (about 5 events each, all told).")
@click.option("--seed", default=1, show_default=True, help="Seed of the exports and of the storms.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where exports, broker and process logs go (default: under the state dir).")
@click.pass_context
def chaos(ctx: click.Context, storms: int, kills: int, pauses: int, broker_kills: int, broker_stops: int, rows: int,
          seed: int, workdir: Path | None) -> None:
    """Crash-test the hub Jepsen-style on embedded brokers: a clean run, then
    STORMS runs with two workers SIGKILLed and restarted, one paused beyond
    the session timeout, the broker's JVM SIGKILLed and restarted on its log
    directory, and a connector killed mid-file; each compared with
    the clean run (open leads field by field, events applied once, rejected
    rows dead-lettered). Exit status 1 unless every storm was identical."""
    from hub.devtools.chaos import Storm, storms as run_storms

    settings = settings_of(ctx)
    if not settings.embedded:
        raise click.UsageError("hub chaos starts its own embedded brokers; unset the broker URL")
    folder = workdir or settings.state_dir / "chaos"
    identical = run_storms(folder, storms, Storm(kills=kills, pauses=pauses, broker_kills=broker_kills,
                                                             broker_stops=broker_stops), rows, seed,
                           lambda line: click.echo(line))
    click.echo(f"logs and exports: {folder}")
    if identical < storms:
        ctx.exit(1)
