"""``hub report``: the periodic report (通报) as an Excel workbook and Markdown."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from typing import TYPE_CHECKING

from hub.cli.common import existing_broker, kafka_clients, main

if TYPE_CHECKING:
    from hub.kafka.clients import KafkaClients


def write_report(clients: KafkaClients, start: dt.date, end: dt.date, out: Path, team: str | None = None,
                 region: str | None = None) -> tuple[Path, Path]:
    from connectors.discovery import available
    from hub.domain.teams import load_teams
    from hub.apps.report import Period, build, collect, write_markdown, write_xlsx

    settings = clients.settings
    teams = load_teams(settings.teams_file)
    if team is not None and team not in teams:
        raise click.UsageError(f"no team {team!r} in {settings.teams_file}")
    period = Period(start, end)
    leads, received, events, dead = collect(clients, teams, period)
    connectors = {name: c.agency.value for name, c in available().items()}
    report = build(leads, received, events, dead, teams, connectors, period, settings.rules, settings.lifecycle,
                   team, region)
    stem = f"report-{start}-{end}" + (f"-{team}" if team else "") + (f"-{region}" if region else "")
    return write_xlsx(report, out / f"{stem}.xlsx"), write_markdown(report, out / f"{stem}.md")


@main.command()
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day (CST).")
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day (CST), included.")
@click.option("--team", metavar="NAME", help="Only this team's rows.")
@click.option("--region", metavar="CODE", help="Only counties whose division code starts with CODE.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder for the workbook (.xlsx) and its Markdown twin (.md).")
@click.pass_context
def report(ctx: click.Context, start: dt.datetime, end: dt.datetime, team: str | None, region: str | None,
           out: Path) -> None:
    """The periodic report (通报): per team and county, the leads first
    published in the period and what became of them (acknowledged in time,
    overdue, transferred, filed by the police, closed, reopened, flagged for
    oversight), rectifications and re-checks; per agency and connector, the
    records, rejects and reporting delays (迟报)."""
    if end < start:
        raise click.UsageError("--to is before --from")
    clients = kafka_clients(ctx, existing_broker(ctx, "report on"))
    for path in write_report(clients, start.date(), end.date(), out, team, region):
        click.echo(f"wrote {path}")
