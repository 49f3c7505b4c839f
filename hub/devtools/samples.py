"""Realistic agency exports for the demo, the tests and the benchmark.

Every file follows a layout from docs/domain.md, in the encodings agencies use.
USCCs carry real check characters and real division codes; people are
invented, their ID numbers valid in form only.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import random
from dataclasses import dataclass
from pathlib import Path

from stdnum.cn import ric, uscc

from connectors.agri_sampling import AgriSamplingConnector
from connectors.business_registry import BusinessRegistryConnector
from connectors.police_case import PoliceCaseConnector
from connectors.samr_inspection import SamrInspectionConnector
from connectors.samr_penalty import SamrPenaltyConnector
from connectors.samr_sampling import SamrSamplingConnector
from connectors.sdk import Connector


def make_uscc(authority_type: str, division: str, org: str) -> str:
    """A USCC with its check character: e.g. ('91', '410502', 'MA3XK1Q2Y')."""
    body = f"{authority_type}{division}{org}"
    assert len(body) == 17, body
    return body + uscc.calc_check_digit(body)


def make_resident_id(division: str, born: dt.date, seq: str) -> str:
    """A resident ID number that validates (stdnum's calc_check_digit reads
    a number with its check digit in place: a placeholder stands in for it)."""
    body = f"{division}{born:%Y%m%d}{seq}"
    return body + ric.calc_check_digit(body + "0")


@dataclass(frozen=True)
class SampleBusiness:
    name: str
    uscc: str
    address: str
    licence: str


# The scenario's businesses. Names as an agency writes them.
PORK = SampleBusiness("安阳市文峰区鑫源肉类加工有限公司", make_uscc("91", "410502", "MA3XK1Q2Y"),
                      "河南省安阳市文峰区中华路88号", "SC10441050200123")
FUSHUN = SampleBusiness("晋中市榆次区福顺食品有限公司", make_uscc("91", "140702", "MA0KD7H3X"),
                        "山西省晋中市榆次区顺城街12号", "SC12014070200456")
CONDIMENT = SampleBusiness("安阳市北关区老街调味品店", make_uscc("92", "410503", "MA45RTT0Q"),
                           "河南省安阳市北关区老街3号", "JY14105030009876")
NOODLE = SampleBusiness("安阳市殷都区好味道面馆", make_uscc("92", "410505", "MA47JJ8B1"),
                        "河南省安阳市殷都区铁西路5号", "JY24105050001234")
VEG_BASE = SampleBusiness("汤阴县绿野蔬菜种植专业合作社", make_uscc("93", "410523", "MA44G0W7M"),
                          "河南省安阳市汤阴县城关镇东关村", "")
# Registered (in its penalty) with half-width brackets; the sampling
# announcement writes the name with full-width ones and gives no USCC.
BAKERY = SampleBusiness("香满园食品(安阳)有限公司", make_uscc("91", "410505", "MA46PX2K7"),
                        "河南省安阳市殷都区铁西路18号", "SC12441050500321")
BAKERY_AS_SAMPLED = "香满园食品（安阳）有限公司"
LIQUOR = SampleBusiness("晋中市太谷区晋韵酒业有限公司", make_uscc("91", "140703", "MA0LQ2R5E"),
                        "山西省晋中市太谷区明星镇", "SC11514070300777")
SUSPECT_NAME = "王建国"
SUSPECT_ID = make_resident_id("410502", dt.date(1978, 5, 17), "301")
SUSPECT2_NAME = "李秀英"
SUSPECT2_ID = make_resident_id("140702", dt.date(1985, 11, 2), "442")
LEGAL_REP = "赵志强"
LEGAL_REP_ID = make_resident_id("140702", dt.date(1970, 1, 9), "215")


def _headers(connector: type[Connector]) -> list[str]:
    return list(connector.columns)


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    """encoding: 'utf-8', 'utf-8-sig' (with BOM) or 'gbk'."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def sampling_rows() -> list[list[str]]:
    h = _headers(SamrSamplingConnector)
    rows = [
        # Clenbuterol in pork: a non-food substance, a criminal referral on its own.
        dict(zip(h, ["1", "GC26410500410230101", PORK.name, PORK.address, "安阳市文峰区惠民生鲜超市",
                     "河南省安阳市文峰区光华路17号", "猪后腿肉", "/", "/", "2026-06-02",
                     "克伦特罗‖0.52μg/kg‖不得检出", "食用农产品", "2026年第18号", "2026-07-10",
                     "河南省食品药品检验研究院", ""], strict=False)),
        # A condiment shop's soy sauce: a minor (non-criminal) failure.
        dict(zip(h, ["2", "GC26410500410230155", "河南省豫香酿造有限公司", "河南省新乡市原阳县",
                     CONDIMENT.name, CONDIMENT.address, "酱油", "500mL/瓶", "豫香", "2026-04-11",
                     "氨基酸态氮(以氮计)‖0.35g/100mL‖≥0.4g/100mL；菌落总数‖8.2×10^4CFU/mL‖≤3×10^4CFU/mL",
                     "调味品", "2026年第18号", "2026-07-10", "安阳市食品检验检测中心", ""], strict=False)),
        # A cake from the bakery, named with full-width brackets: resolved to its USCC by name in region.
        dict(zip(h, ["3", "GC26410500410230171", BAKERY_AS_SAMPLED, BAKERY.address, "安阳市殷都区便民超市",
                     "河南省安阳市殷都区铁西路20号", "蛋糕", "400g/盒", "香满园", "2026-06-20",
                     "菌落总数‖5.2×10^5CFU/g‖≤10^5CFU/g", "糕点", "2026年第18号", "2026-07-10",
                     "安阳市食品检验检测中心", ""], strict=False)),
        # Bad row: no announcement date.
        dict(zip(h, ["4", "GC26410500410230190", "某某食品厂", "", "某某超市", "", "饼干", "", "",
                     "", "铝的残留量‖210mg/kg‖≤100mg/kg", "糕点", "2026年第18号", "",
                     "安阳市食品检验检测中心", ""], strict=False)),
    ]
    return [[r[c] for c in h] for r in rows]


