"""One settings object for every hub command.

Precedence, lowest first: built-in defaults (which work on the embedded
broker), a TOML config file (``--config`` or ``HUB_CONFIG``), environment
variables (``HUB_<FIELD>`` upper-cased), then explicit overrides from the CLI.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tomllib
from dataclasses import dataclass, field, fields
from enum import StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from collections.abc import Callable, Mapping

REPO_ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> Path:
    """The Avro contracts: installed with the package as ``hub/contracts``
    (pyproject maps schemas/ there), or schemas/ of a checkout."""
    installed = Path(__file__).resolve().parent / "contracts"
    return installed if installed.is_dir() else REPO_ROOT / "schemas"

DEV_PII_KEY = "supervision-hub-development-key"


@dataclass(frozen=True)
class RuleSettings:
    """Parameters of the lead rules (see ``hub.domain.rules``)."""

    cross_agency_window_days: int = 90
    cross_agency_min_agencies: int = 2
    repeat_offender_window_days: int = 180
    repeat_offender_min_findings: int = 2
    # 刑法第140条 (docs/domain.md, criminal thresholds): 销售金额 of this or more;
    # goods' value (货值金额) of the second or more, or 销售金额 × 3 plus the
    # unsold goods' value reaching it. Never a fine.
    counterfeit_threshold_yuan: int = 50_000
    counterfeit_goods_value_threshold_yuan: int = 150_000
    # Non-food substances (Criminal Law art. 144) and banned pesticides:
    # any detection is a criminal referral whatever the amount.
    non_food_substances: tuple[str, ...] = (
        "克伦特罗", "盐酸克伦特罗", "莱克多巴胺", "沙丁胺醇", "三聚氰胺", "苏丹红",
        "孔雀石绿", "隐色孔雀石绿", "硝基呋喃", "呋喃唑酮", "呋喃西林", "硼砂", "硼酸",
        "吊白块", "甲醛次硫酸氢钠", "罂粟壳", "西地那非",
    )
    banned_pesticides: tuple[str, ...] = (
        "克百威", "甲拌磷", "氧乐果", "甲胺磷", "对硫磷", "甲基对硫磷", "久效磷",
        "磷胺", "水胺硫磷", "灭线磷", "涕灭威", "灭多威", "氟虫腈", "毒死蜱",
        "治螟磷", "内吸磷", "特丁硫磷", "甲基异柳磷",
    )
    # The same finding reported twice (county and city systems) within this
    # many days counts once; see hub.domain.rules.finding_identity.
    near_duplicate_days: int = 14
    # History kept per business: older events than this are forgotten.
    history_days: int = 400
    history_max_events: int = 200
    # New signals (hub.domain.signals). 投诉举报: complaints or tip-offs from
    # this many distinct complainants within the window raise COMPLAINTS; a
    # complainant who filed against serial_filer_businesses distinct
    # businesses within the window (职业索赔) counts toward no threshold.
    complaints_min_complainants: int = 3
    complaints_window_days: int = 30
    serial_filer_businesses: int = 20
    # 可追溯: one producer's batch failing at this many distinct sellers.
    batch_trace_min_sellers: int = 2
    # 风险预警: this many distinct businesses of one county failing one test
    # item in one food category within the window.
    area_risk_min_businesses: int = 3
    area_risk_window_days: int = 30
    # 关联主体: a legal representative of more businesses than this (an
    # agent who registers hundreds) links none of them (an over-common value).
    related_party_max_businesses: int = 10


@dataclass(frozen=True)
class HttpSettings:
    """The metrics and lead-board servers' bounds (``hub.edge.httpd``; the
    board runs on aiohttp, the metrics on a threaded WSGI server): a
    connection idle this long is closed (on the board, one whose request
    head or form has not arrived by then), and any connection after its
    deadline; beyond this many at once, new ones are closed unanswered."""

    idle_timeout_s: float = 10.0
    max_connections: int = 64
    # However it trickles (a header line every few seconds keeps it from
    # ever being idle), a connection is closed this long after it opened.
    request_deadline_s: float = 30.0


@dataclass(frozen=True)
class LifecycleSettings:
    """Deadlines per severity (RASFF-style: 24 h for the most serious), and
    the 回头看 re-check after closure. Hours, so a test can use small ones."""

    acknowledge_hours_critical: float = 24
    acknowledge_hours_high: float = 48
    acknowledge_hours_medium: float = 72
    acknowledge_hours_low: float = 168
    close_hours_critical: float = 15 * 24
    close_hours_high: float = 30 * 24
    close_hours_medium: float = 60 * 24
    close_hours_low: float = 90 * 24
    recheck_hours: float = 30 * 24
    # 回头看 closed on evidence: no compliant inspection or passed sample this
    # long after the re-check date escalates to the parent jurisdiction.
    recheck_grace_hours: float = 14 * 24
    # 行刑衔接 (国务院令第310号): decide on a transfer within 3 days of the
    # finding and send it within 24 hours; the police decide on filing
    # within 3 days of receiving it.
    transfer_hours: float = 4 * 24
    police_filing_hours: float = 3 * 24
    # 整改: days after a rectification deadline before it counts as overdue.
    rectification_grace_days: int = 3
    # 迟报: a finding that raises a CRITICAL lead and reached the hub more
    # than this many days after its own date was reported late.
    late_report_days: int = 3

    def acknowledge_ms(self, severity: str) -> int:
        return int(getattr(self, f"acknowledge_hours_{severity.lower()}") * 3_600_000)

    def close_ms(self, severity: str) -> int:
        return int(getattr(self, f"close_hours_{severity.lower()}") * 3_600_000)

    @property
    def recheck_ms(self) -> int:
        return int(self.recheck_hours * 3_600_000)

    @property
    def recheck_grace_ms(self) -> int:
        return int(self.recheck_grace_hours * 3_600_000)

    @property
    def transfer_ms(self) -> int:
        return int(self.transfer_hours * 3_600_000)

    @property
    def police_filing_ms(self) -> int:
        return int(self.police_filing_hours * 3_600_000)


@dataclass(frozen=True)
class ValidationSettings:
    """What a plausible record is, checked by connectors before publishing
    and by workers after decoding (``hub.domain.validation``)."""

    earliest_date: dt.date = dt.date(1949, 1, 1)
    # A record dated more than this after the day it is received is a typo
    # (2062 for 2026), never a business's "now".
    future_tolerance_days: int = 2
    # Ticks may run ahead (tests, drills) but not to the end of the calendar.
    max_tick_ahead_days: int = 3660
    # A deadline a record sets (a rectification's 整改期限) may lie this far ahead.
    max_deadline_ahead_days: int = 366
    max_amount_yuan: int = 10_000_000_000  # 一百亿元
    max_measure: float = 1e12
    # Per string field or cell; a whole event and a whole file. Both well
    # below the broker's 1 MB message limit, so what is accepted can be sent.
    max_text_chars: int = 4000
    max_event_bytes: int = 64 * 1024
    max_file_bytes: int = 256 * 1024 * 1024  # a CSV, or an .xlsx uncompressed


@dataclass(frozen=True)
class FlowSettings:
    """What the flow (``hub.flow``) reads of the settings, and no more:
    ``Settings.flow``."""

    rules: RuleSettings
    lifecycle: LifecycleSettings
    validation: ValidationSettings
    pii_key: str
    worker_name: str
    state_cache_businesses: int
    signature_max_skew_s: float
    max_tick_ahead_s: float
    allow_drills: bool


class ProcessingGuarantee(StrEnum):
    """Faust's processing guarantee. AT_LEAST_ONCE: the hub's fence and
    strict commits keep replays harmless (the default). EXACTLY_ONCE: Faust
    commits through Kafka transactions, which fence none of the hub's own
    writes (README, "Transactions, evaluated"): evaluated, not adopted."""

    AT_LEAST_ONCE = "at_least_once"
    EXACTLY_ONCE = "exactly_once"


@dataclass(frozen=True)
class Settings:
    # Broker: empty means the embedded Apache Kafka on the state directory
    # (hub.kafka.broker): the one running there, or one started for the command.
    broker_url: str = ""
    # How long a command waits for the embedded broker running on its state
    # directory to answer before it fails (it never sends anywhere else).
    broker_wait_s: float = 30.0
    schema_registry_url: str = ""
    schema_dir: Path = field(default_factory=_contracts)
    state_dir: Path = Path(".hub-state")
    topic_partitions: int = 4
    replication_factor: int = 1
    # Event and dead-letter topics keep records this many days (they are
    # evidence: ten years by default; -1 keeps them for ever). State topics
    # are compacted, the audit trail is never deleted (hub.kafka.topics).
    event_retention_days: int = 3650
    # A compacted topic's active segment rolls after this long, so the
    # cleaner can reach its superseded values (Kafka's default is 7 days).
    compacted_segment_ms: int = 3_600_000
    # The consumer group's: a worker silent this long loses its partitions.
    # Kafka's brokers accept 6 s at the least (group.min.session.timeout.ms).
    session_timeout_s: float = 10.0
    heartbeat_interval_s: float = 3.0
    app_id: str = "supervision-hub"
    pii_key: str = DEV_PII_KEY
    # The PII key from a file (a mounted secret), so it is in no environment
    # or process list; set, it replaces pii_key.
    pii_key_file: str = ""
    metrics_port: int = 9400
    metrics_host: str = "127.0.0.1"
    worker_batch_size: int = 1000
    worker_batch_within_s: float = 0.05
    # Businesses whose decoded state a worker keeps between batches (the most
    # recently written): their next record skips decoding the stored JSON.
    state_cache_businesses: int = 10000
    # Python's cyclic garbage collector in a worker: allocations between two
    # young-generation passes (Python's default is 700). Passes cascade into
    # full ones over the worker's whole heap (its tables, the decoded states):
    # at 700 the collector took 5.0 s of the benchmark worker's 44.6 s, at
    # 50 000 2.1 s of 38.9 s. The hub's records hold few reference cycles.
    gc_young_threshold: int = 50_000
    commit_interval_s: float = 1.0
    # Faust's; see ProcessingGuarantee.
    processing_guarantee: ProcessingGuarantee = ProcessingGuarantee.AT_LEAST_ONCE
    # See hub.edge.worker.heal_stalled_commits (faust-streaming issue #596).
    commit_stall_heal_s: float = 5.0
    # Faust table store: memory:// rebuilds from the changelog on start;
    # rocksdb:// (needs faust-streaming[rocksdb]) keeps a local copy.
    table_store: str = "memory://"
    # Joint-enforcement teams: who receives which leads, cleared for what.
    teams_file: Path = REPO_ROOT / "ops" / "teams.toml"
    # The read-only lead board each worker serves (0: a free port; -1: off).
    web_port: int = 9410
    web_host: str = "127.0.0.1"
    # Host names the board answers to besides loopback and web_host: a page
    # asked for under any other name (DNS rebinding) is refused.
    web_allowed_hosts: tuple[str, ...] = ()
    http: HttpSettings = field(default_factory=HttpSettings)
    # How often a worker checks its leads' deadlines (0: only on ticks others send).
    lifecycle_tick_s: float = 10.0
    rules: RuleSettings = field(default_factory=RuleSettings)
    lifecycle: LifecycleSettings = field(default_factory=LifecycleSettings)
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    # Infrastructure failures (registry down, a send refused, a changelog
    # write failing): a batch is retried with exponential backoff this many
    # times, never acknowledged, then the worker exits non-zero.
    # How often a worker asks the broker who it is: unreachable sets a gauge;
    # another cluster (a rebuilt cluster, a deleted log directory) stops it.
    broker_check_s: float = 5.0
    # How long a connector waits for the broker to acknowledge a record
    # before its run fails (with its summary; the cursor stays behind).
    publish_timeout_s: float = 60.0
    # Longest a worker's graceful stop may take before it leaves without it.
    shutdown_grace_s: float = 30.0
    retry_attempts: int = 8
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 30.0
    # Identities and signatures (hub.trust). Empty paths: under state_dir.
    keys_dir: str = ""  # private keys this machine holds (0700)
    trust_file: str = ""  # the trust store: public keys, written by operators only
    key_file: str = ""  # this process's own private key, when not the keys directory's
    worker_name: str = "worker"  # the identity a worker signs as
    # Create missing demo keys on first use (always on the embedded broker).
    provision_keys: bool = False
    # A record taken by the broker this long after it was signed is a replayed copy.
    signature_max_delay_s: float = 300.0
    # ...or this long before: the signer's clock is wrong.
    signature_max_skew_s: float = 300.0
    # A clock tick may run this far ahead of the worker's own clock...
    max_tick_ahead_s: float = 300.0
    # ...unless it is an operator's signed drill, which a configured
    # cluster refuses unless this is set (the embedded broker allows them).
    allow_drills: bool = False
    # Kafka security, passed to every client the hub makes (confluent-kafka
    # and aiokafka): PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password_file: str = ""  # a file, so the password is in no environment or process list
    kafka_ssl_ca_file: str = ""  # the CA that signed the brokers' certificates
    kafka_ssl_cert_file: str = ""  # a client certificate (mTLS), with its key
    kafka_ssl_key_file: str = ""
    # The lead board's login session, after a team presents its token.
    board_session_hours: float = 8.0
    # The audit trail: how often a worker signs its chain's head, how often
    # it checks the recent trail, and an optional local mirror (JSON lines).
    audit_head_s: float = 30.0
    audit_verify_s: float = 300.0
    audit_file: str = ""

    @property
    def embedded(self) -> bool:
        return not self.broker_url

    @property
    def flow(self) -> FlowSettings:
        return FlowSettings(self.rules, self.lifecycle, self.validation, self.pii_key, self.worker_name,
                            self.state_cache_businesses, self.signature_max_skew_s, self.max_tick_ahead_s,
                            self.allow_drills)

    @property
    def keys_path(self) -> Path:
        return Path(self.keys_dir) if self.keys_dir else self.state_dir / "keys"

    @property
    def trust_path(self) -> Path:
        return Path(self.trust_file) if self.trust_file else self.keys_path / "trust.json"

    def on_embedded(self, bootstrap: str, **overrides: Any) -> Settings:
        """These settings on the embedded broker at ``bootstrap``: a demo or
        test bus, where missing keys are made on first use and drills run."""
        return self.with_overrides(broker_url=bootstrap, provision_keys=True, allow_drills=True, **overrides)

    def with_overrides(self, **overrides: Any) -> Settings:
        clean = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **_coerce(Settings, clean))


_SECTION_NAMES = {"rules": RuleSettings, "lifecycle": LifecycleSettings, "validation": ValidationSettings,
                  "http": HttpSettings}
_SECTIONS = tuple(_SECTION_NAMES.values())


def _coerce(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """Turn strings from env/TOML into the field's declared type."""
    out: dict[str, Any] = {}
    by_name = {f.name: f for f in fields(cls)}
    for name, raw in values.items():
        if name not in by_name:
            raise ValueError(f"unknown setting {name!r} (known: {', '.join(sorted(by_name))})")
        out[name] = _coerced(getattr(cls(), name), raw)
    return out


