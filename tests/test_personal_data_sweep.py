"""The personal-data sweep: people planted in every column and free-text field
of every connector's format, as clerks really type them (valid IDs, IDs with
a checksum typo, 15-digit, spaced and full-width IDs, mobiles and landlines,
names wherever they recur), run through connectors, a worker, the CLI's
feedback, a foreign client's feedback, dead letters and the lead board. Then
every byte of every topic on the broker, every log line and every command's
output is searched: no person in clear anywhere."""
from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
import unicodedata
import urllib.request
from pathlib import Path
from collections.abc import Iterator

import pytest

from connectors.agri_sampling import AgriSamplingConnector
from connectors.business_registry import BusinessRegistryConnector
from connectors.police_case import PoliceCaseConnector
from connectors.samr_complaint import SamrComplaintConnector
from connectors.samr_credit import SamrCreditConnector
from connectors.samr_inspection import SamrInspectionConnector
from connectors.samr_penalty import SamrPenaltyConnector
from connectors.samr_sampling import SamrSamplingConnector
from hub.kafka.clients import KafkaClients
from hub.trust import Role, ensure_keys, signer, trust_env
from hub.trust.keys import TrustStore, board_token, key_file, load_key
from hub.kafka.broker import EmbeddedBroker
from hub.domain.teams import load_teams
from hub.edge.feedback import feedback, publish_feedback
from hub.kafka.readers import final_leads
from hub.apps.pipeline import wait_until_processed
from hub.devtools.samples import (FUSHUN, LIQUOR, SUSPECT2_NAME, SUSPECT_ID, SUSPECT_NAME, VEG_BASE, YUXIANG, _headers,
                         make_resident_id, write_csv, write_scenario, write_xlsx)
from hub.settings import load_settings
from hub.kafka.topics import create_topics, read_to_end
from hub.flow.topics import feedback_topic
from tests.conftest import TEST_PII_KEY
from tests.helpers import hub, start_worker, wait_for
import contextlib

pytestmark = pytest.mark.broker

LEGAL_REP = "赵德明"
NATURAL = "周桂兰"          # a natural person penalised
NATURAL_BAD = "孙玉珍"      # another, whose row is rejected (her ID typed as the USCC)
INFORMANT = "刘红梅"
INSPECTOR = "何晓燕"
COMPLAINANT = "吴秀英"      # a 12315 complainant: protected by law (暂行办法 art. 33)
ID_COMPLAINANT = make_resident_id("140702", dt.date(1988, 6, 1), "428")
ID_LEGAL = make_resident_id("140702", dt.date(1971, 3, 4), "217")
ID_TYPO = SUSPECT_ID[:-1] + ("1" if SUSPECT_ID[-1] != "1" else "2")   # checksum typo
ID_15 = "410502780517301"                                               # an old 15-digit ID
ID_SPACED = f"{ID_LEGAL[:6]} {ID_LEGAL[6:14]} {ID_LEGAL[14:]}"
ID_FULLWIDTH = unicodedata.normalize("NFKC", ID_LEGAL).translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})
MOBILE, MOBILE_DASHED = "13912345678", "139-1234-5678"
LANDLINE = "0354-6231234"
# Issue 31: the odd forms. Numbers spaced twice, with no-break spaces, dots,
# letters touching them, run together; names with a clerk's note in a
# personal column, and names a role word introduces in free text.
ID_ODD = make_resident_id("410502", dt.date(1977, 3, 3), "341")
ID_IN_FILE_NAME = make_resident_id("410502", dt.date(1977, 6, 6), "661")
ODD = {f"{ID_ODD[:6]}  {ID_ODD[6:]}": ID_ODD, f"{ID_ODD[:6]}\u00a0{ID_ODD[6:14]}\u00a0{ID_ODD[14:]}": ID_ODD,
       f"{ID_ODD[:6]}.{ID_ODD[6:14]}.{ID_ODD[14:]}": ID_ODD, f"ID{ID_ODD}": ID_ODD, "139.8765.4322": "13987654322",
       "Tel13987654321": "13987654321", "13987654324abc": "13987654324", "0354 - 3019876": "03543019876",
       "1398765432613912345670": "13987654326"}
