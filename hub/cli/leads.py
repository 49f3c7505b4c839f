"""`hub leads` and `hub teams`: following leads, teams' answers, the lifecycle's clock."""
from __future__ import annotations

import time
from pathlib import Path

import click

from hub.cli.common import (existing_broker, kafka_clients, main, require_pii_key, settings_of, stop_on_sigterm,
                            team_config)
from hub.settings import Settings
from hub.trust import Role, Signer

@main.command("teams")
@click.pass_context
def teams_command(ctx: click.Context) -> None:
    """List the joint-enforcement teams (HUB_TEAMS_FILE) and what each receives
    (`hub acls` prints the Kafka ACLs that give each its topics)."""
    from hub.domain.teams import describe, without_oversight
    from hub.flow.topics import LEADS_TOPIC

    settings = settings_of(ctx)
    teams = team_config(settings)
    if not teams:
        click.echo(f"no teams configured ({settings.teams_file} is missing or empty)")
        return
    click.echo(f"{len(teams)} teams from {settings.teams_file}; operators read {LEADS_TOPIC} in full\n")
    click.echo("\n".join(line for team in teams.values() for line in describe(team)))
    uncovered = without_oversight(teams)
    if uncovered:
        click.echo(f"\nWARNING: no oversight team covers {', '.join(uncovered)}: flagged leads there reach no "
                   "procuratorate")


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

    from hub.kafka.readers import follow_leads

    from hub.apps.leadview import matches, render
    from hub.apps.leadview import to_json_ready
    from hub.flow.topics import LEADS_TOPIC

    topic = LEADS_TOPIC
    if team is not None:
        teams = team_config(settings_of(ctx))
        if team not in teams:
            raise click.BadParameter(f"no team {team!r} (known: {', '.join(sorted(teams)) or 'none'})",
                                     param_hint="--team")
        topic = teams[team].topic
    clients = kafka_clients(ctx, existing_broker(ctx, "follow"))
    stop_on_sigterm()
    try:
        for lead in follow_leads(clients, from_beginning, topic=topic):
            if matches(lead, region_prefix, severity.upper() if severity else None):
                click.echo(json.dumps(to_json_ready(lead), ensure_ascii=False) if as_json else render(lead) + "\n")
    except KeyboardInterrupt:
        pass


def _feedback_command(action: str, verb: str, note_label: str | None) -> None:
    """``hub leads <verb> LEAD_ID --key FILE [...]``: one status change, signed
    by the team whose key it is, onto that team's feedback topic."""

    @click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
                  help="The team's private key (default: $HUB_KEY_FILE): the answer is that team's.")
    @click.option("--by", metavar="DESK", help="Who answers, as a desk or role; kept as a keyed token.")
    @click.argument("lead_id")
    @click.pass_context
    def command(ctx: click.Context, lead_id: str, key_path: Path | None, by: str | None,
                note: str | None = None) -> None:
        from hub.domain.lifecycle import FeedbackRejected, check_feedback
        from hub.domain.pii import PersonalDataHasher
        from hub.edge.feedback import feedback, publish_feedback
        from hub.kafka.readers import find_lead

        require_pii_key(settings_of(ctx))
        settings = existing_broker(ctx, verb)
        clients = kafka_clients(ctx, settings)
        team = _own(settings, Role.TEAM, key_path)
        teams = team_config(settings)
        if team.name not in teams:
            raise click.ClickException(f"the key is team {team.name}'s, which {settings.teams_file} does not list")
        if teams[team.name].oversees:
            raise click.ClickException(f"team {team.name} is an oversight team: it reads leads and does not "
                                       "change them (the workers refuse its answers)")
        # The team's own topic: the lead as the team receives it, signed by a worker.
        lead = find_lead(clients, lead_id, teams[team.name].topic)
        if lead is None:
            raise click.ClickException(f"no lead {lead_id} on {teams[team.name].topic}: "
                                       f"team {team.name} does not receive it")
        try:  # the worker checks again; this gives the user the answer now
            check_feedback(lead["status"], action, note)
        except FeedbackRejected as exc:
            raise click.ClickException(str(exc)) from exc
        # ID or phone numbers in the note never go onto the topic; the
        # workers scrub the lead's people's names too before keeping it.
        hasher = PersonalDataHasher(settings.pii_key)
        note = hasher.scrub_feedback(note, frozenset(lead.get("person_refs") or ()))
        topic = publish_feedback(clients, feedback(lead, action, team.name, note, hasher.desk(by), time.time()),
                                 team)
        click.echo(f"{lead_id}: {action} by {team.name} sent to {topic}; the workers apply it and republish the lead")

    if note_label is not None:
        required = action in ("CLOSED", "REJECTED")
        command = click.option(note_label, "note", required=required, help=f"The {note_label.strip('-')}.")(command)
    leads.command(verb, help=f"Mark a lead {action}, as the team whose key you hold.")(command)


def _own(settings: Settings, role: Role, key_path: Path | None) -> Signer:
    from hub.trust import TrustError, own_signer

    try:
        return own_signer(settings, role, key_path)
    except TrustError as exc:
        raise click.ClickException(str(exc)) from exc


_feedback_command("ACKNOWLEDGED", "ack", None)
_feedback_command("INVESTIGATING", "investigate", "--note")
_feedback_command("TRANSFERRED", "transfer", "--note")
_feedback_command("CLOSED", "close", "--outcome")
_feedback_command("REJECTED", "reject", "--reason")


@leads.command("tick")
@click.option("--at", "at", metavar="ISO-TIME", help="Check deadlines as of this time (default: now); a time "
              "ahead of the workers' clocks is a drill, which a configured cluster refuses unless HUB_ALLOW_DRILLS.")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
              help="An operator's private key (default: $HUB_KEY_FILE, else the keys directory's operator key).")
@click.pass_context
def leads_tick(ctx: click.Context, at: str | None, key_path: Path | None) -> None:
    """Make the workers check lead deadlines now, or as of another time (drills, tests)."""
    import datetime as dt

    from hub.edge.feedback import publish_ticks
    from hub.trust.keys import key_file

    settings = existing_broker(ctx, "tick")
    when = dt.datetime.fromisoformat(at).timestamp() if at else time.time()
    if when - time.time() > settings.max_tick_ahead_s and not settings.allow_drills:
        # the workers would refuse it too (a dead letter each): say so here, before anything is sent
        raise click.UsageError(f"a tick {when - time.time():.0f} s ahead is a drill, which a configured cluster "
                               "refuses unless HUB_ALLOW_DRILLS is set")
    default = key_file(settings.keys_path, Role.OPERATOR, "operator")
    operator = _own(settings, Role.OPERATOR, key_path or (None if settings.key_file else default))
    n = publish_ticks(kafka_clients(ctx, settings), when, operator)
    click.echo(f"tick at {dt.datetime.fromtimestamp(when, dt.UTC).isoformat()} on {n} partitions, "
               f"signed by {operator.key.trusted.identity}")
