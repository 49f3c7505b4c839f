"""The lead rules (线索规则): plain functions over one business's history.

Three families, parameters in ``RuleSettings``:

- ``criminal_referral`` (行刑衔接): a non-food substance or banned pesticide
  found, or a counterfeit/substandard case worth the threshold or more.
- ``cross_agency``: adverse events from at least two agencies within the window.
- ``repeat_offender``: at least N adverse findings (failed samples, 不符合
  inspections, penalties) within the window.

Windows run on the events' own dates, never on arrival time, so a backfill
gives the leads live traffic gave. A rule's hits that chain (each within the
window of the one before) form one lead: its window starts at its earliest
evidence, and that start, with the business and the rule, is its identity.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar
from collections.abc import Callable, Iterable

from hub.domain.events import (COMPLAINT_KINDS, POLICE_TAKES_UP, Event, EventKind, Outcome, detail_of, outcome,
                               reporting_delay_s)
from hub.domain.names import normalise_name
from hub.settings import RuleSettings


class RuleFamily(str, enum.Enum):
    CRIMINAL_REFERRAL = "CRIMINAL_REFERRAL"
    CROSS_AGENCY = "CROSS_AGENCY"
    REPEAT_OFFENDER = "REPEAT_OFFENDER"
    # Follow-through (hub.domain.followup): the police dropped a case (撤案),
    # so it comes back for an administrative penalty; a rectification order
    # (限期整改) ran past its deadline unconfirmed.
    REVERSE_REFERRAL = "REVERSE_REFERRAL"
    RECTIFICATION_OVERDUE = "RECTIFICATION_OVERDUE"
    # New signals (hub.domain.signals): complaints from several independent
    # complainants (投诉举报); one producer's batch failing at several sellers
    # (可追溯); several businesses of a county failing one item in one
    # category (风险预警, a lead on the area, not on a business); a business
    # whose legal representative also represents a listed or referred one (关联主体).
    COMPLAINTS = "COMPLAINTS"
    BATCH_TRACE = "BATCH_TRACE"
    AREA_RISK = "AREA_RISK"
    RELATED_PARTY = "RELATED_PARTY"


class Severity(str, enum.Enum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


SEVERITY = {RuleFamily.CRIMINAL_REFERRAL: Severity.CRITICAL, RuleFamily.CROSS_AGENCY: Severity.HIGH,
            RuleFamily.REPEAT_OFFENDER: Severity.MEDIUM, RuleFamily.REVERSE_REFERRAL: Severity.MEDIUM,
            RuleFamily.RECTIFICATION_OVERDUE: Severity.MEDIUM, RuleFamily.COMPLAINTS: Severity.MEDIUM,
            RuleFamily.BATCH_TRACE: Severity.HIGH, RuleFamily.AREA_RISK: Severity.HIGH,
            RuleFamily.RELATED_PARTY: Severity.MEDIUM}

RECOMMENDED_ACTION = {  # in the desks' language: the board and every team's topic show it as it is
    RuleFamily.CRIMINAL_REFERRAL: "移送公安机关（行刑衔接）：3日内作出移送决定，24小时内移送；"
                                  "涉嫌犯罪的，绝不能以罚代刑",
    RuleFamily.CROSS_AGENCY: "联合执法：相关部门联合检查，互通案卷，避免各自为战",
    RuleFamily.REPEAT_OFFENDER: "重点监管：列为重点监管对象，复查并视情采取许可证措施",
    RuleFamily.REVERSE_REFERRAL: "反向移送：公安机关已撤案，依法考虑给予行政处罚，避免违法行为不了了之",
    RuleFamily.RECTIFICATION_OVERDUE: "整改逾期：整改期限届满未经合规复查确认，应复查并依法处罚",
    RuleFamily.COMPLAINTS: "投诉举报集中：多名相互独立的投诉举报人反映同一主体，应现场检查（职业索赔人的投诉不计入）",
    RuleFamily.BATCH_TRACE: "批次追溯：同一批次在多个销售者处不合格，应在生产者处追溯并下架召回，通报销售者所在区县",
    RuleFamily.AREA_RISK: "风险预警：本区县多家主体同类产品同一项目不合格，属区域性风险，应开展专项抽检并追查来源",
    RuleFamily.RELATED_PARTY: "关联主体：法定代表人同时担任被列入严重违法失信名单或涉嫌犯罪移送主体的法定代表人，"
                              "应核查本主体的许可与经营情况",
}

_COUNTERFEIT = re.compile(r"伪劣|假冒|以假充真|以次充好|以不合格产品冒充合格产品|不符合安全标准")

# Kinds whose adverse events count as findings for repeat_offender (police cases do not).
_FINDING_KINDS = {EventKind.SAMPLING_FAILURE.value, EventKind.INSPECTION.value,
                  EventKind.PENALTY.value, EventKind.FARM_SAMPLING.value}


@dataclass(frozen=True, slots=True)
class Fact:
    """What the rules keep of one event: small, so a business's history is cheap to store."""

    event_id: str
    agency: str
    kind: str
    occurred_on: dt.date
    adverse: bool
    criminal: str  # why it is a criminal referral, or ""
    summary: str
    source_record_id: str
    received_ms: int
    category: str = ""  # product category or sample name (teams subscribe by theme)
    identity: str = ""  # what makes the finding the same finding (see finding_identity)
    # Near-duplicate reports of this finding merged into it:
    # (event_id, source_record_id, the report's date as an ordinal).
    also_reported: tuple[tuple[str, str, int], ...] = ()
    resolution: str = ""  # how a record without a USCC was tied to this business
    # Where the record went when resolution moved it off this key ("" = it is here):
    # kept so the superseded lead can still show what it held.
    moved_to: str = ""
    outcome: str = ""  # an Outcome: what the record says became of a finding (follow-through)
    due: int = 0  # a rectification deadline (整改期限) the record set, as a date ordinal; 0: none
    delay_days: int = 0  # from the record's own date to its arrival at the hub (迟报)
    # Another party the record names (hub.domain.signals): the seller on a
    # producer's sample, the complainant's keyed hash on a complaint, the
    # member business at an index, the other business of a related-party link.
    party: str = ""
    party_name: str = ""
    party_region: str = ""

    def report_dates(self) -> list[dt.date]:
        """The dates of every report of this finding: its own and the merged ones'."""
        return [self.occurred_on, *(dt.date.fromordinal(d) for _, _, d in self.also_reported)]


