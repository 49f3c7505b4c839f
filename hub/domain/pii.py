"""Personal data (个人信息): keyed tokens in place of people.

What counts as personal here: resident ID numbers (居民身份证号, 18 or 15
characters), mobile and landline numbers, and the names of the people a
record names (suspects, legal representatives, natural persons as parties,
complainants, informants). None leaves a connector in clear, and none
reaches a topic from a team's feedback.

A scrubbed value becomes a keyed token, ``[pii:<24 hex>]``: HMAC-SHA256 with
the hub's secret key of the value's canonical form, so the same person shows
the same token in every record and every field (an ID typed with spaces or
full-width digits included) while nobody without the key can reverse it; a
plain hash of an 18-character ID could be brute-forced in hours.

ID and telephone numbers are found by their form, not their validity: an ID
with a checksum typo, or from a division python-stdnum's table lacks, is still
an ID. Names cannot be found by form; the record's own personal columns say
which names to look for, and feedback is checked against the keyed tokens of
the people the business's records named (``names_in``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import re
import traceback
import unicodedata
from pathlib import Path
from collections.abc import Callable, Collection, Iterable

# Numbers as clerks type them: ASCII or full-width digits, in groups split by
# up to three spaces (any: no-break, ideographic), dots, hyphens, dashes,
# underscores or brackets, and letters touching them (ID…, Tel…, …abc).
_GROUP = re.compile(r"[0-9０-９]+[XxＸｘ]?")
_RUN = re.compile(r"[0-9０-９]+[XxＸｘ]?(?:[\s.．·\-－—–_()（）]{1,3}[0-9０-９]+[XxＸｘ]?)*")
_LETTER = re.compile(r"[A-Za-zＡ-Ｚａ-ｚ]")
_YEAR = re.compile(r"(?:19|20)[0-9]{2}")
# The forms, on the digits alone: an ID of 18 (the last may be X) or 15,
# a mainland mobile (1[3-9] + 9 digits, +86 before it or not), a landline
# with its area code (0 + 2-3 digits, then 7-8 digits).
_FORM = re.compile(r"[0-9]{17}[0-9X]|[0-9]{15}|(?:86)?1[3-9][0-9]{9}|0[0-9]{9,11}")
_SEPARATORS = re.compile(r"[\s.．·\-－—–_()（）+＋]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff]{2,}")
_TOKEN = re.compile(r"\[pii:[0-9a-f]{24}\]")
_SPLIT = re.compile(r"[、,，;；/\s]+")
_DIGITS_ONLY = re.compile(r"[0-9０-９XxＸｘ.\-－]+")
# What a clerk adds to a person's name in a personal column: a note in
# brackets (（法人）, （男，45岁）) or a label before it (法人：).
_ANNOTATION = re.compile(r"[（(【\[][^（()）【】\[\]]*[）)】\]]")
_LABEL = re.compile(r"^[\u4e00-\u9fff]{1,6}[:：]")
# Free text introduces a person by role (经办人钱多多, 民警郑小虎, 联系人：王五):
# the name that follows is personal, here and wherever it recurs.
ROLE_CUES = ("犯罪嫌疑人", "法定代表人", "法人代表", "嫌疑人", "经办人", "承办人", "负责人", "联系人", "当事人",
             "举报人", "投诉人", "报案人", "申请人", "代理人", "监护人", "受害人", "被害人", "证人", "经营者",
             "民警", "辅警", "检测员", "检验员", "检查员", "抽样员", "抽样人", "送检人", "记录人", "签收人", "执法人员",
             "检查人员", "抽样人员", "店主", "户主")
_COMPOUND_SURNAMES = ("欧阳", "司马", "诸葛", "上官", "东方", "慕容", "令狐", "皇甫", "尉迟", "公孙", "长孙", "夏侯",
                      "司徒", "端木", "独孤", "南宫", "西门", "呼延", "宇文")
# A cue followed by one of these is not followed by a name (负责人未到场,
# 当事人对违法事实无异议); after a name's second character, one of these
# ends it (民警郑小称 cannot be a name's end: 民警郑小虎称 can).
_NOT_A_NAME = set("未不已在均都对称的及和与等拒无当现到签自亦也本应须需其该所以于向被将把因从经按有")
_AFTER_NAME = set("称说于在已表对未的等和及与是为到将把被向现拒因后前也都均亦签、，,。；;：:（(")
_CUE = re.compile("(?:" + "|".join(sorted(ROLE_CUES, key=len, reverse=True)) + r")[\s:：]*(?:为|是|系|叫|名叫)?")
# The common surnames (of the 百家姓, those that are not also everyday first
# characters such as 于, 和 or 高度's 高 kept): a role word followed by
# anything else (负责人手机…) introduces no name.
_SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜"
    "崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔汤温康施牛"
    "樊葛邢齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕季裴霍涂苗谷盛曲"
    "翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶牟艾尤阳穆农司卓吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席"
    "卫米柏宗瞿桂佟臧闵苟邬卞姬师仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩佘池麻苑迟邝封谈匡鞠惠荆冀郁胥班储栗"
    "燕楚鄢劳谌奚皮粟冼蔺楼闻厉伊仝郜阚花权帅屠豆朴盖练廉禹井祖漆巴丰支卿狄计索宣晋初门扈晁芮普阙浦戈伏"
    "鹿薄邸雍辜羊乌母裘亓修邰赫杭况宿逯隆茹诸战慕危亢嵇哈湛宾戎勾茅揭尉冶斯束檀衣展阴昝智幸奉植衡富尧闭")
_HAN = re.compile(r"[\u4e00-\u9fff]")

NAME_CHARS = (2, 3, 4)  # 王五, 王建国, 欧阳建国


class PersonalDataHasher:
    def __init__(self, key: str) -> None:
        self._key = key.encode("utf-8")

    def ref(self, value: str) -> str:
        """A stable, non-reversible reference to one person-identifying value."""
        digest = hmac.new(self._key, canonical(value).encode("utf-8"), hashlib.sha256).hexdigest()
        return f"pii:{digest[:24]}"

    def token(self, value: str) -> str:
        """The reference as it stands in free text."""
        return f"[{self.ref(value)}]"

    def scrub(self, text: str | None, names: Iterable[str] = ()) -> str | None:
        """``text`` with the given names and the names a role word
        introduces (wherever they recur), and every ID-like or telephone
        number, replaced by their tokens."""
        if not text:
            return text
        for name in sorted({n for n in (*names, *named_by_role(text)) if len(n) >= 2}, key=len, reverse=True):
            if name in text:
                text = _replace_outside_tokens(text, name, self.token(name))
        return _outside_tokens(text, lambda part: _replace_spans(part, numbers(part), self.token))

    def names_in(self, text: str, known: Collection[str]) -> list[str]:
        """The names in ``text`` whose reference is among ``known`` (the
        people a business's records named): every run of 2 to 4 Chinese
        characters is tried, so no list of names in clear is needed."""
        if not known:
            return []
        found = []
        for run in _CJK_RUN.findall(text):
            for size in NAME_CHARS:
                for start in range(len(run) - size + 1):
                    piece = run[start:start + size]
                    if self.ref(piece) in known:
                        found.append(piece)
        return found

    def scrub_feedback(self, text: str | None, known: Collection[str]) -> str | None:
        """A team's note or outcome: the business's people and anything
        ID- or phone-like become tokens."""
        if not text:
            return text
        return self.scrub(text, self.names_in(text, known))

    def desk(self, by: str | None) -> str | None:
        """Who answered (``--by``): asked for a desk, but a person's name is
        what people type, so it is kept only as a token; the same desk shows
        the same token."""
        return by if by is None or is_token(by) else self.token(by)


def describe(exc: BaseException) -> str:
    """An exception for a log line: its class and where it was raised, never
    its message, which may quote the personal data it choked on."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


def canonical(value: str) -> str:
    """One spelling per value: NFKC (full-width digits and letters), upper
    case, and for a number written in groups, the groups joined."""
    folded = unicodedata.normalize("NFKC", value).strip().upper()
    joined = _SEPARATORS.sub("", folded)
    if not (joined.isascii() and joined[:-1].isdigit()):
        return folded
    return joined[2:] if len(joined) == 13 and joined.startswith("861") else joined  # +86 138…: the mobile


def split_people(cell: str) -> list[str]:
    """Several suspects or ID numbers in one cell, separated the usual ways.
    An ID or telephone number is one value however it is spaced
    (``4105 0219 8001 0100 38``): it is taken whole before the rest is
    split, and what is left of digits alone is no person (its fragments,
    scrubbed as names, mangled a region code and amounts in the same row).
    A name is the person without what a clerk noted beside it:
    ``猪八戒（法人）``, ``王建国（男，45岁）`` and ``法人：猪八戒`` are the
    names 猪八戒 and 王建国."""
    spans = numbers(cell)
    rest = _ANNOTATION.sub(" ", _replace_spans(cell, spans, lambda _: " "))
    names = (_LABEL.sub("", p) for p in _SPLIT.split(rest.strip()))
    return [cell[a:b] for a, b in spans] + [p for p in names if p and not _DIGITS_ONLY.fullmatch(p)]


def numbers(text: str) -> list[tuple[int, int]]:
    """Where ``text`` holds ID or telephone numbers, as (start, end), in
    order. Each run of digit groups is read as the clerk may have typed it:
    a group that is a number by itself; several run together
    (``1391234567813987654321``); or groups that make one number only
    together (``410502  19770303 3417``, ``139.8765.4322``, ``0354 - 3019876``).
    A date or an amount beside a number is no part of it. An ID pieced
    together from groups, or with letters touching it (``ID4105…``,
    ``SP2026…``), must also carry a possible birth date: codes, batch
    numbers and a number with a year after it look alike."""
    found: list[tuple[int, int]] = []
    for run in _RUN.finditer(text):
        found += _numbers_in_run(text, run)
    return sorted(_with_prefix(text, a, b) for a, b in found)


def _numbers_in_run(text: str, run: re.Match[str]) -> list[tuple[int, int]]:
    """The numbers in one run of digit groups, as spans in ``text``."""
    touching = bool(_LETTER.match(text[run.start() - 1:run.start()]) or _LETTER.match(text[run.end():run.end() + 1]))
    groups = [_Group(run.start() + g.start(), run.start() + g.end(), _digits(g.group()))
              for g in _GROUP.finditer(run.group())]
    alone, groups = _numbers_alone(groups, touching)
    return alone + _numbers_joined(groups)


def _numbers_alone(groups: list[_Group], touching: bool) -> tuple[list[tuple[int, int]], list[_Group]]:
    """The numbers in a group by itself, and the groups with their digits taken."""
    found = []
    # Numbers in a group by itself first (no code of an agency is longer
    # than 18 digits: a longer group is numbers run together); then in
    # groups joined, the longest first. What is left of a group beside a
    # number (1391234567803542000 000) may still make one with the next.
    for group in list(groups):
        pieces = _pieces(group.digits, touching) or ([(0, len(group.digits))] if len(group.digits) > 18 else [])
        for a, b in pieces:
            found.append((group.start + a, group.start + b))
            groups = _taken(groups, group.start + a, group.start + b)
    return found, groups


def _numbers_joined(groups: list[_Group]) -> list[tuple[int, int]]:
    """The numbers the free groups make together, the longest first."""
    found = []
    i = 0
    while i < len(groups):
        join = None if groups[i].taken else _join_from(groups, i)
        if join is None:
            i += 1
            continue
        at = [p for g in groups[i:join[0] + 1] for p in range(g.start, g.end)]  # where each digit is
        for a, b in join[1]:
            found.append((at[a], at[b - 1] + 1))
            groups = _taken(groups, at[a], at[b - 1] + 1)
    return found


@dataclasses.dataclass(frozen=True)
class _Group:
    """Digits typed together, and where they stand in the text (a digit a character)."""

    start: int
    end: int
    digits: str
    taken: bool = False


def _taken(groups: list[_Group], start: int, end: int) -> list[_Group]:
    """``groups`` with the digits from ``start`` to ``end`` taken by a
    number: a group it covers in part is split, and the rest stays free."""
    out = []
    for g in groups:
        if g.taken or g.end <= start or g.start >= end:
            out.append(g)
            continue
        a, b = max(g.start, start) - g.start, min(g.end, end) - g.start
        out += [_Group(g.start + x, g.start + y, g.digits[x:y], taken) for x, y, taken in
                ((0, a, False), (a, b, True), (b, len(g.digits), False)) if y > x]
    return out


_MAX_JOINED = 18  # groups in one number: a digit at a time at most


def _join_from(groups: list[_Group], i: int, after_date: bool = False) -> tuple[int, list[tuple[int, int]]] | None:
    """The free groups from the i-th on that hold numbers together, as many
    as can: (the last group, the numbers' spans in their digits). A date's
    groups (2026-03-15) start a number only when what follows them makes
    none of its own: a date stays beside the number after it, yet a mobile
    typed 1900 1 1 00000 is found."""
    free = list(itertools.takewhile(lambda g: not g.taken, groups[i:i + _MAX_JOINED]))
    dated = not after_date and _starts_with_date(free)
    for j in range(len(free) - 1, 0, -1):
        parts = [g.digits for g in free[:j + 1]]
        if not _joinable(parts):
            continue
        pieces = _pieces("".join(parts), True)  # an ID pieced together: its birth date must be possible
        if pieces and not _date_beside_a_number(groups, i, j, dated):
            return i + j, pieces
    return None


def _date_beside_a_number(groups: list[_Group], i: int, j: int, dated: bool) -> bool:
    """Whether the groups joined (from the i-th to the j-th after it) begin
    with a date (``dated``) that stands beside a number the groups after it make."""
    return dated and j >= 2 and _join_from(groups, i + 3, True) is not None


def _starts_with_date(free: list[_Group]) -> bool:
    return len(free) >= 3 and _is_date([g.digits for g in free[:3]])


def _joinable(parts: list[str]) -> bool:
    """Groups that may make numbers together: as many digits as one to two
    numbers have, an X only at the end, and grouped as a number is typed."""
    return _SIZES[-1] <= sum(map(len, parts)) <= 2 * _SIZES[0] and not any("X" in p for p in parts[:-1]) \
        and _grouped(parts)


def _is_date(parts: list[str]) -> bool:
    return bool(_YEAR.fullmatch(parts[0])) and len(parts[1]) <= 2 and len(parts[2]) <= 2 \
        and 1 <= int(parts[1]) <= 12 and 1 <= int(parts[2]) <= 31


def _with_prefix(text: str, start: int, end: int) -> tuple[int, int]:
    """A number with the + of its country code, or the bracket its area code opens: ``(0354)6231234``."""
    before = text[start - 1:start]
    if before in ("+", "＋") or (before in ("(", "（") and any(c in text[start:end] for c in ")）")):
        return start - 1, end
    return start, end


def named_by_role(text: str) -> list[str]:
    """The names a role word introduces in free text: 经办人钱多多,
    民警郑小虎、王大力, 负责人为郑小虎 give 钱多多, 郑小虎 and 王大力."""
    found = []
    for cue in _CUE.finditer(text):
        at = cue.end()
        while True:
            name = _name_at(text, at)
            if name is None:
                break
            found.append(name)
            at += len(name)
            if text[at:at + 1] not in ("、", "和", "及"):
                break
            at += 1
    return found


def _name_at(text: str, at: int) -> str | None:
    head = text[at:at + 4]
    if not _starts_a_name(head):
        return None
    longest = 4 if head[:2] in _COMPOUND_SURNAMES else 3
    size = 2
    while size < longest and size < len(head) and _continues_a_name(head[size]):
        size += 1
    return head[:size]


def _starts_a_name(head: str) -> bool:
    """Two Chinese characters, the first not one that starts no name, after a surname."""
    return len(head) >= 2 and all(_HAN.match(c) for c in head[:2]) and head[0] not in _NOT_A_NAME \
        and (head[0] in _SURNAMES or head[:2] in _COMPOUND_SURNAMES)


def _continues_a_name(char: str) -> bool:
    return bool(_HAN.match(char)) and char not in _AFTER_NAME


def _digits(group: str) -> str:
    return unicodedata.normalize("NFKC", group).upper()


def _is_form(digits: str, touching: bool) -> bool:
    if not _FORM.fullmatch(digits):
        return False
    if touching and len(digits) in (15, 18):
        year, month, day = (digits[6:10], digits[10:12], digits[12:14]) if len(digits) == 18 else \
            ("19" + digits[6:8], digits[8:10], digits[10:12])
        return "1900" <= year <= "2099" and "01" <= month <= "12" and "01" <= day <= "31"
    return True


_SIZES = (18, 15, 13, 12, 11, 10)  # of the forms, longest first


def _pieces(digits: str, checked: bool) -> list[tuple[int, int]]:
    """Digits as one number; or as numbers run together; or, longer than
    any code, with a number at either end (``03543019876`` before a USCC's
    digits): their spans in the digits. Pieces are checked as if letters
    touched them."""
    if _is_form(digits, checked):
        return [(0, len(digits))]
    if digits.endswith("X") and _is_form(digits[:-1], checked):
        return [(0, len(digits) - 1)]
    if len(digits) <= 18:
        return []
    return _run_together(digits, 0) or _number_at_an_end(digits)


def _number_at_an_end(digits: str) -> list[tuple[int, int]]:
    """Digits longer than any code, with a number at their start or end, and what the rest holds."""
    for size in _SIZES:
        if _is_form(digits[:size], True):
            return [(0, size), *((size + a, size + b) for a, b in _pieces(digits[size:], True))]
        if _is_form(digits[-size:], True):
            return [*_pieces(digits[:-size], True), (len(digits) - size, len(digits))]
    return []


def _run_together(digits: str, at: int) -> list[tuple[int, int]] | None:
    """``digits[at:]`` as numbers end to end, with nothing between."""
    if at == len(digits):
        return []
    for size in _SIZES:
        if at + size <= len(digits) and _is_form(digits[at:at + size], True):
            rest = _run_together(digits, at + size)
            if rest is not None:
                return [(at, at + size), *rest]
    return None


def _grouped(parts: list[str]) -> bool:
    """Groups a number may be written in: the first of three digits or more
    (139, 0354, 410502) or the country code 86, or a digit at a time."""
    return all(len(p) == 1 for p in parts) or len(parts[0]) >= 3 or parts[0] == "86"


def _replace_spans(text: str, spans: list[tuple[int, int]], by: Callable[[str], str]) -> str:
    out, at = [], 0
    for start, end in spans:
        out += [text[at:start], by(text[start:end])]
        at = end
    return "".join([*out, text[at:]])


def _outside_tokens(text: str, change: Callable[[str], str]) -> str:
    """``change`` applied to the text between the tokens already in it."""
    parts, tokens = _TOKEN.split(text), _TOKEN.findall(text)
    return "".join([change(parts[0]), *(t + change(p) for t, p in zip(tokens, parts[1:], strict=False))])


def is_token(text: str) -> bool:
    return bool(_TOKEN.fullmatch(text))


def _replace_outside_tokens(text: str, name: str, token: str) -> str:
    """Replace ``name`` except inside tokens already there (a name of hex letters cannot
    occur in one, but a short name could be the tail of a longer one's token)."""
    return _outside_tokens(text, lambda part: part.replace(name, token))
