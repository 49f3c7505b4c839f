"""Jepsen-style crash tests of the whole hub: the same exports through a clean
run and through a storm (workers SIGKILLed and restarted, one SIGSTOPped
beyond the session timeout, a connector killed mid-file and rerun), each on
a fresh embedded broker; then the two runs' outcomes are compared.

An outcome is what a user relies on: the open leads field by field (times
left out: they record when, not what), how many times each event was
applied to a business's state (exactly once is the claim), and which
rejected rows reached the dead letters. ``hub chaos`` runs many storms and
reports how many came out identical to the clean run.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

from connectors.agri_sampling import AgriSamplingConnector
from connectors.business_registry import BusinessRegistryConnector
from connectors.police_case import PoliceCaseConnector
from connectors.samr_complaint import SamrComplaintConnector
from connectors.samr_credit import SamrCreditConnector
from connectors.samr_penalty import SamrPenaltyConnector
from connectors.samr_inspection import SamrInspectionConnector
from connectors.samr_sampling import SamrSamplingConnector
from hub.kafka.acls import WORKERS
from hub.kafka.broker import EmbeddedBroker
from hub.edge.feedback import publish_ticks
from hub.trust import Role, ensure_keys, signer, trust_env
from hub.domain.events import Agency, EventKind
from hub.domain.leads import BusinessState
from hub.domain.signals import LINK_PREFIX, is_index_key
from hub.kafka.readers import final_leads
from hub.apps.pipeline import wait_until_processed
from hub.devtools.samples import make_resident_id, make_uscc, write_csv
from hub.kafka.clients import KafkaClients
from hub.kafka.serde import Serde
from hub.settings import Settings, load_settings
from hub.kafka.topics import changelog_topic, create_topics, read_to_end
from hub.flow.topics import DEADLETTER_TOPIC, cursor_topic, events_topic

# Fields of a lead that record when something happened rather than what:
# they differ between any two runs.
TIMES = frozenset({"first_seen", "updated_at", "triggered_by_received_at", "acknowledge_by", "close_by",
                   "recheck_on", "history", "transfer_by", "police_filing_by", "reported_late_days",
                   "version"})  # version: a clock (LeadMark.next_version)
EVIDENCE_TIMES = frozenset({"reported_after_days"})  # from the record's arrival
# Connectors in the order a clean run feeds them; the storm feeds them in the same order.
ORDER = ("registry.business", "samr.penalty", "police.case", "agri.sampling", "samr.sampling", "samr.inspection",
         "samr.complaint", "samr.credit")
BIG_FILE = "samr.penalty-big.csv"
NO_HISTORY = frozenset({EventKind.REGISTRATION.value, EventKind.CREDIT_LISTING.value})
CHAOS_PII_KEY = "chaos-test-key-not-for-production"

_DIVISIONS = ("410502", "410503", "410505", "410523", "140702", "140703")
_PLACES = {"4105": "河南省安阳市", "1407": "山西省晋中市"}
_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@dataclass(frozen=True)
class _Business:
    uscc: str
    name: str
    address: str
    representative: tuple[str, str]  # legal representative: name, ID number


def _rows(made: dict[str, str] | list[dict[str, str]]) -> list[dict[str, str]]:
    """An export row, or a record and the later rows about it (a case and its 撤案)."""
    return made if isinstance(made, list) else [made]


def _row(columns: dict[str, str], values: dict[str, str]) -> list[str]:
    return [values.get(c, "") for c in columns]


class _Exports:
    """The rows of each connector's exports, drawn from one random source
    over a pool of businesses (see ``write_dataset``)."""

    def __init__(self, rng: random.Random, businesses: int) -> None:
        self.rng = rng
        people = [(f"代表人{n}", make_resident_id(rng.choice(_DIVISIONS),
                                                dt.date(1960 + n % 30, 1 + n % 12, 1 + n % 28), f"{n % 1000:03d}"))
                  for n in range(max(1, businesses // 3))]
        self.pool = [self._business(i, people) for i in range(businesses)]
        self.complained = self.pool[:max(1, businesses // 10)]
        self.complainants = [(f"投诉人{n}", f"1380372{n:04d}",
                              make_resident_id("410502", dt.date(1980, 1, 1 + n % 28), f"{n % 1000:03d}"))
                             for n in range(40)]
        self.serial_filer = ("职业索赔人", "13903720099", make_resident_id("410522", dt.date(1982, 3, 3), "071"))
        self.sellers = {prefix: [f"{place[3:]}{n}号便民超市" for n in range(8)] for prefix, place in _PLACES.items()}
        self.start = dt.date(2026, 1, 5)
        self.kinds: dict[str, tuple[Any, Callable[[int, _Business], Any], str]] = {
            "registry.business": (BusinessRegistryConnector, self.registered, "utf-8-sig"),
            "samr.penalty": (SamrPenaltyConnector, self.penalty, "gbk"),
            "police.case": (PoliceCaseConnector, self.case, "utf-8"),
            "samr.inspection": (SamrInspectionConnector, self.inspection, "utf-8"),
            "agri.sampling": (AgriSamplingConnector, self.farm_sample, "utf-8"),
            "samr.sampling": (SamrSamplingConnector, self.notice, "utf-8"),
            "samr.complaint": (SamrComplaintConnector, self.complaint, "gbk"),
            "samr.credit": (SamrCreditConnector, self.listed, "utf-8-sig"),
        }

    def _business(self, i: int, people: list[tuple[str, str]]) -> _Business:
        division = self.rng.choice(_DIVISIONS)
        code = make_uscc(self.rng.choice(["91", "92"]), division, "".join(self.rng.choice(_ALPHABET) for _ in range(9)))
        place = _PLACES[division[:4]]
        return _Business(code, f"{place[3:]}第{i}号食品有限公司", f"{place}中心路{i}号", self.rng.choice(people))

    def day(self) -> str:
        return (self.start + dt.timedelta(days=self.rng.randrange(300))).isoformat()

    def uscc(self, b: _Business) -> str:
        return b.uscc[:-1] + ("0" if b.uscc[-1] != "0" else "1") if self.rng.random() < 0.02 else b.uscc

    def penalty(self, i: int, b: _Business) -> dict[str, str]:
        counterfeit = self.rng.random() < 0.1
        wan = self.rng.randint(50, 90) / 10 if counterfeit else self.rng.randint(1, 30) / 10
        return {"行政相对人名称": b.name, "行政相对人类别": "法人及非法人组织",
                "行政相对人代码_1(统一社会信用代码)": self.uscc(b),
                "法定代表人": "张三", "处罚决定书文号": f"混市监罚〔2026〕{i}号",
                "违法行为类型": "生产销售伪劣产品" if counterfeit else "经营超过保质期的食品",
                # the sales the law reads (刑法第140条: 5万 or more), fined as much
                "违法事实": f"以次充好，销售金额{wan}万元" if counterfeit else "经营超过保质期的食品",
                "处罚依据": "《中华人民共和国食品安全法》第一百二十四条", "处罚类别": "罚款", "处罚内容": "罚款",
                "罚款金额(万元)": str(wan), "处罚决定日期": self.day(), "处罚机关": "测试市市场监督管理局"}

    def case(self, i: int, b: _Business) -> list[dict[str, str]]:
        """A filed case; one in six later dropped (撤案: a reverse referral to market supervision)."""
        accepted = self.day()
        filed = {"案件编号": f"A{b.uscc[2:8]}2026{i:06d}", "案件名称": "生产、销售伪劣产品案",
                 "案由": "生产、销售伪劣产品罪", "受案时间": accepted, "立案时间": accepted, "案件状态": "立案",
                 "涉案单位名称": b.name, "涉案单位统一社会信用代码": self.uscc(b),
                 "涉案金额(元)": str(self.rng.randint(1000, 90000)),
                 "办案单位": "测试市公安局食药环侦大队", "线索来源": "群众举报"}
        if self.rng.random() >= 1 / 6:
            return [filed]
        return [filed, dict(filed, 案件状态="撤案")]

    def inspection(self, i: int, b: _Business) -> list[dict[str, str]]:
        """An inspection; half find the business non-compliant and order a
        rectification within two weeks (书面限期整改), of which a third are
        confirmed by a compliant re-inspection in time, a third late, and a
        third never: rectifications met, missed and left open."""
        on = dt.date.fromisoformat(self.day())
        failed = self.rng.random() < 0.5
        found = {"检查编号": f"JC2026-{i:06d}", "被检查单位名称": b.name, "统一社会信用代码": self.uscc(b),
                 "检查日期": on.isoformat(), "检查人员": "检查员甲、检查员乙",
                 "检查结果": "不符合" if failed else "符合",
                 "结果处理": "书面限期整改" if failed else "通过", "发现问题": "冷库温度记录缺失" if failed else "",
                 "整改期限": (on + dt.timedelta(days=14)).isoformat() if failed else ""}
        later = self.rng.choice((7, 40, None)) if failed else None
        if later is None:
            return [found]
        return [found, dict(found, 检查编号=f"FC2026-{i:06d}", 检查日期=(on + dt.timedelta(days=later)).isoformat(),
                            检查结果="符合", 结果处理="通过", 发现问题="", 整改期限="")]

    def farm_sample(self, i: int, b: _Business) -> dict[str, str]:
        failed = self.rng.random() < 0.3
        return {"样品编号": f"NY2026-{i:05d}", "样品名称": "韭菜", "受检单位名称": b.name,
                "统一社会信用代码": self.uscc(b),
                "抽样地点": "基地", "抽样日期": self.day(), "检测项目": "克百威" if failed else "腐霉利",
                "检测值": "0.12" if failed else "0.05", "限量值": "0.02" if failed else "0.2", "单位": "mg/kg",
                "判定结果": "不合格" if failed else "合格", "检测机构": "测试市农产品质量安全检测中心"}

    def notice(self, i: int, b: _Business) -> dict[str, str]:
        return {"序号": str(i), "抽样编号": f"GC2026{i:06d}", "标称生产企业名称": b.name, "标称生产企业地址": b.address,
                "被抽样单位名称": self.rng.choice(self.sellers[b.uscc[2:6]]), "被抽样单位地址": b.address[:6],
                "食品名称": "酱油",
                "生产日期/批号": f"2026{i:06d}", "不合格项目‖检验结果‖标准值": "菌落总数‖8.2×10^4CFU/mL‖≤3×10^4CFU/mL",
                "分类": "调味品", "公告号": "2026年第18号", "公告日期": "" if self.rng.random() < 0.02 else self.day(),
                "检验机构": "测试市食品检验检测中心"}

    def notices(self, subjects: list[_Business], base: int) -> list[dict[str, str]]:
        """One in ten is reported again by the city system: another sample
        number, announced three days later (a near-duplicate); one in twenty
        twice more, 10 and 20 days later (a chain: the first and the last
        report are further apart than near_duplicate_days). One in ten names
        a batch another seller failed too (a batch trace)."""
        out = []
        for i, b in enumerate(subjects):
            out.append(self.notice(base + i, b))
            if out[-1]["公告日期"]:
                self._batch_trace(out, base + i, b)
                self._reported_again(out, base + i)
        return out

    def _batch_trace(self, out: list[dict[str, str]], number: int, b: _Business) -> None:
        """One in ten: the batch of the last notice failed at another seller too."""
        if self.rng.random() < 0.1:
            others = [s for s in self.sellers[b.uscc[2:6]] if s != out[-1]["被抽样单位名称"]]
            out.append(dict(out[-1], 抽样编号=f"BT-{number:06d}", 被抽样单位名称=self.rng.choice(others)))

    def _reported_again(self, out: list[dict[str, str]], number: int) -> None:
        """The last notice reported again by the city system: once (one in
        ten), or twice (one in twenty), each later than the one before."""
        draw = self.rng.random()
        for n, later in enumerate((3,) if draw < 0.1 else (10, 20) if draw < 0.15 else ()):
            again = dict(out[-1], 抽样编号=f"SC{n}-{number:06d}")
            again["公告日期"] = (dt.date.fromisoformat(out[-1 - n]["公告日期"]) + dt.timedelta(days=later)).isoformat()
            out.append(again)

    def registered(self, i: int, b: _Business) -> dict[str, str]:
        return {"统一社会信用代码": b.uscc, "企业名称": b.name, "住所": b.address, "法定代表人": b.representative[0],
                "法定代表人证件号码": b.representative[1]}

    def complaint(self, i: int, b: _Business) -> dict[str, str]:
        """Against a business of the complained-about tenth (whatever ``b``),
        within three months; one in five by the serial filer, against any
        business (``b``) within one month."""
        serial = self.rng.random() < 0.2
        target = b if serial else self.rng.choice(self.complained)
        name, phone, id_number = self.serial_filer if serial else self.rng.choice(self.complainants)
        on = self.start + dt.timedelta(days=self.rng.randrange(30 if serial else 90))
        return {"登记编号": f"12315-2026-{i:06d}", "登记日期": on.isoformat(),
                "诉求类型": self.rng.choice(("投诉", "举报")), "被投诉举报对象名称": target.name,
                "被投诉举报对象统一社会信用代码": self.uscc(target), "被投诉举报对象地址": target.address,
                "所属行政区划": target.uscc[2:8], "涉及商品或服务": "食品",
                "问题描述": f"{name}反映商品变质，电话{phone}",
                "诉求人姓名": name, "诉求人联系电话": phone, "诉求人证件号码": id_number,
                "处理单位": "测试市市场监督管理局", "处理状态": "不予受理" if self.rng.random() < 0.05 else "已受理"}

    def listed(self, i: int, b: _Business) -> dict[str, str]:
        return {"主体名称": b.name, "统一社会信用代码": b.uscc, "法定代表人": b.representative[0],
                "法定代表人证件号码": b.representative[1], "列入日期": self.day(),
                "列入事由": "因生产经营不符合食品安全标准的食品被处以吊销许可证",
                "作出决定机关": "测试市市场监督管理局"}


    def subjects(self, name: str, part: int, parts: int, rows: int) -> list[_Business]:
        """The businesses a part's export is about: the registry lists the
        pool, part by part; the credit list a few; the rest draw theirs."""
        if name == "registry.business":
            return self.pool[part::parts]
        if name == "samr.credit":
            return self.rng.sample(self.pool, max(1, len(self.pool) // 100))
        return [self.rng.choice(self.pool) for _ in range(rows // parts)]

    def records(self, name: str, subjects: list[_Business], base: int) -> list[dict[str, str]]:
        if name == "samr.sampling":
            return self.notices(subjects, base)
        make = self.kinds[name][1]
        return [row for i, b in enumerate(subjects) for row in _rows(make(base + i, b))]

    def write_part(self, folder: Path, name: str, part: int, parts: int, rows: int) -> Path:
        """One part's export of a connector."""
        connector, _, encoding = self.kinds[name]
        subjects = self.subjects(name, part, parts, rows)
        records = self.records(name, subjects, part * len(subjects))
        return write_csv(folder / f"{name}-{part}.csv", list(connector.columns),
                         [_row(connector.columns, r) for r in records], encoding)

    def write_big_file(self, folder: Path, big_file_rows: int) -> Path:
        """The long penalty file a connector is killed in, mid-file."""
        records = [self.penalty(10**6 + i, self.rng.choice(self.pool)) for i in range(big_file_rows)]
        return write_csv(folder / BIG_FILE, list(SamrPenaltyConnector.columns),
                         [_row(SamrPenaltyConnector.columns, r) for r in records], "gbk")


