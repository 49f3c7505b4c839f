"""Identities, their signing keys and the trust store (信任库).

Every party that writes to the hub's topics has an identity with an Ed25519
key pair: each connector (bound to its agency), each joint-enforcement team,
the workers and the operators. The private half stays with its holder, in a
PEM file only it can read; the public half is in the trust store, a
versioned JSON file (``HUB_TRUST_FILE``) that operators alone write and
hand to every worker and team. Revoking a key marks it in the trust store;
records it signed are refused from then on, whenever they were signed,
because a thief could date a signature as he likes.
"""
from __future__ import annotations

import base64
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Iterator

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

STORE_VERSION = 1
_TOKEN_LABEL = b"supervision-hub lead board token v1"


class Role(StrEnum):
    CONNECTOR = "connector"  # publishes one agency's events
    TEAM = "team"  # answers on the leads it receives; logs in to the board
    WORKER = "worker"  # publishes leads, outcomes, resolution traffic and clock ticks
    OPERATOR = "operator"  # runs the hub: drills, and the whole board


class TrustError(Exception):
    """A key or trust store that cannot be used as asked."""


def key_id(public: bytes) -> str:
    """A public key's ID: the first 8 bytes of its SHA-256, in hex."""
    return hashlib.sha256(public).digest()[:8].hex()


def board_token(private: Ed25519PrivateKey) -> str:
    """The credential a team (or operator) presents to the lead board: derived
    from its private key, so only its holder can compute it, and revoked
    with it. The board keeps only its SHA-256."""
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    return base64.urlsafe_b64encode(hmac.new(raw, _TOKEN_LABEL, hashlib.sha256).digest()).rstrip(b"=").decode()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TrustedKey:
    """A public key in the trust store, and whose it is."""

    key_id: str
    role: Role
    name: str  # the connector's, team's, worker's or operator's name
    agency: str | None  # a connector's or team's agency
    public_key: str  # raw 32 bytes, base64
    created_at: str
    revoked_at: str | None = None
    board_token_sha256: str | None = None  # teams and operators

    @property
    def identity(self) -> str:
        return f"{self.role}:{self.name}"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def public(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(self.public_key))


@dataclass
class TrustStore:
    keys: dict[str, TrustedKey]

    @classmethod
    def load(cls, path: Path) -> TrustStore:
        if not path.exists():
            return cls({})
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("v") != STORE_VERSION:
            raise TrustError(f"{path}: trust store version {data.get('v')!r}, this release reads {STORE_VERSION}")
        known = set(TrustedKey.__dataclass_fields__)
        return cls({k["key_id"]: TrustedKey(**{**{f: v for f, v in k.items() if f in known}, "role": Role(k["role"])})
                    for k in data["keys"]})

    def save(self, path: Path) -> None:
        """Atomically: a worker reading it meanwhile sees the old or the new store."""
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"v": STORE_VERSION, "keys": [asdict(k) for k in self.keys.values()]}, indent=1,
                          ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".trust-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)

    def active(self, role: Role, name: str) -> list[TrustedKey]:
        return [k for k in self.keys.values() if k.role == role and k.name == name and not k.revoked]

    def holder_of_token(self, token: str) -> TrustedKey | None:
        """The live team or operator key whose board token this is."""
        digest = token_digest(token)
        found = None
        for k in self.keys.values():  # every entry compared, in constant time each
            if k.board_token_sha256 and hmac.compare_digest(k.board_token_sha256, digest) and not k.revoked:
                found = k
        return found

    def revoke(self, which: str, now: dt.datetime) -> list[TrustedKey]:
        """Revoke a key by its ID, or every live key of an identity (``role:name``)."""
        hits = [k for k in self.keys.values() if not k.revoked and which in (k.key_id, k.identity)]
        for k in hits:
            self.keys[k.key_id] = replace(k, revoked_at=now.isoformat())
        return hits


@dataclass(frozen=True)
class SigningKey:
    """A private key and the trust-store entry of its public half."""

    private: Ed25519PrivateKey
    trusted: TrustedKey

    @property
    def key_id(self) -> str:
        return self.trusted.key_id