def write_city_double_report(folder: Path) -> Path:
    """The city system's report of the county's two sampling failures: same
    samples, the city's own sampling numbers, announced three days later."""
    h = _headers(SamrSamplingConnector)
    rows = [dict(zip(h, r, strict=False)) for r in sampling_rows()[:2]]
    for row, city_no in zip(rows, ("SC2026-AY-0031", "SC2026-AY-0032"), strict=False):
        row.update({"抽样编号": city_no, "公告号": "安阳市市场监管局2026年第7期", "公告日期": "2026-07-13"})
    folder.mkdir(parents=True, exist_ok=True)
    return write_csv(folder / "不合格产品信息-市级.csv", h, [[r[c] for c in h] for r in rows], "utf-8-sig")


def penalty_rows() -> list[list[str]]:
    h = _headers(SamrPenaltyConnector)

    def row(subject: SampleBusiness, decision: str, violation: str, facts: str, fine_wan: str,
            conf_wan: str, date: str, authority: str, *, uscc_value: str | None = None) -> list[str]:
        values = {
            "行政相对人名称": subject.name, "行政相对人类别": "法人及非法人组织",
            "行政相对人代码_1(统一社会信用代码)": subject.uscc if uscc_value is None else uscc_value,
            "行政相对人代码_2(工商注册号)": "", "法定代表人": LEGAL_REP,
            "法定代表人证件号码": LEGAL_REP_ID, "处罚决定书文号": decision,
            "违法行为类型": violation, "违法事实": facts, "处罚依据": "《中华人民共和国食品安全法》第一百二十四条",
            "处罚类别": "罚款;没收违法所得", "处罚内容": f"罚款{fine_wan}万元",
            "罚款金额(万元)": fine_wan, "没收违法所得、没收非法财物的金额(万元)": conf_wan,
            "暂扣或吊销证照名称及编号": "", "处罚决定日期": date, "处罚机关": authority,
            "处罚机关统一社会信用代码": "11410500MB1234567X", "数据来源单位": authority, "备注": "",
        }
        return [values[c] for c in h]

    return [
        row(FUSHUN, "晋榆市监罚〔2026〕58号", "生产经营不符合食品安全标准的食品",
            f"当事人生产的月饼菌落总数超标，法定代表人{LEGAL_REP}对此负责", "2.5", "0.36",
            "2026-08-20", "晋中市榆次区市场监督管理局"),
        row(CONDIMENT, "安北市监罚〔2026〕112号", "经营超过保质期的食品", "当事人经营超过保质期的酱油",
            "0.5", "0.02", "2026-09-03", "安阳市北关区市场监督管理局"),
        row(BAKERY, "安殷市监罚〔2026〕27号", "生产经营不符合食品安全标准的食品", "当事人生产的面包霉菌超标",
            "1.2", "0.08", "2026-05-18", "安阳市殷都区市场监督管理局"),
        # Bad row: USCC with a wrong check character.
        row(NOODLE, "安殷市监罚〔2026〕31号", "未按规定公示食品经营许可证", "", "0.1", "",
            "2026-05-06", "安阳市殷都区市场监督管理局",
            uscc_value=NOODLE.uscc[:-1] + ("0" if NOODLE.uscc[-1] != "0" else "1")),
    ]