def write_dataset(folder: Path, seed: int, businesses: int = 300, rows: int = 600, parts: int = 6,
                  big_file_rows: int = 3000) -> list[tuple[str, Path]]:
    """Exports over a pool of businesses, ``rows`` rows per connector (the
    registry lists the pool) in ``parts`` files each, about 2% of rows bad,
    and halfway through one penalty file of ``big_file_rows`` rows (long
    enough to kill its connector mid-file: ``BIG_FILE``). Sampling
    announcements name businesses without a USCC, so entity resolution joins
    them; their sellers are in no registry (placeholder keys); one in ten
    names a batch a second seller also failed. The signals between
    businesses travel too: the registry names legal representatives (about
    three businesses each: a police case or a listing at one is a related
    party of the others), a tenth of the pool draws 12315 complaints from
    forty people and a serial filer, and a few businesses a part join the
    serious-violation list. Returns (connector, file) in feeding order: part
    by part."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    exports = _Exports(rng, businesses)
    out = []
    for part in range(parts):
        out += [(name, exports.write_part(folder, name, part, parts, rows)) for name in ORDER]
        if part == parts // 2:
            out.append(("samr.penalty", exports.write_big_file(folder, big_file_rows)))
    return out


@dataclass
class Outcome:
    """What a run left on the broker that a user relies on."""

    open_leads: dict[str, dict[str, Any]]
    applied: Counter[str]  # event ID -> how many business states hold it
    events: set[str]  # event IDs on the event topics
    rejected_rows: set[tuple[str, int]]  # (file, row) in the connectors' dead letters
    worker_dead_letters: int

    def faults(self) -> list[str]:
        """What breaks the run's own guarantees, whatever the clean run did."""
        twice = sorted(e for e, n in self.applied.items() if n > 1)
        missing = sorted(self.events - self.applied.keys())
        return ([f"{len(twice)} events applied more than once, e.g. {twice[:3]}"] if twice else []) + \
            ([f"{len(missing)} events applied to no state, e.g. {missing[:3]}"] if missing else []) + \
            ([f"{self.worker_dead_letters} worker dead letters"] if self.worker_dead_letters else [])