def criminal_reason(event: Event, rules: RuleSettings) -> str:
    """Why this single event calls for transfer to the police, or ""."""
    if not event["adverse"]:
        return ""
    return _banned_substance(event, rules) or _counterfeit(event, rules)


def _banned_substance(event: Event, rules: RuleSettings) -> str:
    """A failed test item that is a non-food substance or a banned pesticide, or ""."""
    for finding in event["findings"]:
        reason = _banned(finding["item"], rules) if finding["failed"] else ""
        if reason:
            return reason
    return ""


def _banned(item: str, rules: RuleSettings) -> str:
    if any(substance in item for substance in rules.non_food_substances):
        return f"非食用物质 {item} (刑法第144条)"
    if any(pesticide in item for pesticide in rules.banned_pesticides):
        return f"禁用农药 {item}"
    return ""


def _counterfeit(event: Event, rules: RuleSettings) -> str:
    """伪劣产品 (刑法第140条) on the figures the record gives, or ""."""
    offence = event["offence"] or ""
    if not _COUNTERFEIT.search(offence):
        return ""
    if event["kind"] == EventKind.PENALTY.value:
        # A penalty's value_yuan is its fine and confiscation: never a figure
        # of the law (a 12万 fine can punish 8 000 元 of goods). The figures
        # are those the record states.
        return counterfeit_reason(penalty_figures(detail_of(event).get("violation_facts") or "", offence), rules)
    value = event["value_yuan"]  # a police case's 涉案金额, as the police record it
    if value is not None and value >= rules.counterfeit_threshold_yuan:
        return f"伪劣产品 涉案金额{value}元 ≥ {rules.counterfeit_threshold_yuan}元 (刑法第140条)"
    return ""