def _inspection_row(no: str, b: SampleBusiness, date: str, result: str, handling: str, problems: str,
                    deadline: str = "") -> list[str]:
    values = {"检查编号": no, "被检查单位名称": b.name, "统一社会信用代码": b.uscc,
              "许可证编号": b.licence, "检查日期": date, "检查人员": "刘洋、陈静",
              "检查结果": result, "结果处理": handling, "发现问题": problems, "整改期限": deadline}
    return [values[c] for c in _headers(SamrInspectionConnector)]


def write_recheck_failure(folder: Path) -> Path:
    """A 回头看 re-check inspection that finds the liquor maker at it again:
    new adverse evidence after its criminal-referral lead was closed."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_csv(folder / "日常监督检查-回头看.csv", _headers(SamrInspectionConnector), [
        _inspection_row("JC2026-1120-003", LIQUOR, "2026-11-20", "不符合", "立即停止食品生产经营活动",
                        "回头看: 仍在使用无标签散装基酒勾兑白酒")])


def inspection_rows() -> list[list[str]]:
    row = _inspection_row
    return [
        row("JC2026-0412-001", CONDIMENT, "2026-04-12", "不符合", "书面限期整改",
            "散装调味品未标注生产日期", "2026-04-30"),
        row("JC2026-0615-007", CONDIMENT, "2026-06-15", "不符合", "书面限期整改",
            "仍有散装调味品未标注生产日期", "2026-06-30"),
        # A single minor failure: no lead.
        row("JC2026-0702-013", NOODLE, "2026-07-02", "不符合", "书面限期整改", "从业人员未佩戴口罩",
            "2026-07-09"),
        row("JC2026-0703-002", PORK, "2026-07-03", "符合", "通过", ""),
        # Bad row: unknown result word.
        row("JC2026-0705-004", LIQUOR, "2026/7/5", "合格吧", "通过", ""),
    ]


def police_rows() -> list[list[str]]:
    h = _headers(PoliceCaseConnector)

    def row(no: str, name: str, cause: str, accepted: str, filed: str, status: str,
            b: SampleBusiness, suspects: str, ids: str, amount: str, unit: str, clue: str) -> list[str]:
        values = {"案件编号": no, "案件名称": name, "案由": cause, "受案时间": accepted, "立案时间": filed,
                  "案件状态": status, "涉案单位名称": b.name, "涉案单位统一社会信用代码": b.uscc,
                  "犯罪嫌疑人姓名": suspects, "犯罪嫌疑人身份证号": ids, "涉案金额(元)": amount,
                  "办案单位": unit, "线索来源": clue}
        return [values[c] for c in h]

    return [
        row("A1407022026090012", f"{SUSPECT2_NAME}生产、销售不符合安全标准的食品案",
            "生产、销售不符合安全标准的食品罪", "2026-09-01", "2026-09-05", "立案", FUSHUN,
            SUSPECT2_NAME, SUSPECT2_ID, "36000", "晋中市公安局榆次分局食药环侦大队", "群众举报"),
        row("A1407032026080031", f"{SUSPECT_NAME}等生产、销售伪劣产品案", "生产、销售伪劣产品罪",
            "2026-08-11", "2026-08-15", "立案", LIQUOR, f"{SUSPECT_NAME}、{SUSPECT2_NAME}",
            f"{SUSPECT_ID}、{SUSPECT2_ID}", "86500", "晋中市公安局太谷分局食药环侦大队",
            "市场监管部门移送"),
    ]


def agri_rows() -> list[list[str]]:
    h = _headers(AgriSamplingConnector)

    def row(no: str, sample: str, b: SampleBusiness, place: str, date: str, item: str, value: str,
            limit: str, unit: str, verdict: str) -> list[str]:
        values = {"样品编号": no, "样品名称": sample, "受检单位名称": b.name, "统一社会信用代码": b.uscc,
                  "抽样地点": place, "抽样日期": date, "检测项目": item, "检测值": value, "限量值": limit,
                  "单位": unit, "判定结果": verdict, "检测机构": "安阳市农产品质量安全检测中心"}
        return [values[c] for c in h]

    return [
        # Banned pesticide in chives: a criminal referral.
        row("NY2026-AY-0087", "韭菜", VEG_BASE, "基地", "2026-05-20", "克百威", "0.12", "0.02", "mg/kg", "不合格"),
        row("NY2026-AY-0087", "韭菜", VEG_BASE, "基地", "2026-05-20", "腐霉利", "0.05", "0.2", "mg/kg", "合格"),
        # Pork at the processor: an agriculture finding plus SAMR's, cross-agency.
        row("NY2026-AY-0102", "猪肉", PORK, "屠宰场", "2026-06-28", "磺胺类(总量)", "0.31", "0.1", "mg/kg", "不合格"),
        # Bad row: unparseable date.
        row("NY2026-AY-0110", "豇豆", VEG_BASE, "基地", "2026-13-40", "灭蝇胺", "0.1", "0.5", "mg/kg", "合格"),
    ]


def write_registry(path: Path, entries: list[tuple[str, ...]]) -> Path:
    """A registry reference list: (USCC, name, address, licences[, legal
    representative, their ID number]) per business."""
    h = _headers(BusinessRegistryConnector)
    rows = [{"统一社会信用代码": uscc, "企业名称": name, "住所": address, "许可证编号": licences, "注册号": "",
             "成立日期": "", "登记机关": "", "法定代表人": rep[0] if rep else "",
             "法定代表人证件号码": rep[1] if rep else ""}
            for uscc, name, address, licences, *rep in entries]
    return write_csv(path, h, [[r[c] for c in h] for r in rows], "utf-8-sig")


# The registry list of the scenario: the soy-sauce maker no enforcement record identifies.
YUXIANG = SampleBusiness("河南省豫香酿造有限公司", make_uscc("91", "410725", "MA40YX8N2"), "河南省新乡市原阳县",
                         "SC10341072500088")


def write_scenario(folder: Path) -> dict[str, Path]:
    """The demo scenario: one file per connector, each in a typical encoding,
    plus a city-system resend of the penalty file. Returns {connector: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "samr.sampling": write_csv(folder / "不合格产品信息.csv", _headers(SamrSamplingConnector),
                                   sampling_rows(), "gbk"),
        "samr.penalty": write_csv(folder / "行政处罚.csv", _headers(SamrPenaltyConnector), penalty_rows(), "gbk"),
        "samr.inspection": write_csv(folder / "日常监督检查.csv", _headers(SamrInspectionConnector),
                                     inspection_rows(), "utf-8"),
        "police.case": write_csv(folder / "刑事案件.csv", _headers(PoliceCaseConnector), police_rows(), "utf-8-sig"),
        "agri.sampling": write_xlsx(folder / "农产品抽检.xlsx", _headers(AgriSamplingConnector), agri_rows()),
        "registry.business": write_registry(folder / "企业登记信息.csv", [
            (YUXIANG.uscc, YUXIANG.name, YUXIANG.address, YUXIANG.licence)]),
    }