REP_NOTED, SUSPECT_NOTED, OPERATOR_NOTED = "猪八戒（法人）", f"{SUSPECT_NAME}（男，45岁）", f"{LEGAL_REP}（经营者）"
BY_ROLE = {
    "经办人": "钱多多",
    "民警": "郑小虎",
    "检测员": "孙丽娜",
    "联系人": "周小云",
    "举报人": "冯大庆",
    "当事人": "褚小楠",
}
NAMES = [
    SUSPECT_NAME,
    SUSPECT2_NAME,
    LEGAL_REP,
    NATURAL,
    NATURAL_BAD,
    INFORMANT,
    INSPECTOR,
    COMPLAINANT,
    "猪八戒",
    *BY_ROLE.values(),
]
NUMBERS = [
    SUSPECT_ID,
    ID_LEGAL,
    ID_COMPLAINANT,
    ID_TYPO,
    ID_15,
    ID_SPACED,
    ID_FULLWIDTH,
    MOBILE,
    MOBILE_DASHED,
    LANDLINE,
    LANDLINE.replace("-", ""),
    *ODD,
    *set(ODD.values()),
    "13912345670",
    ID_IN_FILE_NAME,
]


def _odd(*written: str) -> str:
    return "，".join(written)


def _role(*cues: str) -> str:
    return "，".join(f"{cue}{BY_ROLE[cue]}" for cue in cues)


def _needles() -> dict[str, list[bytes]]:
    """Each secret as it could sit in bytes: UTF-8 and GBK."""
    out: dict[str, list[bytes]] = {}
    for secret in NAMES + NUMBERS:
        forms = {secret.encode("utf-8")}
        with contextlib.suppress(UnicodeEncodeError):
            forms.add(secret.encode("gbk"))
        out[secret] = sorted(forms)
    return out


def _row(connector: type, **values: str) -> list[str]:
    return [values.get(c, "") for c in _headers(connector)]


