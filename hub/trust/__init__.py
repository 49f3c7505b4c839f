"""Who may do what: identities, keys, signed records (see ``keys`` and
``signatures``), and where a process finds its own key and the trust store."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from hub.settings import Settings, connector_agencies
from hub.trust.keys import Identity, Role, SigningKey, TrustError, TrustStore, key_file, load_key, provision
from hub.trust.signatures import Signer, Untrusted, Verified, Verifier, open_verifier

__all__ = ["Identity", "Role", "Signer", "SigningKey", "TrustError", "TrustStore", "Untrusted", "Verified",
           "Verifier", "demo_identities", "ensure_keys", "signer", "trust_env", "verifier"]


def demo_identities(settings: Settings) -> list[Identity]:
    """Everyone the embedded set-up gives a key: each installed connector,
    each configured team, the workers and the operators."""
    from hub.domain.teams import load_teams

    return [*(Identity(Role.CONNECTOR, name, agency) for name, agency in sorted(connector_agencies().items())),
            *(Identity(Role.TEAM, t.name, t.agency) for t in load_teams(settings.teams_file).values()),
            Identity(Role.WORKER, settings.worker_name), Identity(Role.OPERATOR, "operator")]


def ensure_keys(settings: Settings) -> None:
    """On the embedded broker (or with ``provision_keys``), create whatever
    demo keys are missing; elsewhere keys come from ``hub keys create``."""
    if settings.embedded or settings.provision_keys:
        provision(settings.keys_path, settings.trust_path, demo_identities(settings),
                  dt.datetime.now(dt.UTC))


def trust_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process these settings' keys and
    trust store (and, where they are made on use, the same habit)."""
    return {"HUB_KEYS_DIR": str(settings.keys_path.resolve()), "HUB_TRUST_FILE": str(settings.trust_path.resolve()),
            "HUB_PROVISION_KEYS": "1" if settings.provision_keys else "0",
            "HUB_ALLOW_DRILLS": "1" if settings.allow_drills else "0"}


def signer(settings: Settings, role: Role, name: str, key_path: Path | None = None) -> Signer:
    """The signer of a process acting as ``role:name``: its key from
    ``key_path``, else ``HUB_KEY_FILE``, else the keys directory. The key
    must be that identity's, live in the trust store."""
    ensure_keys(settings)
    path = key_path or (Path(settings.key_file) if settings.key_file else key_file(settings.keys_path, role, name))
    if not path.exists():
        raise TrustError(f"no key of {role}:{name} at {path}: `hub keys create {role} {name}` makes one (or "
                         "HUB_KEY_FILE names it; HUB_PROVISION_KEYS=1 makes demo keys on a test cluster)")
    return Signer(_key_of(settings, path, (role,), name))


def own_signer(settings: Settings, role: Role, key_path: Path | None) -> Signer:
    """A team's or operator's signer from the key it holds: the identity is
    the key's, never a name given on the command line."""
    ensure_keys(settings)
    return Signer(held_key(settings, key_path, (role,)))


def held_key(settings: Settings, key_path: Path | None, roles: tuple[Role, ...]) -> SigningKey:
    """The key a person holds (``key_path``, else ``HUB_KEY_FILE``), if it is
    live in the trust store and of one of ``roles``."""
    if key_path is None and not settings.key_file:
        raise TrustError(f"no key: give --key (or HUB_KEY_FILE), the {' or '.join(roles)}'s private key file")
    return _key_of(settings, key_path or Path(settings.key_file), roles)


def _key_of(settings: Settings, path: Path, roles: tuple[Role, ...], name: str = "") -> SigningKey:
    key = load_key(path, TrustStore.load(settings.trust_path))
    if key.trusted.role not in roles or (name and key.trusted.name != name):
        wanted = f"{roles[0]}:{name}" if name else " or ".join(roles)
        raise TrustError(f"{path} is the key of {key.trusted.identity}, not of {wanted}")
    return key


def verifier(settings: Settings) -> Verifier:
    ensure_keys(settings)
    return open_verifier(settings.trust_path, settings.signature_max_delay_s, settings.signature_max_skew_s)
