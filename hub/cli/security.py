"""`hub keys`: identities and their signing keys, and the trust store."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hub.cli.common import kafka_clients, main, settings_of
from hub.trust.keys import Role, TrustError, TrustStore, as_json, board_token, create_key, describe

if TYPE_CHECKING:
    from hub.kafka.clients import KafkaClients


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@main.group()
def keys() -> None:
    """Identities' signing keys: private halves in HUB_KEYS_DIR, public
    halves in the trust store (HUB_TRUST_FILE) that workers and teams read.
    Operators alone should be able to write the trust store."""


@keys.command("create")
@click.argument("role", type=click.Choice([r.value for r in Role]))
@click.argument("name")
@click.option("--agency", type=click.Choice(["SAMR", "POLICE", "AGRI"]),
              help="A connector's agency (it may publish that agency's events only); a team's.")
@click.pass_context
def keys_create(ctx: click.Context, role: str, name: str, agency: str | None) -> None:
    """A new key pair for ROLE:NAME (a connector, team, worker or operator).

    An older live key of the identity stays valid until revoked, so keys can
    be rolled without a gap."""
    settings = settings_of(ctx)
    if Role(role) is Role.CONNECTOR and agency is None:
        raise click.UsageError("a connector's key is bound to its agency: give --agency")
    store = TrustStore.load(settings.trust_path)
    made = create_key(settings.keys_path, store, Role(role), name, agency, _now())
    store.save(settings.trust_path)
    click.echo(f"{made.key_id}  {made.trusted.identity}: private key in {settings.keys_path}, "
               f"public key in {settings.trust_path}")


@keys.command("list")
@click.option("--json", "as_json_", is_flag=True, help="The trust store's entries as JSON.")
@click.pass_context
def keys_list(ctx: click.Context, as_json_: bool) -> None:
    """The trust store: every key, whose it is, live or revoked."""
    store = TrustStore.load(settings_of(ctx).trust_path)
    if as_json_:
        click.echo(json.dumps(as_json(store), ensure_ascii=False, indent=1))
    else:
        click.echo("\n".join(describe(store)) or "no keys")


@keys.command("revoke")
@click.argument("which")
@click.pass_context
def keys_revoke(ctx: click.Context, which: str) -> None:
    """Revoke a key (by its ID) or every live key of an identity (ROLE:NAME).

    Workers read the trust store again within a second: records the key
    signed are dead letters (revoked_key) from then on, and its board token
    no longer logs in."""
    settings = settings_of(ctx)
    store = TrustStore.load(settings.trust_path)
    revoked = store.revoke(which, _now())
    if not revoked:
        raise click.ClickException(f"no live key {which!r} in {settings.trust_path}")
    store.save(settings.trust_path)
    for k in revoked:
        click.echo(f"revoked {k.key_id}  {k.identity}")


@keys.command("token")
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The team's (or operator's) private key (default: $HUB_KEY_FILE).")
@click.pass_context
def keys_token(ctx: click.Context, key_path: Path | None) -> None:
    """The lead board credential of the team whose key this is."""
    from hub.trust import held_key

    try:
        key = held_key(settings_of(ctx), key_path, (Role.TEAM, Role.OPERATOR))  # who logs in to the board
    except TrustError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(board_token(key.private))


@keys.command("provision")
@click.pass_context
def keys_provision(ctx: click.Context) -> None:
    """Create the keys the embedded set-up uses, where missing: each installed
    connector, each configured team, the workers and the operators."""
    from hub.trust import demo_identities
    from hub.trust.keys import provision

    settings = settings_of(ctx)
    made = provision(settings.keys_path, settings.trust_path, demo_identities(settings), _now())
    click.echo(f"{len(made)} keys created in {settings.keys_path}; trust store {settings.trust_path}")


@main.command("acls")
@click.option("--apply", "apply_", is_flag=True, help="Create them on the cluster through the admin API "
              "(as a principal allowed to alter ACLs, e.g. the set-up job's super user).")
@click.option("--scram-users", type=click.Path(file_okay=False, path_type=Path),
              help="With --apply: also create each principal's SCRAM-SHA-512 credential from DIR/<principal>.")
@click.option("--make-passwords", type=click.Path(file_okay=False, path_type=Path),
              help="Write a random password file DIR/<principal> (0600) for every principal lacking one.")
@click.pass_context
def acls_command(ctx: click.Context, apply_: bool, scram_users: Path | None, make_passwords: Path | None) -> None:
    """The Kafka ACLs that give each connector, team, agency, the workers and
    the operators exactly their topics (literal names, deny by default)."""
    import secrets

    from connectors.discovery import available
    from hub.kafka.acls import bindings, describe, principals
    from hub.cli.common import team_config
    from hub.kafka.topics import changelog_topic
    from hub.flow.topics import BUSINESS_TABLE, RESOLVER_TABLE

    settings = settings_of(ctx)
    rules = bindings(team_config(settings), {name: c.agency for name, c in available().items()}, settings.app_id,
                     [changelog_topic(settings, t) for t in (BUSINESS_TABLE, RESOLVER_TABLE)])
    if make_passwords is not None:
        make_passwords.mkdir(parents=True, exist_ok=True)
        for name in principals(rules):
            path = make_passwords / name
            if not path.exists():
                path.touch(mode=0o600)
                path.write_text(secrets.token_urlsafe(32))
        click.echo(f"passwords for {len(principals(rules))} principals in {make_passwords}")
        return
    if not apply_:
        click.echo("\n".join(describe(b) for b in rules))
        return
    _apply(kafka_clients(ctx, settings), rules, scram_users)


def _apply(clients: KafkaClients, rules: list[Any], scram_users: Path | None) -> None:
    from confluent_kafka.admin import (ScramCredentialInfo, ScramMechanism, UserScramCredentialAlteration,
                                       UserScramCredentialUpsertion)

    from hub.kafka.acls import principals, to_admin

    client = clients.admin()
    if scram_users is not None:
        missing = [n for n in principals(rules) if not (scram_users / n).exists()]
        if missing:
            raise click.ClickException(f"no password file for {', '.join(missing)} in {scram_users} "
                                       "(hub acls --make-passwords DIR)")
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
        upserts: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(n, info, (scram_users / n).read_text().strip().encode())
            for n in principals(rules)]
        for future in client.alter_user_scram_credentials(upserts).values():
            future.result()
        click.echo(f"{len(upserts)} SCRAM-SHA-512 users created or updated")
    for future in client.create_acls([to_admin(b) for b in rules]).values():
        future.result()
    click.echo(f"{len(rules)} ACLs in place (literal patterns)")


@main.command("certs")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--server", "servers", multiple=True, metavar="NAME=HOST[,HOST]",
              help="A server certificate NAME.pem for these host names (repeatable).")
@click.option("--client", "clients", multiple=True, metavar="NAME",
              help="A client certificate NAME.pem whose principal is User:CN=NAME (repeatable).")
def certs_command(out: Path, servers: tuple[str, ...], clients: tuple[str, ...]) -> None:
    """A private CA (made once) and the certificates it signs, as PEM files."""
    from hub.kafka.tls import make_ca, make_cert

    now = _now()
    make_ca(out, now)
    for spec in servers:
        name, _, hosts = spec.partition("=")
        make_cert(out, name, hosts.split(","), now)
    for name in clients:
        make_cert(out, name, [], now, client=True)
    click.echo(f"CA and {len(servers) + len(clients)} certificates in {out}")


@main.group()
def audit() -> None:
    """The audit trail: who published, saw, changed or was refused what."""


def _trail(ctx: click.Context, file: Path | None) -> list[Any]:
    from hub.edge.audit_log import entry_of, read_trail
    from hub.audit.verify import Unreadable
    from hub.cli.common import existing_broker

    if file is None:
        return read_trail(kafka_clients(ctx, existing_broker(ctx, "read the audit trail of")))
    trail: list[Any] = []
    with open(file, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    trail.append(entry_of(f"{file}:{n}", json.loads(line)))
                except ValueError:
                    trail.append(Unreadable(f"{file}:{n}", "not a JSON line"))
    return trail


@audit.command("verify")
@click.option("--file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A copy of the trail as JSON lines (HUB_AUDIT_FILE), instead of the audit topic.")
@click.pass_context
def audit_verify(ctx: click.Context, file: Path | None) -> None:
    """Check every entry's hash, every link and every signed head; exit 1
    naming the first break (an edited entry, a missing one, a forged head)."""
    from hub.audit.verify import verify

    settings = settings_of(ctx)
    report = verify(_trail(ctx, file), TrustStore.load(settings.trust_path))
    click.echo("\n".join(report.lines()))
    if not report.ok:
        raise SystemExit(1)


@audit.command("trail")
@click.argument("lead_id")
@click.option("--file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A copy of the trail as JSON lines, instead of the audit topic.")
@click.pass_context
def audit_trail(ctx: click.Context, lead_id: str, file: Path | None) -> None:
    """A lead's whole story: the events that raised it, where it was
    published, who saw it on the board, who answered, who was refused and why."""
    from hub.audit.trail import render, story
    from hub.audit.verify import Positioned, verify

    trail = _trail(ctx, file)
    report = verify(trail, TrustStore.load(settings_of(ctx).trust_path))
    entries = story((p.entry for p in trail if isinstance(p, Positioned)), lead_id, report)
    if not entries:
        raise click.ClickException(f"nothing about {lead_id} on the audit trail")
    click.echo("\n".join(render(e, report.sealed(e)) for e in entries))