@dataclass(frozen=True)
class StatedFigures:
    """The figures of the law as a record states them (in 违法事实): 销售金额
    (sales), 货值金额 (the goods' value, sold or not), of which 未销售 /
    尚未销售 (unsold), 违法所得 (illegal gains), 非法经营数额 (illegal
    turnover); in 元, None where the record states none. A fine (罚款) or a
    confiscation (罚没) is never one of them."""

    sales: Decimal | None = None
    goods_value: Decimal | None = None
    unsold_value: Decimal | None = None
    illegal_gains: Decimal | None = None
    illegal_turnover: Decimal | None = None

    @property
    def none(self) -> bool:
        return all(v is None for v in dataclasses.astuple(self))


_FIGURE = re.compile(r"(未销售|尚未销售|库存)?[^，。；,;0-9]{0,6}?(销售金额|货值金额|违法所得|非法经营数额)"
                     r"[^，。；,;0-9０-９]{0,8}?([0-9０-９][0-9０-９,.．]*)\s*(万)?元")
_FIGURE_NAMES = {"销售金额": "sales", "货值金额": "goods_value", "违法所得": "illegal_gains",
                 "非法经营数额": "illegal_turnover"}


def stated_figures(text: str) -> StatedFigures:
    """The figures ``text`` states (``销售金额6.2万元``, ``尚未销售的货值金额16万元``);
    several of one kind add up."""
    found: dict[str, Decimal] = {}
    for unsold, name, number, wan in _FIGURE.findall(unicodedata.normalize("NFKC", text)):
        try:
            amount = Decimal(number.replace(",", "").rstrip(".")) * (10_000 if wan else 1)
        except ArithmeticError:
            continue
        field = "unsold_value" if unsold and name == "货值金额" else _FIGURE_NAMES[name]
        found[field] = found.get(field, Decimal(0)) + amount
    return StatedFigures(**found)


def penalty_figures(facts: str, offence: str) -> StatedFigures:
    """The figures a penalty states: those of its 违法事实, or, when those
    state none, of its 违法行为类型. Never both added: a penalty without a
    violation type has its facts as its offence, and the same 销售金额 read
    twice would double it."""
    figures = stated_figures(facts)
    return stated_figures(offence) if figures.none else figures


def counterfeit_reason(figures: StatedFigures, rules: RuleSettings) -> str:
    """刑法第140条 on the figures stated: 销售金额 of the threshold or more; or
    goods whose value (sold or not: sold, they are sales too) reaches the
    attempt threshold; or 销售金额 × 3 plus unsold 货值金额 reaching it (立案追诉标准)."""
    sales, unsold = figures.sales, figures.unsold_value
    goods = max(figures.goods_value or Decimal(0), unsold or Decimal(0))
    if sales is not None and sales >= rules.counterfeit_threshold_yuan:
        return f"伪劣产品 销售金额{_yuan(sales)}元 ≥ {rules.counterfeit_threshold_yuan}元 (刑法第140条)"
    if goods >= rules.counterfeit_goods_value_threshold_yuan:
        return (f"伪劣产品 货值金额{_yuan(goods)}元 ≥ {rules.counterfeit_goods_value_threshold_yuan}元 "
                "(刑法第140条, 未遂)")
    return _sold_and_unsold_reason(sales, unsold, rules)