def _coerced(default: Any, raw: Any) -> Any:
    """``raw`` as the type of the field's ``default``."""
    if isinstance(default, _SECTIONS):
        return _as_section(type(default), raw)
    for kind, convert in _CONVERTERS:
        if isinstance(default, kind):
            return convert(raw)
    return type(default)(raw)


def _as_section(section: type, raw: Any) -> Any:
    return raw if isinstance(raw, section) else section(**_coerce(section, raw))


def _as_bool(raw: Any) -> bool:
    return raw if isinstance(raw, bool) else str(raw).lower() in {"1", "true", "yes"}


def _as_date(raw: Any) -> dt.date:
    return raw if isinstance(raw, dt.date) else dt.date.fromisoformat(str(raw))


def _as_tuple(raw: Any) -> tuple[Any, ...]:
    return tuple(raw.split(",")) if isinstance(raw, str) else tuple(raw)


# By the type of a field's default, in this order (a bool is no int here).
_CONVERTERS: tuple[tuple[type, Callable[[Any], Any]], ...] = (
    (bool, _as_bool), (dt.date, _as_date), (Path, Path), (tuple, _as_tuple))


def load_settings(config_file: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or env.get("HUB_CONFIG")
    if path:
        with open(path, "rb") as fh:
            values.update(tomllib.load(fh))
    values.update(_from_env(env))
    for section, cls in _SECTION_NAMES.items():
        section_env = _section_from_env(env, section, cls)
        if section_env:
            values[section] = {**values.get(section, {}), **section_env}
    if values.get("pii_key_file"):
        values["pii_key"] = _pii_key_from_file(values)
    return Settings(**_coerce(Settings, values))


def _from_env(env: Mapping[str, str]) -> dict[str, str]:
    """The top-level settings the environment sets (``HUB_<NAME>``)."""
    return {f.name: env["HUB_" + f.name.upper()] for f in fields(Settings)
            if "HUB_" + f.name.upper() in env and f.name not in _SECTION_NAMES}


def _section_from_env(env: Mapping[str, str], section: str, cls: type) -> dict[str, str]:
    """A section's settings the environment sets (``HUB_<SECTION>_<NAME>``)."""
    prefix = f"HUB_{section.upper()}_"
    return {f.name: env[prefix + f.name.upper()] for f in fields(cls) if prefix + f.name.upper() in env}


def _pii_key_from_file(values: Mapping[str, Any]) -> str:
    if "pii_key" in values:
        raise ValueError("HUB_PII_KEY and HUB_PII_KEY_FILE are both set: give the key once, as a file")
    key = Path(values["pii_key_file"]).read_text(encoding="utf-8").strip()
    if not key:
        raise ValueError(f"HUB_PII_KEY_FILE {values['pii_key_file']} is empty")
    return key


# Connectors are plugins: an agency's package declares one under this
# entry-point group and never edits hub/ (pyproject.toml lists ours).
CONNECTOR_ENTRY_POINTS = "supervision_hub.connectors"


def installed_connectors() -> list[str]:
    """The names of the connectors installed (their entry points), not loaded."""
    return sorted({ep.name for ep in entry_points(group=CONNECTOR_ENTRY_POINTS)})


def connector_agencies() -> dict[str, str]:
    """Each installed connector's agency (its class's ``agency``): the
    plugins are loaded, which is what installing one means."""
    return {ep.name: str(ep.load().agency.value) for ep in entry_points(group=CONNECTOR_ENTRY_POINTS)}
