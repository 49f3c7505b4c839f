"""The open leads the sample scenario (``hub.devtools.samples.write_scenario``) must give
once every record is resolved, whatever the order of its files and messages."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from collections.abc import Iterable

from connectors.samr_sampling import SamrSamplingConnector

from hub.domain.names import normalise_name
from hub.devtools.samples import (
    BAKERY,
    CONDIMENT,
    FUSHUN,
    LIQUOR,
    NOODLE,
    PORK,
    VEG_BASE,
    SampleBusiness,
    _headers,
    make_uscc,
    write_csv,
    write_registry,
    write_scenario,
)
from hub.testing.bus import Bus

SELLER = "unresolved:410502:安阳市文峰区惠民生鲜超市"
PORK_SAMPLE = "samr.sampling:GC26410500410230101"

EXPECTED = {
    (CONDIMENT.uscc, "REPEAT_OFFENDER"): {
        "samr.inspection:JC2026-0412-001",
        "samr.inspection:JC2026-0615-007",
        "samr.penalty:安北市监罚〔2026〕112号",
        "samr.sampling:GC26410500410230155:seller",
    },
    (FUSHUN.uscc, "CROSS_AGENCY"): {"samr.penalty:晋榆市监罚〔2026〕58号", "police.case:A1407022026090012:FILED"},
    (VEG_BASE.uscc, "CRIMINAL_REFERRAL"): {"agri.sampling:NY2026-AY-0087:克百威"},
    (LIQUOR.uscc, "CRIMINAL_REFERRAL"): {"police.case:A1407032026080031:FILED"},
    (PORK.uscc, "CRIMINAL_REFERRAL"): {f"{PORK_SAMPLE}:producer"},
    (PORK.uscc, "CROSS_AGENCY"): {f"{PORK_SAMPLE}:producer", "agri.sampling:NY2026-AY-0102:磺胺类(总量)"},
    (PORK.uscc, "REPEAT_OFFENDER"): {f"{PORK_SAMPLE}:producer", "agri.sampling:NY2026-AY-0102:磺胺类(总量)"},
    (BAKERY.uscc, "REPEAT_OFFENDER"): {
        "samr.penalty:安殷市监罚〔2026〕27号",
        "samr.sampling:GC26410500410230171:producer",
    },
    (SELLER, "CRIMINAL_REFERRAL"): {f"{PORK_SAMPLE}:seller"},  # nobody registers the supermarket
}
# Once a clock tick has run past their deadlines (a backfill ticks at its
# end): the condiment shop's two orders (the second a repeat) and the noodle
# shop's, never confirmed by a compliant inspection.
EXPECTED_TICKED = {
    **EXPECTED,
    (CONDIMENT.uscc, "RECTIFICATION_OVERDUE"): {"samr.inspection:JC2026-0412-001", "samr.inspection:JC2026-0615-007"},
    (NOODLE.uscc, "RECTIFICATION_OVERDUE"): {"samr.inspection:JC2026-0702-013"},
}


def _by_name(business: SampleBusiness, region: str) -> str:
    return f"name_in_region: {normalise_name(business.name)} in {region} -> {business.uscc} {business.name}"


# How the bracket-variant sampling record (香满园食品（安阳）有限公司) found the
# bakery, whose USCC came with a penalty in another file.
BAKERY_RESOLUTION = _by_name(BAKERY, "410505 河南省安阳市殷都区")

# Every resolved record's explanation.
RESOLUTIONS = {
    f"{PORK_SAMPLE}:producer": _by_name(PORK, "410502 河南省安阳市文峰区"),
    "samr.sampling:GC26410500410230155:seller": _by_name(CONDIMENT, "410503 河南省安阳市北关区"),
    "samr.sampling:GC26410500410230171:producer": BAKERY_RESOLUTION,
}


def resolutions(leads: Iterable[dict]) -> dict[str, str]:
    """The explanation each open lead's evidence gives, per event."""
    found: dict[str, set[str]] = {}
    for lead in leads:
        if lead["status"] == "OPEN":
            for e in lead["evidence"]:
                if e["resolution"]:
                    found.setdefault(e["event_id"], set()).add(e["resolution"])
    return {event_id: texts.pop() if len(texts) == 1 else str(sorted(texts)) for event_id, texts in found.items()}


# Ambiguity: two registered 好运来饭店 in 文峰区 and one elsewhere.
A = make_uscc("92", "410502", "MA4AAAAA1")
B = make_uscc("92", "410502", "MA4BBBBB2")
ELSEWHERE = make_uscc("92", "140702", "MA0CCCCC3")
CITY = make_uscc("91", "410500", "MA4DDDDD4")  # registered by the city: its USCC names the prefecture


def ambiguity_files(folder: Path) -> dict[str, Path]:
    """Two registered 好运来饭店 in 文峰区, a third elsewhere; three sampling failures."""
    folder.mkdir(parents=True, exist_ok=True)
    registry = write_registry(
        folder / "registry-a.csv", [(A, "安阳市文峰区好运来饭店", "河南省安阳市文峰区人民大道1号", "")]
    )
    registry_b = write_registry(
        folder / "registry-b.csv",
        [
            (B, "安阳市文峰区好运来饭店", "河南省安阳市文峰区东风路9号", ""),
            (ELSEWHERE, "安阳市文峰区好运来饭店", "山西省晋中市榆次区", ""),
        ],
    )
    h = _headers(SamrSamplingConnector)

    def row(no: str, address: str, day: str) -> list[str]:
        values = {
            "序号": "1",
            "抽样编号": no,
            "标称生产企业名称": "",
            "标称生产企业地址": "",
            "被抽样单位名称": "安阳市文峰区好运来饭店",
            "被抽样单位地址": address,
            "食品名称": "凉皮",
            "规格型号": "",
            "商标": "",
            "生产日期/批号": day,
            "不合格项目‖检验结果‖标准值": "苯甲酸及其钠盐(以苯甲酸计)‖1.2g/kg‖不得使用",
            "分类": "餐饮食品",
            "公告号": "2026年第20号",
            "公告日期": day,
            "检验机构": "安阳市食品检验检测中心",
            "备注": "",
        }
        return [values[c] for c in h]

    sampling = write_csv(
        folder / "sampling.csv",
        h,
        [
            row("GC-AMBIG-1", "河南省安阳市文峰区光明路3号", "2026-08-01"),  # matches neither address
            row("GC-ADDR-2", "河南省安阳市文峰区东风路9号", "2026-08-05"),  # B's address
        ],
    )
    return {"registry.business": registry, "registry.business#b": registry_b, "samr.sampling#ambiguity": sampling}


def scenario_bus(folder: Path, now: dt.datetime) -> Bus:
    """A bus whose clock stands at ``now``, through which the sample
    scenario's exports have run (``hub.devtools.samples.write_scenario``)."""
    bus = Bus(clock=lambda: now.timestamp())
    for connector, path in write_scenario(folder).items():
        bus.publish_file(connector, path)
    bus.run()
    return bus