def _sold_and_unsold_reason(sales: Decimal | None, unsold: Decimal | None, rules: RuleSettings) -> str:
    """销售金额 × 3 plus unsold 货值金额 reaching the attempt threshold (立案追诉标准), or ""."""
    if sales is not None and unsold is not None and \
            sales * 3 + unsold >= rules.counterfeit_goods_value_threshold_yuan:
        return (f"伪劣产品 销售金额{_yuan(sales)}元×3 + 未销售货值金额{_yuan(unsold)}元 ≥ "
                f"{rules.counterfeit_goods_value_threshold_yuan}元 (刑法第140条)")
    return ""


def _yuan(amount: Decimal) -> str:
    return f"{amount.to_integral_value() if amount == amount.to_integral_value() else amount.normalize():f}"


def missing_figure_note(offence: str, facts: str) -> str:
    """What a counterfeit penalty's record lacks for the law, or "": the hub
    does not guess a figure, it asks the agency for it."""
    if not _COUNTERFEIT.search(offence) or not penalty_figures(facts, offence).none:
        return ""
    return "涉案销售金额、货值金额未载明，请执法机关补充（是否涉嫌刑法第140条无从判断）"


def category(event: Event) -> str:
    """The sampled product's category (分类) or, for farm samples, the sample (样品名称)."""
    body = detail_of(event)
    return str(body.get("category") or body.get("sample_name") or "")


def finding_identity(event: Event) -> str:
    """What makes two sampling reports one finding, whatever their source IDs:
    the kind, the product (normalised name), the batch or production date
    (for farm samples, which have none, the sampling date) and the failed
    items with their results. The business is the state's own. "" for
    records that are not sample findings: those have their own IDs."""
    if event["kind"] not in (EventKind.SAMPLING_FAILURE.value, EventKind.FARM_SAMPLING.value) or not event["adverse"]:
        return ""
    body = detail_of(event)
    product = _product(body)
    items = _failed_items(event)
    if not product or not items:  # too little to call two reports the same finding
        return ""
    return "|".join([event["kind"], product, normalise_name(str(_batch(event, body) or "")), *items,
                     *_seller(event, body)])


def _product(body: dict[str, Any]) -> str:
    """The product's normalised name; a farm sample's, the sample's."""
    return normalise_name(str(body.get("product") or body.get("sample_name") or ""))


def _batch(event: Event, body: dict[str, Any]) -> Any:
    """The batch or production date (生产日期/批号); a farm sample's sampling date."""
    return body.get("batch") if event["kind"] == EventKind.SAMPLING_FAILURE.value else event["occurred_on"].isoformat()


def _failed_items(event: Event) -> list[str]:
    return sorted(f"{normalise_name(f['item'])}={normalise_name(f['result'] or '')}"
                  for f in event["findings"] if f["failed"])


def _seller(event: Event, body: dict[str, Any]) -> list[str]:
    # A producer's samples of one batch at two sellers are two samples, however alike.
    if event["business"]["role"] != "PRODUCER":
        return []
    return [f"seller={normalise_name(str(body.get('counterpart_name') or ''))}"]


def batch_of(fact: Fact) -> str:
    """The producer's batch a producer's failed sample belongs to (product and
    生产日期/批号), or "" (not a producer's sample, or no batch written)."""
    if fact.kind != EventKind.SAMPLING_FAILURE.value or not fact.party or not fact.identity:
        return ""
    _, product, batch, *_ = fact.identity.split("|")
    return f"{product}|{batch}" if batch else ""


