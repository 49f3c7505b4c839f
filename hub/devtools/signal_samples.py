"""The new signals' part of the demo scenario (hub.domain.signals): 12315
complaints, a producer's batch failing at three sellers, lead failing in
one county's vegetables, the serious-violation list and a registry that
names legal representatives. People are invented; their ID numbers are
valid in form only."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from connectors.samr_complaint import SamrComplaintConnector
from connectors.samr_credit import SamrCreditConnector
from connectors.samr_inspection import SamrInspectionConnector
from connectors.samr_sampling import SamrSamplingConnector
from hub.devtools.samples import (SampleBusiness, _headers, _inspection_row, make_resident_id, make_uscc, write_csv,
                         write_registry)

# COMPLAINTS: three distinct complainants within 30 days.
SWEETS = SampleBusiness("安阳市文峰区甜心蛋糕店", make_uscc("92", "410502", "MA48TX1C2"),
                        "河南省安阳市文峰区东风路9号", "JY14105020011111")
COMPLAINANTS = [("张伟", "13803721001", make_resident_id("410502", dt.date(1985, 1, 2), "031")),
                ("李娜", "13803721002", make_resident_id("410503", dt.date(1990, 5, 6), "042")),
                ("王芳", "13803721003", make_resident_id("410505", dt.date(1979, 9, 9), "062"))]
# A serial filer (职业索赔): complaints against 20 businesses in a month. Two
# other complainants and the serial filer against a tea shop raise nothing.
SERIAL = ("赵建军", "13903720099", make_resident_id("410522", dt.date(1982, 3, 3), "071"))
TEA = SampleBusiness("安阳市北关区清香茶叶店", make_uscc("92", "410503", "MA49QX2D3"),
                     "河南省安阳市北关区红旗路3号", "JY14105030022222")
# BATCH_TRACE: one batch of ham sausage failing at three sellers in two counties.
HAM_MAKER = ("河南省汤阴县美味肉制品有限公司", "河南省安阳市汤阴县工业路1号")
HAM_SELLERS = [("安阳市文峰区万家福超市", "河南省安阳市文峰区人民大道5号"),
               ("安阳市文峰区百姓便利店", "河南省安阳市文峰区平原路8号"),
               ("安阳县水冶镇惠民超市", "河南省安阳市安阳县水冶镇北街2号")]
# AREA_RISK: lead (铅) in vegetable products at three businesses of 滑县, two of 内黄县.
HUAXIAN = [("滑县城关镇鲜菜加工坊", "河南省安阳市滑县城关镇"), ("滑县道口镇百味酱菜厂", "河南省安阳市滑县道口镇"),
           ("滑县留固镇农家腌菜店", "河南省安阳市滑县留固镇")]
NEIHUANG = [("内黄县城关镇菜园酱菜店", "河南省安阳市内黄县城关镇"), ("内黄县二安镇腌菜坊", "河南省安阳市内黄县二安镇")]
# Credit list and RELATED_PARTY: a listed food factory, and a new trading
# company registered with the same legal representative.
LISTED = SampleBusiness("安阳市龙安区永兴食品厂", make_uscc("91", "410506", "MA46YX3E4"),
                        "河南省安阳市龙安区龙泉镇", "SC10441050600333")
NEWCO = SampleBusiness("安阳市龙安区永兴食品贸易有限公司", make_uscc("91", "410506", "MA4B7Y5F6"),
                       "河南省安阳市龙安区文明大道6号", "")
REPRESENTATIVE = ("陈建国", make_resident_id("410506", dt.date(1968, 7, 8), "013"))


def complaint_rows() -> list[list[str]]:
    h = _headers(SamrComplaintConnector)

    def row(no: str, day: str, kind: str, target: SampleBusiness, who: tuple[str, str, str], status: str) -> list[str]:
        name, phone, id_number = who
        values = {"登记编号": no, "登记日期": day, "诉求类型": kind, "被投诉举报对象名称": target.name,
                  "被投诉举报对象统一社会信用代码": target.uscc, "被投诉举报对象地址": target.address,
                  "所属行政区划": target.uscc[2:8], "涉及商品或服务": "生日蛋糕" if target is SWEETS else "茶叶",
                  "问题描述": f"{name}反映购买的商品变质，联系电话{phone}", "诉求人姓名": name,
                  "诉求人联系电话": phone, "诉求人证件号码": id_number, "处理单位": "文峰区市场监督管理局",
                  "处理状态": status, "办结日期": ""}
        return [values[c] for c in h]

    rows = [row(f"12315-2026-11-{i + 1:04d}", f"2026-11-{2 + 3 * i:02d}", "投诉" if i else "举报", SWEETS, who,
                "已受理") for i, who in enumerate(COMPLAINANTS)]
    # One more against the cake shop, not accepted: it counts for nothing either way.
    rows.append(row("12315-2026-11-0009", "2026-11-10", "投诉", SWEETS, SERIAL, "不予受理"))
    for i in range(20):  # the serial filer's month
        target = SampleBusiness(f"安阳市文峰区第{i + 1}便民超市", make_uscc("92", "410502", f"MA4C{i:05d}"),
                                "河南省安阳市文峰区", "")
        rows.append(row(f"12315-2026-10-{i + 100:04d}", f"2026-10-{1 + i:02d}", "投诉", target, SERIAL, "已受理"))
    rows += [row("12315-2026-11-0201", "2026-10-25", "投诉", TEA, SERIAL, "已受理"),
             row("12315-2026-11-0202", "2026-10-26", "投诉", TEA, COMPLAINANTS[0], "已受理"),
             row("12315-2026-11-0203", "2026-10-27", "投诉", TEA, COMPLAINANTS[1], "已受理")]
    return rows


def sampling_rows() -> list[list[str]]:
    h = _headers(SamrSamplingConnector)

    def row(no: str, producer: tuple[str, str], seller: tuple[str, str], product: str, batch: str, failure: str,
            category: str) -> list[str]:
        values = {"序号": no, "抽样编号": f"GC2641050041024{no}", "标称生产企业名称": producer[0],
                  "标称生产企业地址": producer[1], "被抽样单位名称": seller[0], "被抽样单位地址": seller[1],
                  "食品名称": product, "规格型号": "/", "商标": "/", "生产日期/批号": batch,
                  "不合格项目‖检验结果‖标准值": failure, "分类": category, "公告号": "2026年第40号",
                  "公告日期": "2026-11-12", "检验机构": "安阳市食品检验检测中心", "备注": ""}
        return [values[c] for c in h]

    nitrite = "亚硝酸盐(以亚硝酸钠计)‖48mg/kg‖≤30mg/kg"
    rows = [row(f"{i:04d}", HAM_MAKER, seller, "火腿肠", "2026-10-01", nitrite, "肉制品")
            for i, seller in enumerate(HAM_SELLERS)]
    lead = "铅(以Pb计)‖1.2mg/kg‖≤1.0mg/kg"
    rows += [row(f"{10 + i:04d}", seller, seller, "酱腌菜", f"2026-10-{5 + i:02d}", lead, "蔬菜制品")
             for i, seller in enumerate(HUAXIAN + NEIHUANG)]
    return rows


def write_signals(folder: Path) -> list[tuple[str, Path]]:
    """The files, in the order a demo sends them: (connector, path)."""
    folder.mkdir(parents=True, exist_ok=True)
    credit = _headers(SamrCreditConnector)
    listing = {"主体名称": LISTED.name, "统一社会信用代码": LISTED.uscc, "法定代表人": REPRESENTATIVE[0],
               "法定代表人证件号码": REPRESENTATIVE[1], "列入日期": "2026-09-01",
               "列入事由": "因生产经营不符合食品安全标准的食品被处以吊销许可证", "作出决定机关": "安阳市市场监督管理局",
               "移出日期": "", "移出事由": ""}
    inspections = [_inspection_row("JC-2026-1101", LISTED, "2026-11-03", "不符合", "书面限期整改", "原料台账缺失"),
                   _inspection_row("JC-2026-1102", LISTED, "2026-11-17", "不符合", "立即停止食品生产经营活动",
                                   "使用过期原料")]
    return [
        ("samr.credit", write_csv(folder / "严重违法失信名单.csv", credit, [[listing[c] for c in credit]],
                                  "utf-8-sig")),
        ("samr.inspection", write_csv(folder / "日常监督检查-永兴.csv", _headers(SamrInspectionConnector), inspections,
                                      "utf-8")),
        ("registry.business", write_registry(folder / "企业登记信息-法定代表人.csv", [
            (LISTED.uscc, LISTED.name, LISTED.address, LISTED.licence, *REPRESENTATIVE),
            (NEWCO.uscc, NEWCO.name, NEWCO.address, NEWCO.licence, *REPRESENTATIVE)])),
        ("samr.complaint", write_csv(folder / "12315投诉举报.csv", _headers(SamrComplaintConnector), complaint_rows(),
                                     "gbk")),
        ("samr.sampling", write_csv(folder / "不合格产品信息-批次与区域.csv", _headers(SamrSamplingConnector),
                                    sampling_rows(), "gbk")),
    ]
