"""`hub leads` and `hub teams`: following leads, teams' answers, the lifecycle's clock."""
from __future__ import annotations

import time

import click

from hub.cli.common import existing_broker, main, require_pii_key, settings_of, stop_on_sigterm, team_config

@main.command("teams")
@click.option("--acls", is_flag=True, help="Print the Kafka ACLs that give each team its topic and nothing else.")
@click.pass_context
def teams_command(ctx: click.Context, acls: bool) -> None:
    """List the joint-enforcement teams (HUB_TEAMS_FILE) and what each receives."""
    from hub.domain.teams import describe
    from hub.topics import FEEDBACK_TOPIC, LEADS_TOPIC

    settings = settings_of(ctx)
    teams = team_config(settings)
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
        teams = team_config(settings_of(ctx))
        if team not in teams:
            raise click.BadParameter(f"no team {team!r} (known: {', '.join(sorted(teams)) or 'none'})",
                                     param_hint="--team")
        topic = teams[team].topic
    settings = existing_broker(ctx, "follow")
    stop_on_sigterm()
    try:
        for lead in follow_leads(settings, from_beginning, topic=topic):
            if matches(lead, region_prefix, severity.upper() if severity else None):
                click.echo(json.dumps(to_json_ready(lead), ensure_ascii=False) if as_json else render(lead) + "\n")
    except KeyboardInterrupt:
        pass


def _feedback_command(action: str, verb: str, note_label: str | None) -> None:
    """``hub leads <verb> LEAD_ID --team NAME [...]``: one status change onto the feedback topic."""

    @click.option("--team", required=True, metavar="NAME", help="The team answering (it must receive the lead).")
    @click.option("--by", metavar="DESK", help="Who answers, as a desk or role; kept as a keyed token.")
    @click.argument("lead_id")
    @click.pass_context
    def command(ctx: click.Context, lead_id: str, team: str, by: str | None, note: str | None = None) -> None:
        from hub.domain.lifecycle import FeedbackRejected, check_feedback
        from hub.domain.pii import PersonalDataHasher
        from hub.domain.teams import recipients
        from hub.feedback import feedback, publish_feedback
        from hub.leadview import find_lead

        require_pii_key(settings_of(ctx))
        settings = existing_broker(ctx, verb)
        teams = team_config(settings)
        lead = find_lead(settings, lead_id)
        if lead is None:
            raise click.ClickException(f"no lead {lead_id} on the lead topic")
        if team not in {t.name for t in recipients(lead, teams)}:
            raise click.ClickException(f"team {team!r} does not receive lead {lead_id}")
        try:  # the worker checks again; this gives the user the answer now
            check_feedback(lead["status"], action, note)
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

    settings = existing_broker(ctx, "tick")
    when = dt.datetime.fromisoformat(at).timestamp() if at else time.time()
    n = publish_ticks(settings, when)
    click.echo(f"tick at {dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat()} on {n} partitions")