@dataclass
class Difference:
    lost: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.lost or self.extra or self.changed or self.other)

    def line(self) -> str:
        if not self:
            return "identical"
        shown = [f"lost {k}" for k in self.lost[:5]] + [f"extra {k}" for k in self.extra[:5]] + self.changed[:5]
        return (f"lost {len(self.lost)} / extra {len(self.extra)} / changed {len(self.changed)} open leads"
                + "".join(f"; {o}" for o in self.other) + (f" (e.g. {'; '.join(shown)})" if shown else ""))


def _fields_apart(clean: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """Which fields of a lead differ, with both values: what to look at."""
    return [f"{k}: {clean.get(k)!r} / {run.get(k)!r}" for k in sorted(clean.keys() | run.keys())
            if clean.get(k) != run.get(k)]


def compare(clean: Outcome, run: Outcome) -> Difference:
    diff = Difference(
        lost=sorted(clean.open_leads.keys() - run.open_leads.keys()),
        extra=sorted(run.open_leads.keys() - clean.open_leads.keys()),
        changed=sorted(f"{k} ({', '.join(_fields_apart(clean.open_leads[k], run.open_leads[k]))})"
                       for k in clean.open_leads.keys() & run.open_leads.keys()
                       if clean.open_leads[k] != run.open_leads[k]))
    diff.other += run.faults()
    if run.events != clean.events:
        diff.other.append(f"events on the topics differ ({len(run.events)} against {len(clean.events)})")
    if run.rejected_rows != clean.rejected_rows:
        diff.other.append(f"rejected rows in the dead letters differ ({len(run.rejected_rows)} against "
                          f"{len(clean.rejected_rows)})")
    return diff


def compared(lead: dict[str, Any]) -> dict[str, Any]:
    """What of a lead two runs must agree on: every field but when things happened."""
    return {**{k: v for k, v in lead.items() if k not in TIMES},
            "evidence": [{k: v for k, v in e.items() if k not in EVIDENCE_TIMES} for e in lead["evidence"]]}


def open_leads(clients: KafkaClients) -> dict[str, dict[str, Any]]:
    """The open leads on the clients' broker, as two runs compare them."""
    return {lead_id: compared(lead) for lead_id, lead in final_leads(clients).items() if lead["status"] == "OPEN"}


def outcome(clients: KafkaClients) -> Outcome:
    leads = open_leads(clients)
    applied = _applied(_business_states(clients))
    serde = Serde(clients.settings)
    events = _history_events(clients, serde)
    decode_dead = serde.decoder("deadletter")
    dead = [decode_dead(m.value() or b"") for m in read_to_end(clients, DEADLETTER_TOPIC)]
    return Outcome(leads, applied, events,
                   {(d["source_file"], d["source_row"]) for d in dead if d["stage"] != "worker"},
                   sum(d["stage"] == "worker" for d in dead))


def _history_events(clients: KafkaClients, serde: Serde) -> set[str]:
    """The IDs of the events on the event topics that become a business's history."""
    decode_event = serde.decoder("event")
    # A registry entry teaches entity resolution and a listing sets a business's
    # standing (shown on its leads, compared with them): neither is history.
    return {event["event_id"] for a in Agency for m in read_to_end(clients, events_topic(a))
            if (event := decode_event(m.value() or b""))["kind"] not in NO_HISTORY}


def _business_states(clients: KafkaClients) -> list[bytes]:
    """The latest record of each business's state on the changelog."""
    latest: dict[bytes, bytes | None] = {}
    for message in read_to_end(clients, changelog_topic(clients.settings)):
        key = message.key()
        # a business's state: an index (an area's, a
        # complainant's) holds copies of its businesses' records
        if key is not None and not is_index_key(key.decode()):
            latest[key] = message.value()
    return list(filter(None, latest.values()))


def _applied(states: list[bytes]) -> Counter[str]:
    """Event ID -> how many of these business states hold it."""
    applied: Counter[str] = Counter()
    for raw in states:
        for fact in BusinessState.from_bytes(raw).facts.values():
            # a link is what a person index told this business of another: no event, and one ID at each it told
            if not fact.moved_to and not fact.event_id.startswith(LINK_PREFIX):
                applied.update([fact.event_id, *(e for e, *_ in fact.also_reported)])
    return applied


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `hub` process on the settings' broker and consumer
    group, with metrics on a free port, no board, and commits every 0.2 s."""
    ensure_keys(settings)  # before the processes start
    return {**os.environ, "HUB_BROKER_URL": settings.broker_url, "HUB_APP_ID": settings.app_id,
            "HUB_PII_KEY": settings.pii_key, "HUB_METRICS_PORT": "0", "HUB_WEB_PORT": "-1",
            "HUB_COMMIT_INTERVAL_S": "0.2", **trust_env(settings), **extra}


class Fleet:
    """Workers and connectors as the processes a supervisor would run;
    ``principal_env`` gives each its own credentials on a secured cluster
    (workers are ``hub-worker``, a connector ``connector-<name>``).
    ``clients``: the run's Kafka clients, for what the run reads and sends itself."""

    def __init__(self, clients: KafkaClients, workdir: Path,
                 principal_env: Callable[[str], dict[str, str]] = lambda principal: {}) -> None:
        settings = clients.settings
        self.clients, self.settings, self.workdir = clients, settings, workdir
        # Kafka's shortest session (group.min.session.timeout.ms): a killed
        # worker's partitions move after 6 s, and a pause of 8 s outlasts it.
        self.env = process_env(settings, HUB_STATE_DIR=str(workdir / "state"), HUB_SESSION_TIMEOUT_S="6",
                               HUB_HEARTBEAT_INTERVAL_S="1")
        self.principal_env = principal_env
        self.workers: list[subprocess.Popen[bytes]] = []
        self.exits: list[int] = []  # statuses of workers that ended by themselves
        self.log = open(workdir / "processes.log", "ab")  # noqa: SIM115 (the processes' log, for the fleet's life)

    def _spawn(self, principal: str, *args: str, stdout: Any = None) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "hub.cli", *args], cwd=self.workdir,
                                env={**self.env, **self.principal_env(principal)},
                                stdout=stdout or self.log, stderr=self.log, stdin=subprocess.DEVNULL)

    def start_worker(self, slot: int | None = None) -> None:
        worker = self._spawn(WORKERS, "worker")
        if slot is None:
            self.workers.append(worker)
        else:
            self.workers[slot] = worker

    def connector(self, name: str, path: Path, stdout: Any = None) -> subprocess.Popen[bytes]:
        return self._spawn(f"connector-{name}", "connector", "run", name, "--path", str(path), stdout=stdout)

    def supervise(self) -> None:
        """A worker that exited by itself is restarted, as systemd or compose would."""
        for slot, worker in enumerate(self.workers):
            if worker.poll() is not None:
                self.exits.append(worker.returncode)
                self.start_worker(slot)

    def sleep(self, seconds: float) -> None:
        """Wait, supervising meanwhile."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.supervise()
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGCONT)
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        self.log.close()


@dataclass
class Storm:
    """What a storm does: ``kills`` SIGKILLs of a random worker every 2-9 s,
    each restarted 1-3 s later; ``pauses`` SIGSTOPs of 8-15 s (beyond the
    session timeout); ``broker_kills`` SIGKILLs of the broker's JVM and
    ``broker_stops`` graceful stops of it, each restarted 1-3 s later on the
    same log directory and port; the connector of ``BIG_FILE`` killed up to
    ``connector_kill_s`` after its first checkpoint with rows delivered (None:
    not killed)."""

    kills: int = 8
    pauses: int = 1
    connector_kill_s: float | None = 0.2
    broker_kills: int = 1
    broker_stops: int = 0
    seed: int = 0



def wait_for_checkpoint(clients: KafkaClients, run: subprocess.Popen[Any], connector: str, file_name: str) -> None:
    """Until ``run`` of ``connector`` has recorded delivered rows of ``file_name`` (or ended)."""
    decode = Serde(clients.settings).decoder("connector_offset")
    while run.poll() is None:
        cursors = [decode(m.value() or b"") for m in read_to_end(clients, cursor_topic(connector))]
        if any(Path(c["file"]).name == file_name and c["rows_done"] > 0 for c in cursors):
            return
        time.sleep(0.02)


def _feed(fleet: Fleet, sources: list[tuple[str, Path]], gap_s: float, kill_after_s: float | None,
          problems: list[str], say: Callable[[str], None]) -> None:
    """Each export through its connector, one after another, ``gap_s`` apart;
    the connector of ``BIG_FILE`` SIGKILLed ``kill_after_s`` after it starts
    publishing, and run again."""
    for name, path in sources:
        if kill_after_s is not None and path.name == BIG_FILE:
            run = fleet.connector(name, path, stdout=subprocess.PIPE)
            wait_for_checkpoint(fleet.clients, run, name, BIG_FILE)  # so the kill lands mid-file, not before it
            time.sleep(kill_after_s)
            run.kill()
            run.wait()
            run = fleet.connector(name, path, stdout=subprocess.PIPE)
            rerun = run.communicate()[0].decode()
            say(f"  connector killed {kill_after_s:.2f}s into {BIG_FILE}; its rerun: {rerun.splitlines()[-1]}")
        else:
            run = fleet.connector(name, path)
        for _ in range(3):  # 1: the broker did not answer in time (it was killed); its supervisor runs it again
            if run.wait() != 1:
                break
            say(f"  connector {name} on {path.name} failed (status 1: the broker away); run again")
            run = fleet.connector(name, path)
        if run.wait() not in (0, 3):  # 3: finished with rows rejected
            problems.append(f"connector {name} on {path.name} ended with status {run.returncode}")
        time.sleep(gap_s)


def run(sources: list[tuple[str, Path]], workdir: Path, storm: Storm | None,
        say: Callable[[str], None] = lambda line: None, timeout_s: float = 600) -> tuple[Outcome, list[str]]:
    """The exports through two workers on a fresh embedded broker, under
    ``storm`` (None: a clean run). The outcome, and what went wrong on the
    way (connectors that failed). One ``KafkaClients`` serves the run."""
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(storm.seed if storm else 0)
    with EmbeddedBroker(workdir / "kafka").start() as broker, \
            KafkaClients(load_settings(environ={}).on_embedded(broker.bootstrap, app_id="hub-chaos",
                                                               pii_key=CHAOS_PII_KEY)) as clients:
        create_topics(clients)
        fleet = Fleet(clients, workdir)
        actions = _actions(storm, rng)
        span = sum(a[1] + a[2] for a in actions)
        kill_after_s = rng.uniform(0, storm.connector_kill_s) if storm and storm.connector_kill_s else None

        def disrupt() -> None:
            for what, before, during in actions:
                fleet.sleep(before)
                if what.startswith("broker"):
                    say(f"  {'kill' if what == 'broker kill' else 'stop'} the broker (pid {broker.pid}) "
                        f"for {during:.1f}s")
                    broker.kill() if what == "broker kill" else broker.stop()
                    fleet.sleep(during)
                    broker.start()
                    continue
                slot = rng.randrange(len(fleet.workers))
                worker = fleet.workers[slot]
                say(f"  {what} worker {slot} (pid {worker.pid}) for {during:.1f}s")
                if what == "kill":
                    worker.kill()
                    worker.wait()
                    time.sleep(during)
                    fleet.start_worker(slot)
                else:
                    worker.send_signal(signal.SIGSTOP)
                    time.sleep(during)
                    worker.send_signal(signal.SIGCONT)

        return drive(fleet, sources, span / len(sources) if storm else 0, kill_after_s, disrupt, say, timeout_s)


def drive(fleet: Fleet, sources: list[tuple[str, Path]], gap_s: float, kill_after_s: float | None,
          disrupt: Callable[[], None], say: Callable[[str], None], timeout_s: float) -> tuple[Outcome, list[str]]:
    """Two workers; the exports through their connectors, ``gap_s`` apart,
    while ``disrupt()`` runs; then until every event is processed and one
    final tick. The outcome, read with the fleet's settings, and what went
    wrong on the way (connectors that failed)."""
    problems: list[str] = []
    clients, settings = fleet.clients, fleet.settings
    try:
        fleet.start_worker()
        fleet.start_worker()
        feeder = threading.Thread(target=_feed, args=(fleet, sources, gap_s, kill_after_s, problems, say),
                                  daemon=True)
        feeder.start()
        disrupt()
        while feeder.is_alive():
            fleet.sleep(0.5)
        _wait_supervising(fleet, timeout_s)
        # The workers tick every 10 s, wherever that falls among the events; one tick once every event
        # is in decides the deadlines no evidence answered (as `hub backfill` does), so that a run's
        # leads do not depend on whether a periodic tick came after its last event.
        publish_ticks(clients, time.time(), signer(settings, Role.WORKER, settings.worker_name))
        _wait_supervising(fleet, timeout_s)
    finally:
        fleet.stop()
    if fleet.exits:  # a worker's own non-zero exit is its supervisor's to restart: reported, not a fault
        say(f"  workers that exited by themselves and were restarted: {len(fleet.exits)} "
            f"(statuses {sorted(fleet.exits)})")
    return outcome(clients), problems


def _actions(storm: Storm | None, rng: random.Random) -> list[tuple[str, float, float]]:
    """(kill | pause | broker kill | broker stop, seconds before it, seconds it lasts), in order."""
    if storm is None:
        return []
    actions = [("kill", rng.uniform(2, 9), rng.uniform(1, 3)) for _ in range(storm.kills)]
    for _ in range(storm.pauses):
        actions.insert(rng.randrange(len(actions) + 1), ("pause", rng.uniform(2, 9), rng.uniform(8, 15)))
    for what, times in (("broker kill", storm.broker_kills), ("broker stop", storm.broker_stops)):
        for _ in range(times):
            actions.insert(rng.randrange(len(actions) + 1), (what, rng.uniform(2, 9), rng.uniform(1, 3)))
    return actions


def _wait_supervising(fleet: Fleet, timeout_s: float) -> None:
    done: list[BaseException | None] = []

    def wait() -> None:
        try:
            wait_until_processed(fleet.clients, timeout_s)
            done.append(None)
        except BaseException as exc:
            done.append(exc)

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    while waiter.is_alive():
        fleet.sleep(0.5)
    if done and done[0] is not None:
        raise done[0]


def backfilled(sources: list[tuple[str, Path]], workdir: Path, timeout_s: float) -> dict[str, dict[str, Any]]:
    """The open leads `hub backfill` makes of the same exports (every file
    first, then the worker, one tick at the end), compared as a run's are."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "leads.jsonl"
    env = {**os.environ, "HUB_STATE_DIR": str(workdir / "state"), "HUB_PII_KEY": CHAOS_PII_KEY,
           "HUB_APP_ID": "hub-chaos", "HUB_METRICS_PORT": "0", "HUB_WEB_PORT": "-1"}
    env.pop("HUB_BROKER_URL", None)
    with open(workdir / "backfill.log", "wb") as log:
        subprocess.run([sys.executable, "-m", "hub.cli", "backfill", *(a for name, path in sources
                                                                      for a in ("--source", f"{name}={path}")),
                        "--leads-out", str(out), "--timeout", str(timeout_s)], cwd=workdir, env=env, stdout=log,
                       stderr=log, check=True, timeout=timeout_s * 2)
    with EmbeddedBroker(workdir / "state" / "kafka").start() as broker, \
            KafkaClients(load_settings(environ={}).on_embedded(broker.bootstrap, app_id="hub-chaos",
                                                               pii_key=CHAOS_PII_KEY,
                                                               state_dir=workdir / "state")) as clients:
        return open_leads(clients)  # read back as a run's leads are