def to_fact(event: Event, rules: RuleSettings) -> Fact:
    received: dt.datetime = event["received_at"]
    body = detail_of(event)
    due = body.get("rectify_by") if event["kind"] == EventKind.INSPECTION.value else None
    party, party_name, party_region = _party(event, body)
    return Fact(event["event_id"], event["agency"], event["kind"], event["occurred_on"],
                event["adverse"], criminal_reason(event, rules), event["summary"],
                event["source_record_id"], int(received.timestamp() * 1000), category(event),
                finding_identity(event), resolution=event.get("resolution") or "",
                outcome=outcome(event).value, due=due.toordinal() if isinstance(due, dt.date) else 0,
                delay_days=int(reporting_delay_s(event) // 86_400), party=party, party_name=party_name,
                party_region=party_region)


def _party(event: Event, body: dict[str, Any]) -> tuple[str, str, str]:
    """The other party the record names (key, name, region): a complaint's
    complainant, by keyed hash; a producer's sample's seller."""
    if event["kind"] in COMPLAINT_KINDS:
        return str(body["complainant_ref"]), "", ""
    if event["business"]["role"] == "PRODUCER" and body.get("counterpart_name"):
        party_name = str(body["counterpart_name"])
        return normalise_name(party_name), party_name, str(body.get("counterpart_region") or "")
    return "", "", ""


@dataclass(frozen=True)
class LeadDraft:
    """A lead as the rules see it: identity, rule and evidence."""

    lead_id: str
    rule: RuleFamily
    window_start: dt.date
    window_end: dt.date
    evidence: tuple[Fact, ...]

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.rule]

    @property
    def agencies(self) -> list[str]:
        return sorted({f.agency for f in self.evidence})

    def fingerprint(self) -> str:
        """Changes exactly when the lead's substance changes: its evidence, the
        reports merged into each finding, how each was resolved. (Unresolved
        facts hash as they did before resolution existed: no republishing.)"""
        ids = sorted(f"{f.event_id}+{','.join(e for e, *_ in f.also_reported)}"
                     + (f"~{f.resolution}" if f.resolution else "") for f in self.evidence)
        return hashlib.sha1("|".join(ids).encode()).hexdigest()[:16]


LEAD_ID_PREFIX = "lead-"


def lead_id(business_key: str, rule: RuleFamily, window_start: dt.date) -> str:
    digest = hashlib.sha1(f"{business_key}|{rule.value}|{window_start.isoformat()}".encode()).hexdigest()
    return f"{LEAD_ID_PREFIX}{digest[:20]}"


class Dated(Protocol):
    """A record the windows slide over: a fact, or a filing at a complainant's index."""

    @property
    def event_id(self) -> str: ...

    @property
    def occurred_on(self) -> dt.date: ...


D = TypeVar("D", bound=Dated)


def history_horizon(records: Iterable[Dated], rules: RuleSettings) -> dt.date:
    """The oldest date a history keeps: ``history_days`` before its latest record."""
    return max(r.occurred_on for r in records) - dt.timedelta(days=rules.history_days)


def kept_history(records: Iterable[D], horizon: dt.date, most: int) -> list[D]:
    """The ``most`` latest records from ``horizon`` on, oldest first: what a
    business's history (or a complainant's index) keeps."""
    return sorted((r for r in records if r.occurred_on >= horizon), key=lambda r: (r.occurred_on, r.event_id))[-most:]


def chains(facts: list[D], window_days: int, qualifies: Callable[[list[D]], bool]) -> list[list[D]]:
    """Slide a window of ``window_days`` ending at each fact; every window that
    qualifies is a hit; hits that chain (the next starts within the window of
    the previous one's last fact) merge into one group of evidence."""
    groups: list[list[D]] = []
    last_end: dt.date | None = None
    start = 0
    for i, fact in enumerate(facts):
        while (fact.occurred_on - facts[start].occurred_on).days >= window_days:
            start += 1
        window = facts[start:i + 1]
        if not qualifies(window):
            continue
        _add_hit(groups, window, last_end, window_days)
        last_end = fact.occurred_on
    return groups


def _add_hit(groups: list[list[D]], window: list[D], last_end: dt.date | None, window_days: int) -> None:
    """A qualifying window joins the last group when it starts within the
    window of that group's last hit (``last_end``); else it starts a group."""
    if groups and last_end is not None and (window[0].occurred_on - last_end).days < window_days:
        seen = {f.event_id for f in groups[-1]}
        groups[-1].extend(f for f in window if f.event_id not in seen)
    else:
        groups.append(list(window))