def planted(folder: Path) -> list[tuple[str, Path]]:
    """One file per connector with people in every free-text place, and bad rows to dead-letter."""
    folder.mkdir(parents=True, exist_ok=True)
    police = [
        _row(
            PoliceCaseConnector,
            案件编号="P-SWEEP-1",
            案件名称=f"{SUSPECT_NAME}等销售伪劣白酒案（{ID_SPACED}）",
            案由=f"{SUSPECT_NAME}生产、销售伪劣产品罪",
            受案时间="2026-08-20",
            立案时间="2026-08-22",
            案件状态="立案",
            涉案单位名称=LIQUOR.name,
            涉案单位统一社会信用代码=LIQUOR.uscc,
            犯罪嫌疑人姓名=f"{SUSPECT_NOTED}、{SUSPECT2_NAME}",
            犯罪嫌疑人身份证号=f"{SUSPECT_ID}、{ID_15}",
            **{"涉案金额(元)": "90000"},
            办案单位=f"太谷分局 承办人联系{SUSPECT2_NAME} {LANDLINE}，{_role('民警')}，{_odd(*list(ODD)[:3])}",
            线索来源=f"群众举报（{INFORMANT} {MOBILE_DASHED}）",
        ),
        # a clerk typed a suspect's name as the status: a dead letter that must not show it
        _row(
            PoliceCaseConnector,
            案件编号="P-SWEEP-2",
            案件名称="某案",
            案由="生产、销售伪劣产品罪",
            受案时间="2026-08-20",
            案件状态=SUSPECT_NAME,
            涉案单位名称=LIQUOR.name,
            涉案单位统一社会信用代码=LIQUOR.uscc,
            犯罪嫌疑人姓名=SUSPECT_NAME,
            犯罪嫌疑人身份证号=ID_TYPO,
        ),
    ]
    penalty = [
        _row(
            SamrPenaltyConnector,
            行政相对人名称=NATURAL,
            行政相对人类别="自然人",
            处罚决定书文号="晋太市监罚〔2026〕301号",
            违法行为类型=f"{NATURAL}销售伪劣白酒",
            违法事实=f"当事人{NATURAL}（身份证{ID_FULLWIDTH}，电话{MOBILE}）销售伪劣白酒，{_role('经办人')}，{_odd(*list(ODD)[3:6])}",
            处罚类别="罚款",
            处罚内容=f"对{NATURAL}罚款",
            **{"罚款金额(万元)": "0.5"},
            处罚决定日期="2026-09-10",
            处罚机关="晋中市太谷区市场监督管理局",
            备注=f"联系电话{LANDLINE}",
        ),
        _row(
            SamrPenaltyConnector,
            行政相对人名称=FUSHUN.name,
            行政相对人类别="法人及非法人组织",
            **{"行政相对人代码_1(统一社会信用代码)": FUSHUN.uscc},
            法定代表人=LEGAL_REP,
            法定代表人证件号码=ID_LEGAL,
            处罚决定书文号="晋榆市监罚〔2026〕302号",
            违法行为类型=f"{LEGAL_REP}生产经营不符合食品安全标准的食品",
            违法事实=f"法定代表人{LEGAL_REP}（{ID_TYPO}）组织生产",
            处罚依据=f"食品安全法；经办{LEGAL_REP}",
            处罚类别="罚款",
            处罚内容=f"对{LEGAL_REP}个人罚款",
            **{"罚款金额(万元)": "1"},
            处罚决定日期="2026-09-11",
            处罚机关="晋中市榆次区市场监督管理局",
            数据来源单位=f"榆次区局 {MOBILE}",
            备注=f"{LEGAL_REP} {ID_15}",
        ),
        # a natural person's ID typed where the USCC goes: rejected, and her name and ID stay hidden
        _row(
            SamrPenaltyConnector,
            行政相对人名称=NATURAL_BAD,
            行政相对人类别="自然人",
            **{"行政相对人代码_1(统一社会信用代码)": ID_LEGAL},
            处罚决定书文号="晋太市监罚〔2026〕303号",
            违法行为类型="销售过期食品",
            违法事实=f"当事人{NATURAL_BAD}销售过期食品",
            处罚类别="警告",
            处罚决定日期="2026-09-12",
            处罚机关="晋中市太谷区市场监督管理局",
        ),
    ]
    inspection = [
        _row(
            SamrInspectionConnector,
            检查编号="JC-SWEEP-1",
            被检查单位名称=FUSHUN.name,
            统一社会信用代码=FUSHUN.uscc,
            许可证编号=FUSHUN.licence,
            检查日期="2026-09-01",
            检查人员=INSPECTOR,
            检查结果="不符合",
            结果处理="书面限期整改",
            发现问题=f"{INSPECTOR}现场发现后厨脏乱，负责人手机{MOBILE}，身份证{ID_TYPO}，{_odd(*list(ODD)[6:])}",
        )
    ]
    sampling = [
        _row(
            SamrSamplingConnector,
            抽样编号="GC-SWEEP-1",
            标称生产企业名称=FUSHUN.name,
            标称生产企业地址="山西省晋中市榆次区",
            被抽样单位名称=f"太谷区小卖部（电话{MOBILE}）",
            被抽样单位地址=f"太谷区 {LANDLINE}",
            食品名称="月饼",
            **{"不合格项目‖检验结果‖标准值": "菌落总数‖5000CFU/g‖≤1000CFU/g", "生产日期/批号": "2026-08-01"},
            分类="糕点",
            公告号="2026年第40号",
            公告日期="2026-09-15",
            检验机构=f"某检测站 {MOBILE}",
            备注=f"联系人身份证{ID_15}，电话{MOBILE_DASHED}",
        )
    ]
    agri = [
        _row(
            AgriSamplingConnector,
            样品编号="NY-SWEEP-1",
            样品名称="芹菜",
            受检单位名称=VEG_BASE.name,
            统一社会信用代码=VEG_BASE.uscc,
            抽样地点=f"基地（负责人电话{MOBILE}）",
            抽样日期="2026-09-03",
            检测项目="毒死蜱",
            检测值="0.3",
            限量值="0.05",
            单位="mg/kg",
            判定结果="不合格",
            检测机构=f"检测员{LANDLINE}，{_role('检测员')}",
        )
    ]
    registry = [
        _row(
            BusinessRegistryConnector,
            统一社会信用代码=YUXIANG.uscc,
            企业名称=YUXIANG.name,
            住所=f"{YUXIANG.address}（联系电话{MOBILE}，身份证{ID_SPACED}，法人猪八戒）",
            登记机关="原阳县市场监督管理局",
            法定代表人=REP_NOTED,
            法定代表人证件号码=ID_SPACED,
        )
    ]
    complaint = [
        _row(
            SamrComplaintConnector,
            登记编号="12315-SWEEP-1",
            登记日期="2026-09-05",
            诉求类型="举报",
            被投诉举报对象名称=FUSHUN.name,
            被投诉举报对象统一社会信用代码=FUSHUN.uscc,
            所属行政区划="140702",
            涉及商品或服务=f"月饼（{COMPLAINANT}购买）",
            问题描述=f"{COMPLAINANT}（身份证{ID_COMPLAINANT}）举报：法定代表人{LEGAL_REP}销售过期月饼，电话{MOBILE}，"
            f"{_role('联系人', '举报人', '当事人')}",
            诉求人姓名=COMPLAINANT,
            诉求人联系电话=MOBILE_DASHED,
            诉求人证件号码=ID_COMPLAINANT,
            处理单位=f"榆次区局 {LANDLINE}",
            处理状态="已受理",
        ),
        # a clerk typed the complainant's name as the status: a dead letter that must not show it
        _row(
            SamrComplaintConnector,
            登记编号="12315-SWEEP-2",
            登记日期="2026-09-06",
            诉求类型="投诉",
            被投诉举报对象名称=FUSHUN.name,
            诉求人姓名=COMPLAINANT,
            诉求人证件号码=ID_COMPLAINANT,
            处理状态=COMPLAINANT,
        ),
    ]
    credit = [
        _row(
            SamrCreditConnector,
            主体名称=FUSHUN.name,
            统一社会信用代码=FUSHUN.uscc,
            法定代表人=OPERATOR_NOTED,
            法定代表人证件号码=ID_LEGAL,
            列入日期="2026-09-20",
            列入事由=f"{LEGAL_REP}（{ID_LEGAL}）组织生产不合格食品",
            作出决定机关=f"晋中市市场监督管理局 {MOBILE}",
        )
    ]
    return [
        (
            "police.case",
            write_csv(folder / f"刑事案件_ID{ID_IN_FILE_NAME}.csv", _headers(PoliceCaseConnector), police, "utf-8"),
        ),
        # clerks name files after people: the hub names a file without its folders, its numbers as tokens
        (
            "samr.penalty",
            write_csv(folder / f"sweep-penalty-{MOBILE}.csv", _headers(SamrPenaltyConnector), penalty, "gbk"),
        ),
        (
            "samr.inspection",
            write_csv(folder / "sweep-inspection.csv", _headers(SamrInspectionConnector), inspection, "utf-8-sig"),
        ),
        ("samr.sampling", write_csv(folder / "sweep-sampling.csv", _headers(SamrSamplingConnector), sampling, "gbk")),
        ("agri.sampling", write_xlsx(folder / f"sweep-agri-{SUSPECT_ID}.xlsx", _headers(AgriSamplingConnector), agri)),
        (
            "registry.business",
            write_csv(folder / "sweep-registry.csv", _headers(BusinessRegistryConnector), registry, "utf-8"),
        ),
        (
            "samr.complaint",
            write_csv(folder / "sweep-complaint.csv", _headers(SamrComplaintConnector), complaint, "gbk"),
        ),
        ("samr.credit", write_csv(folder / "sweep-credit.csv", _headers(SamrCreditConnector), credit, "utf-8")),
    ]