def synthetic_penalties(path: Path, rows: int, businesses: int = 5000, seed: int = 7,
                        encoding: str = "gbk", span_days: int = 360, first_row: int = 0) -> Path:
    """A large 双公示 penalty export for benchmarks: ``rows`` valid rows over a
    pool of ``businesses`` businesses, dated over ``span_days``."""
    rng = random.Random(seed)
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    divisions = ["410502", "410503", "410505", "410523", "140702", "140703", "110105", "440106"]
    pool = [make_uscc(rng.choice(["91", "92"]), rng.choice(divisions),
                      "".join(rng.choice(alphabet) for _ in range(9))) for _ in range(businesses)]
    h = _headers(SamrPenaltyConnector)
    start = dt.date(2025, 1, 1)
    out = []
    for i in range(first_row, first_row + rows):
        code = pool[rng.randrange(businesses)]
        values = {
            "行政相对人名称": f"测试食品经营部{code[-6:]}", "行政相对人类别": "法人及非法人组织",
            "行政相对人代码_1(统一社会信用代码)": code, "行政相对人代码_2(工商注册号)": "",
            "法定代表人": "张三", "法定代表人证件号码": "", "处罚决定书文号": f"测市监罚〔2025〕{i}号",
            "违法行为类型": "经营超过保质期的食品", "违法事实": "经营超过保质期的食品",
            "处罚依据": "《中华人民共和国食品安全法》第一百二十四条", "处罚类别": "罚款",
            "处罚内容": "罚款", "罚款金额(万元)": f"{rng.randint(1, 50) / 10}",
            "没收违法所得、没收非法财物的金额(万元)": "", "暂扣或吊销证照名称及编号": "",
            "处罚决定日期": (start + dt.timedelta(days=rng.randrange(span_days))).isoformat(),
            "处罚机关": "测试市市场监督管理局", "处罚机关统一社会信用代码": "", "数据来源单位": "", "备注": "",
        }
        out.append([values[c] for c in h])
    return write_csv(path, h, out, encoding)
