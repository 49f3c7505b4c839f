"""What people read: the Chinese for the hub's rules, statuses,
escalations and agencies, one table for every page and report
(the board, the 通报). The codes stay English in the records."""
from __future__ import annotations

from hub.domain.events import Agency
from hub.domain.lifecycle import Escalation, LeadStatus
from hub.domain.rules import RuleFamily

RULES = {
    RuleFamily.CRIMINAL_REFERRAL: "涉嫌犯罪移送",
    RuleFamily.CROSS_AGENCY: "多部门交叉",
    RuleFamily.REPEAT_OFFENDER: "屡查屡犯",
    RuleFamily.REVERSE_REFERRAL: "反向移送",
    RuleFamily.RECTIFICATION_OVERDUE: "整改逾期",
    RuleFamily.COMPLAINTS: "投诉举报集中",
    RuleFamily.BATCH_TRACE: "批次追溯",
    RuleFamily.AREA_RISK: "区域风险",
    RuleFamily.RELATED_PARTY: "关联主体",
}

STATUSES = {
    LeadStatus.OPEN: "待签收",
    LeadStatus.SUPERSEDED: "已被替代",
    LeadStatus.ACKNOWLEDGED: "已签收",
    LeadStatus.INVESTIGATING: "核查中",
    LeadStatus.TRANSFERRED: "已移送公安",
    LeadStatus.CLOSED: "已办结",
    LeadStatus.REJECTED: "不予采纳",
    LeadStatus.RECHECKED: "回头看已核实",
}

ESCALATIONS = {
    Escalation.ACKNOWLEDGE_OVERDUE: "超期未签收",
    Escalation.CLOSE_OVERDUE: "超期未办结",
    Escalation.RECHECK_DUE: "回头看到期",
    Escalation.RECHECK_OVERDUE: "回头看逾期",
    Escalation.TRANSFER_OVERDUE: "超期未移送",
    Escalation.TRANSFER_UNFILED: "移送后公安未立案",
    Escalation.NOT_TRANSFERRED: "应移未移（以罚代刑）",
    Escalation.RECTIFICATION_OVERDUE: "整改逾期",
}

AGENCIES = {Agency.SAMR: "市场监管", Agency.POLICE: "公安", Agency.AGRI: "农业农村"}

SEVERITIES = {"CRITICAL": "特急", "HIGH": "紧急", "MEDIUM": "较急", "LOW": "一般"}

PARTY_ROLES = {"SELLER": "销售方", "MEMBER": "同区域不合格主体", "RELATED": "关联主体"}

LINKS = {"POLICE_ACCEPTED": "公安受案", "POLICE_FILED": "公安立案", "POLICE_DROPPED": "公安撤案",
         "RECHECKED": "回头看已核实", "RECTIFIED": "整改已核实", "REFERRAL": "原移送线索"}

# Lead history entries that are not statuses: the hub's own events.
HISTORY = {"REOPENED": "重新打开"}


def rule(code: str) -> str:
    return RULES.get(RuleFamily(code), code) if code in RuleFamily.__members__ else code


def status(code: str) -> str:
    return STATUSES[LeadStatus(code)] if code in LeadStatus.__members__ else code


def escalation(code: str) -> str:
    return ESCALATIONS[Escalation(code)] if code in Escalation.__members__ else code


def agency(code: str) -> str:
    return AGENCIES[Agency(code)] if code in Agency.__members__ else code


def history(code: str) -> str:
    """A history entry's status: a LeadStatus, REOPENED, or ESCALATED_<level>."""
    if code.startswith("ESCALATED_"):
        return "升级：" + escalation(code.removeprefix("ESCALATED_"))
    if code.startswith("WITHDRAWN_"):
        return "撤回升级：" + escalation(code.removeprefix("WITHDRAWN_"))
    return HISTORY.get(code) or status(code)