@pytest.fixture
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with EmbeddedBroker(tmp_path_factory.mktemp("kafka")).start() as running:
        yield running.bootstrap


def _hits(where: str, data: bytes, needles: dict[str, list[bytes]]) -> list[str]:
    return [f"{where}: {secret}" for secret, forms in needles.items() if any(f in data for f in forms)]


def test_no_person_in_clear_anywhere(own_broker: str, tmp_path: Path, make_clients) -> None:
    settings = load_settings(environ={}).on_embedded(
        own_broker, pii_key=TEST_PII_KEY, app_id="hub-sweep", state_dir=tmp_path / "state"
    )
    clients = make_clients(settings)
    create_topics(clients)
    ensure_keys(settings)
    env = {
        **trust_env(settings),
        "HUB_BROKER_URL": settings.broker_url,
        "HUB_PII_KEY": TEST_PII_KEY,
        "HUB_APP_ID": settings.app_id,
    }
    outputs: dict[str, str] = {}
    log_file = tmp_path / "worker.log"
    worker = start_worker(settings, tmp_path, "-vv", log=log_file, HUB_WEB_PORT="0", HUB_LIFECYCLE_TICK_S="0")
    try:
        board_port = wait_for("the lead board", lambda: _board_port(log_file), timeout=90)
        sources = [*write_scenario(tmp_path / "scenario").items(), *planted(tmp_path / f"planted-{ID_LEGAL}")]
        for kind, path in sources:
            run = hub("connector", "run", kind, "--path", str(path), cwd=tmp_path, env=env)
            assert run.returncode in (0, 3), run.stderr
            outputs[f"connector run {path.name}"] = run.stdout + run.stderr
        wait_until_processed(clients, timeout_s=120)
        lead = next(
            entry
            for entry in final_leads(clients).values()
            if entry["business_id"] == LIQUOR.uscc and entry["rules"] == ["CRIMINAL_REFERRAL"]
        )
        assert lead["person_refs"], "the lead knows its people by their tokens"
        team = "police-jinzhong-food-crime"
        # A foreign client (not the CLI) puts people in clear on the feedback topic: the worker scrubs them.
        foreign = feedback(
            lead,
            "INVESTIGATING",
            team,
            f"嫌疑人{SUSPECT_NAME}（{SUSPECT_ID}）已到案，{MOBILE}",
            SUSPECT2_NAME,
            time.time(),
        )
        publish_feedback(clients, foreign, signer(settings, Role.TEAM, team))
        wait_for(
            "the foreign feedback",
            lambda: final_leads(clients)[lead["lead_id"]]["status"] == "INVESTIGATING",
            timeout=90,
        )
        close = hub(
            "leads",
            "close",
            lead["lead_id"],
            "--key",
            str(key_file(settings.keys_path, Role.TEAM, team)),
            "--by",
            SUSPECT_NAME,
            "--outcome",
            f"已立案，{SUSPECT_NAME} {SUSPECT_ID} 移送审查起诉；{SUSPECT2_NAME}取保候审，电话{MOBILE_DASHED}",
            cwd=tmp_path,
            env=env,
        )
        assert close.returncode == 0, close.stderr
        outputs["leads close"] = close.stdout + close.stderr
        wait_for("the closure", lambda: final_leads(clients)[lead["lead_id"]]["status"] == "CLOSED", timeout=90)
        operator = board_token(
            load_key(
                key_file(settings.keys_path, Role.OPERATOR, "operator"), TrustStore.load(settings.trust_path)
            ).private
        )
        for name in load_teams(settings.teams_file):
            for page in (f"/teams/{name}", f"/teams/{name}/leads.json"):
                request = urllib.request.Request(
                    f"http://127.0.0.1:{board_port}{page}", headers={"Authorization": f"Bearer {operator}"}
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    outputs[f"board {page}"] = response.read().decode()
        for args in (["status"], ["unresolved", "--json"]):
            done = hub(*args, cwd=tmp_path, env=env)
            outputs[" ".join(args)] = done.stdout + done.stderr
        outputs["leads tail"] = _tail(tmp_path, env)
    finally:
        worker.terminate()
        worker.wait(30)
    log = log_file.read_text(errors="replace")
    outputs["worker log"] = log
    assert "DEBUG" in log, "the worker logged at debug level, so its every line is searched"

    needles = _needles()
    hits: list[str] = []
    for where, text in outputs.items():
        hits += _hits(where, text.encode(), needles)
    foreign_bytes = None
    for topic in sorted(_all_topics(clients)):
        for message in read_to_end(clients, topic):
            data = (message.key() or b"") + b"\n" + (message.value() or b"")
            if topic == feedback_topic(team) and SUSPECT2_NAME.encode() in data and foreign_bytes is None:
                foreign_bytes = data  # the foreign client's own record: not the hub's doing
                continue
            hits += _hits(topic, data, needles)
    assert foreign_bytes is not None
    assert not hits, "\n".join(sorted(set(hits)))
    # and the scrubbed values are still there as tokens that link the same person
    closed = final_leads(clients)[lead["lead_id"]]
    assert any("[pii:" in (h["note"] or "") for h in closed["history"])


def _board_port(log: Path) -> int | None:
    found = re.search(r"lead board: http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
    return int(found.group(1)) if found else None


def _tail(cwd: Path, env: dict[str, str]) -> str:
    """What `hub leads tail --from-beginning` prints once it has printed the leads."""
    out = cwd / "tail.out"
    with open(out, "w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "leads", "tail", "--from-beginning"],
            cwd=cwd,
            env={**os.environ, "HUB_METRICS_PORT": "0", **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for("the leads printed", lambda: "CRIMINAL_REFERRAL" in out.read_text(errors="replace"), timeout=90)
        finally:
            proc.terminate()
            proc.wait(30)
    return out.read_text(errors="replace")


def _all_topics(clients: KafkaClients) -> list[str]:
    return [t for t in clients.admin().list_topics(timeout=10).topics if not t.startswith("__")]