def _one_per_batch(facts: Iterable[Fact]) -> list[Fact]:
    """A producer's batch that failed at several sellers is one finding at the
    producer (its first sample stands for it), not one per seller."""
    seen: set[str] = set()
    out = []
    for fact in facts:
        batch = batch_of(fact)
        if batch and batch in seen:
            continue
        seen.add(batch)
        out.append(fact)
    return out


def _takes_up_a_referral(fact: Fact, adverse: list[Fact]) -> bool:
    """The police accepting or filing a case after another agency's criminal
    finding on the business: the referral's follow-up (linked to it as
    POLICE_FILED), not a second agency's separate evidence, so it makes no
    CROSS_AGENCY lead of the same facts. Decided from the facts alone, so
    whatever order they came in."""
    return fact.outcome in POLICE_TAKES_UP and any(
        f.criminal and f.agency != fact.agency and f.occurred_on <= fact.occurred_on for f in adverse)


def evaluate(business_key: str, facts: Iterable[Fact], rules: RuleSettings) -> list[LeadDraft]:
    """Every lead the history implies. Deterministic in the set of facts,
    whatever order they arrived in. Facts resolution moved elsewhere do not count."""
    facts = list(facts)
    adverse = sorted((f for f in facts if f.adverse and not f.moved_to), key=lambda f: (f.occurred_on, f.event_id))
    drafts = []
    for family, candidates, window_days, qualifies in _families(adverse, rules):
        drafts += _drafts(business_key, family, chains(candidates, window_days, qualifies))
    return drafts + _reverse_referrals(business_key, facts)


def _families(adverse: list[Fact], rules: RuleSettings) -> list[
        tuple[RuleFamily, list[Fact], int, Callable[[list[Fact]], bool]]]:
    """The windowed rules: each family's candidate facts, its window, and what makes a window a hit."""
    return [
        (RuleFamily.CRIMINAL_REFERRAL, [f for f in adverse if f.criminal],
         rules.cross_agency_window_days, lambda w: True),
        (RuleFamily.CROSS_AGENCY, [f for f in adverse if not _takes_up_a_referral(f, adverse)],
         rules.cross_agency_window_days, lambda w: _agency_count(w) >= rules.cross_agency_min_agencies),
        (RuleFamily.REPEAT_OFFENDER, _one_per_batch(f for f in adverse if f.kind in _FINDING_KINDS),
         rules.repeat_offender_window_days, lambda w: len(w) >= rules.repeat_offender_min_findings),
    ]


def _agency_count(window: list[Fact]) -> int:
    return len({f.agency for f in window})


def _drafts(business_key: str, family: RuleFamily, groups: list[list[Fact]]) -> list[LeadDraft]:
    drafts = []
    for group in groups:
        group.sort(key=lambda f: (f.occurred_on, f.event_id))
        start, end = group[0].occurred_on, group[-1].occurred_on
        drafts.append(LeadDraft(lead_id(business_key, family, start), family, start, end, tuple(group)))
    return drafts


def _reverse_referrals(business_key: str, facts: list[Fact]) -> list[LeadDraft]:
    """反向移送: each dropped case comes back on its own (a 撤案 is not adverse: it counts for no other rule)."""
    dropped: dict[dt.date, list[Fact]] = {}
    for fact in sorted(facts, key=lambda f: f.event_id):
        if fact.outcome == Outcome.POLICE_DROPPED.value and not fact.moved_to:
            dropped.setdefault(fact.occurred_on, []).append(fact)
    family = RuleFamily.REVERSE_REFERRAL
    return [LeadDraft(lead_id(business_key, family, day), family, day, day, tuple(same_day))
            for day, same_day in sorted(dropped.items())]