def key_file(keys_dir: Path, role: Role, name: str) -> Path:
    return keys_dir / f"{role}-{name}.pem"


def create_key(keys_dir: Path, store: TrustStore, role: Role, name: str, agency: str | None,
               now: dt.datetime) -> SigningKey:
    """A new key pair for an identity: the private half into ``keys_dir``
    (mode 0600, replacing an older one), the public half into ``store``."""
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    token = token_digest(board_token(private)) if role in (Role.TEAM, Role.OPERATOR) else None
    trusted = TrustedKey(key_id(public), role, name, agency, base64.b64encode(public).decode(), now.isoformat(),
                         board_token_sha256=token)
    keys_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    path = key_file(keys_dir, role, name)
    fd, tmp = tempfile.mkstemp(dir=keys_dir, prefix=".key-")
    with os.fdopen(fd, "wb") as fh:  # mkstemp: 0600 from the start
        fh.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    os.replace(tmp, path)
    store.keys[trusted.key_id] = trusted
    return SigningKey(private, trusted)


def load_key(path: Path, store: TrustStore) -> SigningKey:
    """A private key file, and who it makes its holder (from the trust store)."""
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise TrustError(f"{path}: not a readable private key ({exc})") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise TrustError(f"{path}: not an Ed25519 key")
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    trusted = store.keys.get(key_id(public))
    if trusted is None:
        raise TrustError(f"{path}: its public key is not in the trust store")
    if trusted.revoked:
        raise TrustError(f"{path}: key {trusted.key_id} ({trusted.identity}) was revoked at {trusted.revoked_at}")
    return SigningKey(private, trusted)


@dataclass(frozen=True)
class Identity:
    role: Role
    name: str
    agency: str | None = None


def provision(keys_dir: Path, store_path: Path, identities: Iterable[Identity], now: dt.datetime) -> list[Identity]:
    """Create a key for every identity that has no live one (or whose private
    half is missing here): the embedded set-up's keys. Returns those made."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    with open(keys_dir / ".provision.lock", "w") as lock:  # processes started together make keys once
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _provision(keys_dir, store_path, identities, now)


_PROVISIONED = ".provisioned.json"  # the key IDs provisioning made, in the keys directory


def _provision(keys_dir: Path, store_path: Path, identities: Iterable[Identity], now: dt.datetime) -> list[Identity]:
    """Never revokes or replaces a key it did not make: an identity whose
    live key is held elsewhere (a team keeping its key outside the keys
    folder) keeps it. A key it made whose private half is gone is revoked
    (an orphaned public half is of no use to anyone) and made anew."""
    store = TrustStore.load(store_path)
    ours_path = keys_dir / _PROVISIONED
    ours: set[str] = set(json.loads(ours_path.read_text())) if ours_path.exists() else set()
    made = []
    for who in identities:
        live = store.active(who.role, who.name)
        if _held(live, keys_dir, who, ours):
            continue
        for key in live:
            store.revoke(key.key_id, now)
        ours.add(create_key(keys_dir, store, who.role, who.name, who.agency, now).trusted.key_id)
        made.append(who)
    if made:
        store.save(store_path)
        ours_path.write_text(json.dumps(sorted(ours)))
    return made


def _held(live: list[TrustedKey], keys_dir: Path, who: Identity, ours: set[str]) -> bool:
    """Whether the identity's live key stays: its private half is in the keys
    folder, or one of its live keys was made elsewhere."""
    return bool(live) and (key_file(keys_dir, who.role, who.name).exists() or any(k.key_id not in ours for k in live))


def describe(store: TrustStore) -> Iterator[str]:
    for k in sorted(store.keys.values(), key=lambda k: (k.role, k.name, k.created_at)):
        state = f"revoked {k.revoked_at}" if k.revoked else "live"
        yield f"{k.key_id}  {k.identity:<40} {k.agency or '-':<7} created {k.created_at}  {state}"


def as_json(store: TrustStore) -> list[dict[str, Any]]:
    return [asdict(k) for k in store.keys.values()]