def storms(workdir: Path, count: int, storm: Storm, rows: int, seed: int,
           say: Callable[[str], None]) -> int:
    """A clean run, then ``count`` storms against it: how many came out identical."""
    # absolute: the runs' processes work in folders of their own, and take the exports' paths
    workdir = workdir.resolve()
    sources = write_dataset(workdir / "exports", seed, rows=rows)
    t0 = time.monotonic()
    clean, problems = run(sources, workdir / "clean", None)
    say(f"clean run: {len(clean.open_leads)} open leads, {len(clean.events)} events, "
        f"{len(clean.rejected_rows)} rows rejected, in {time.monotonic() - t0:.0f}s")
    for fault in clean.faults() + problems:
        say(f"  clean run fault: {fault}")
    filled = backfilled(sources, workdir / "backfill", timeout_s=600)
    apart = compare(clean, dataclasses.replace(clean, open_leads=filled))
    say(f"hub backfill over the same files: {apart.line()}")
    identical = 0
    for n in range(count):
        t0 = time.monotonic()
        result, problems = run(sources, workdir / f"storm-{n}", dataclasses.replace(storm, seed=seed * 1000 + n),
                               say)
        diff = compare(clean, result)
        diff.other += problems
        identical += not diff
        say(f"storm {n + 1}: {diff.line()} in {time.monotonic() - t0:.0f}s")
    say(f"{identical} of {count} storms identical to the clean run")
    return identical
