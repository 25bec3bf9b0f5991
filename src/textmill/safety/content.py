"""A content filter for English and Chinese: word lists by category, matched after normalisation, an
optional classifier stage, and a policy per category.

Categories: abuse, hate, sexual, self_harm, violence, personal_attack. The default word list
(`content_words.tsv`, one `category<TAB>entry` per line) can be extended (`extra_words`) or replaced
(`words`) by files of the same format.

Normalisation before matching, so that the usual disguises do not pass:
- Unicode NFKC and case folding (full-width `ＦＵＣＫ`, ligatures, capitals);
- traditional -> simplified Chinese (OpenCC, character by character);
- leetspeak inside words (`sh1t`, `@ss`, `f4ggot`, `$uicide`), and `*` standing for any letter (`f*ck`);
- zero-width characters dropped; Cyrillic and Greek look-alike letters inside Latin words read as Latin;
- punctuation and spacing inserted between characters (`f.u.c.k`, `f u c k`, `傻 逼`, `傻*逼`);
- repeated letters (`fuuuuck`).

English entries match whole words (`word*` also words that start with it), so `class` is not `ass`
and `Scunthorpe` is clean; Chinese entries match anywhere. `personal_attack` entries ("idiot", "废物")
count only when aimed at someone (`you idiot`, `you're so stupid`, `你这个废物`), as does every abuse word.

Harm said in plain words has no listed word: a few sentence patterns (`SENTENCE_PATTERNS`) catch the
common shapes of threats ("we are going to attack ..."), dehumanising comparisons ("... are vermin /
breed like rats", "都是蝗虫"), generalisations about a religion or people ("all jews are ...") and
self-harm ("end it all"). They reach only those shapes: a sentence-level classifier would reach more,
and none that installs from the registries does it for both languages (docs/safety.md). A few
phrases are not what their words say (`NEUTRAL`: a `pussy willow`, a `suicide bombing` in the news),
and a threat inside a self-harm phrase ("kill myself") is self-harm, not violence.

Policies, per category: `allow` (ignore), `flag` (report, keep the text), `mask` (replace the span by
`<CATEGORY>`), `refuse` (the text is refused: a prompt is rejected, an output is cut before it).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from ..config import checked
from ..errors import ConfigError

CATEGORIES = ("abuse", "hate", "sexual", "self_harm", "violence", "personal_attack")
Policy = Literal["allow", "flag", "mask", "refuse"]
POLICIES = ("allow", "flag", "mask", "refuse")  # in order of strength
Classifier = Callable[[Sequence[str]], Sequence[float]]  # texts -> probability that each is abusive

_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s", "€": "e"}
_LEET_INSIDE = {"!": "i", "|": "l", "+": "t"}  # only between two letters: `sh!t`, not `wow!`
# Cyrillic and Greek letters that look Latin, read as Latin inside a word that holds a Latin letter (`fuсk`)
_LOOKALIKE = dict(zip("асеіјорсухѕԁɡοαινκτρυεςχϲ", "aceijopcyxsdgoaivktpuescc"))
_SECOND_PERSON = re.compile(
    r"(?:^|[^a-z0-9*])(?:you|u|ya|youre|your|ur|thou)(?: (?:are|re|r|is|such|a|an|so|the|just|very|really|complete|total|"
    r"absolute|absolutely|utter|completely|totally|utterly|truly|really|seriously|literally|little|big|massive|fucking|fking|"
    r"freaking|damn|bloody|stupid|dumb|ugly|fat|pathetic|worthless))* ?$"
    r"|(?:你们|你|您|妳)(?:是|这个|这些|这|那个|真是|真的|真|就是|就|个|一个|简直|像|太|好|也|们)*$")


# over normalised text (lower case, punctuation as spaces, leetspeak read): category -> patterns
_GROUP = (r"(?:muslims?|jews?|christians?|hindus?|arabs?|blacks?|asians?|mexicans?|immigrants?|refugees?|migrants?|"
          r"foreigners?|gays?|women|they|these people|those people|these|those)")
# groups of people by what they are, never a pronoun: "they are too dumb to notice" is no hate
_PEOPLE = (r"(?:muslims|jews|christians|hindus|arabs|blacks|whites|asians|mexicans|immigrants|refugees|migrants|foreigners|"
           r"gays|lesbians|women|men|girls|(?:black|white|asian|gay|trans|jewish|muslim) people)")
_PEOPLE_ZH = r"(?:外地人|乡下人|农村人|黑人|白人|女人|男人|穆斯林|同性恋|外国人|少数民族|[东西南北]北人|河南人|日本人|韩国人)"
# harm done to someone: the verbs (and phrases) a threat is made of
_HARM = (r"(?:kill|murder|shoot up|shoot|stab|attack|bomb|blow up|burn down|burn|torch|behead|strangle|put a bullet (?:in|through)|"
         r"beat the (?:crap|shit|hell|living daylights) out of|break (?:his|her|your|their) (?:legs?|arms?|neck|jaw))")
SENTENCE_PATTERNS: dict[str, tuple[str, ...]] = {
    "violence": (
        r"\b(?:i|we|im|were|ill|well)(?: (?:will|am|are|re|m|gonna|going to|plan to|planning to|about to|want to))+"
        rf"(?: \w+){{0,3}} {_HARM}\b(?! (?:myself|ourselves|me|us)\b|(?: \w+)? (?:problem|issue|bug|question|task|time)\b)",
        # no subject, or a wish: "gonna torch his car", "someone should put a bullet in that judge"
        rf"(?:^|\b(?:gonna|someone should|somebody should|lets|let s)) (?:\w+ ){{0,2}}{_HARM}\b(?! (?:myself|ourselves)\b)",
        r"(?:我|我们|咱们)(?:要|会|准备|打算|想)[^。！？]{0,10}(?:杀|砍|捅|炸|放火|烧)",
        r"去[^。！？]{0,8}(?:放火|纵火|炸)",
        r"(?:弄死|打死|砍死|捅死|杀死|干掉)(?:他|她|你|他们|你们|那个)",
        r"(?:带|拿|揣)着?(?:刀|枪|斧头|炸药)[^。！？]{0,10}(?:砍|杀|捅|炸)",
        r"打到(?:住院|残废|半死|进医院)",
    ),
    "hate": (
        rf"\b{_GROUP}\b(?: \w+){{0,3}} (?:are|is) (?:\w+ ){{0,2}}(?:vermin|rats|cockroaches|parasites|animals|subhuman|"
        r"a plague|a disease|a cancer|filth|savages)\b",
        rf"\b{_GROUP}\b(?: \w+){{0,4}} (?:breed like rats|infest|infesting|crawling over)\b",
        r"\ball (?:muslims|jews|christians|hindus|arabs|blacks|asians|mexicans|immigrants|refugees|gays)(?: are| should)"
        r"(?: \w+){0,3} (?:terrorists|criminals|rapists|animals|greedy|evil|banned|deported|killed|gassed|exterminated)\b",
        r"\b(?:the )?jews (?:control|own|run) the (?:banks|media|world|government)",
        rf"\b{_PEOPLE} (?:are|is) (?:\w+ ){{0,2}}(?:inferior|too (?:stupid|dumb) to)\b",
        rf"\b{_PEOPLE} (?:do not|don t|dont|doesn t) deserve (?:any )?(?:rights|to live|to vote|to exist)\b",
        r"(?:都是|就是|全是)(?:些)?(?:蝗虫|蟑螂|害虫|寄生虫|畜生|恐怖分子)",
        rf"{_PEOPLE_ZH}[^。！？，]{{0,3}}(?:都是|就是|全是)(?:些)?(?:垃圾|畜生|低等|废物|人渣)",
        rf"{_PEOPLE_ZH}[^。！？，]{{0,3}}不配",
    ),
    "self_harm": (
        r"\b(?:take|swallow)(?: \w+){0,2} (?:pills|pill) (?:\w+ ){0,6}(?:never wake up|die)\b",
        r"\b(?:take|swallow)(?: \w+){0,2} (?:pills|tablets)(?: \w+){0,2} at once\b",
        r"(?:我|今晚就|今天就|明天就)[^。！？]{0,6}(?:楼|桥|天台)上?跳下去",
    ),
    "sexual": (
        r"\bxxx (?:videos?|movies?|pics?|cams?|sites?|live)\b|\b(?:live|sex|nude|naked) (?:sex )?cams?\b",
    ),
    "abuse": (
        r"我靠(?![近着在谱住山海边])",
        r"(?<![妈他你我她老姑姨舅后亲干大])妈的",  # not 妈妈的, 我妈的, 姑妈的 (a mother's)
    ),
}
# phrases that are not what their words say: a hit of the category inside one does not count
NEUTRAL: dict[str, tuple[str, ...]] = {
    "sexual": ("pussy willow", "pussy cat", "pussycat"),
    "abuse": ("pussy willow", "cockspur", "woodcock"),
    "self_harm": ("suicide bomb", "suicide bomber", "suicide bombers", "suicide bombing", "suicide attack"),
}
_AIMED_INSULT = re.compile(r"(?:^| )(?:what|such) an?(?: [a-z]+){0,2} $")  # "what a (complete) moron"
_ONLY_A = re.compile(r"(?:^| )only an?(?: [a-z]+){0,2} $")


def check_categories(categories: Iterable[str]) -> list[str]:
    categories = list(categories)
    unknown = sorted(set(categories) - set(CATEGORIES))
    if unknown:
        raise ConfigError(f"unknown content categories {unknown}; categories: {', '.join(CATEGORIES)}")
    return categories


ContentCategories = Annotated[list[str], checked(check_categories)]  # a config field of content categories


def _cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or "\U00020000" <= ch <= "\U0002ffff"


@lru_cache(maxsize=1)
def _t2s():
    try:
        import opencc
    except ImportError:  # a core dependency; without it traditional characters are matched as written
        return None
    return opencc.OpenCC("t2s")


@lru_cache(maxsize=8192)
def _fold(ch: str) -> str:
    out = unicodedata.normalize("NFKC", ch).casefold()
    if len(out) == 1 and _cjk(out) and _t2s() is not None:
        out = _t2s().convert(out)
    return out


def normalise(text: str) -> tuple[str, list[int]]:
    """The text as matching sees it, and for each of its characters the index of the character of
    `text` it came from. Separators become single spaces; separated single letters are joined."""
    chars: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        if unicodedata.category(ch) == "Cf":  # zero-width spaces and joiners, direction marks
            continue
        for c in _fold(ch):
            chars.append(c)
            index.append(i)
    for k, c in enumerate(chars):
        if c in _LOOKALIKE and _word_has_latin(chars, k):
            chars[k] = _LOOKALIKE[c]
    letter = [c.isalpha() for c in chars]
    for k, c in enumerate(chars):  # leetspeak inside words that hold a letter
        if c in _LEET or c in _LEET_INSIDE:
            before = k > 0 and (letter[k - 1] or chars[k - 1] in _LEET)
            after = k + 1 < len(chars) and (letter[k + 1] or chars[k + 1] in _LEET)
            if c in _LEET_INSIDE:
                ok = k > 0 and k + 1 < len(chars) and letter[k - 1] and letter[k + 1]
            else:
                ok = (before or after) and _word_has_letter(chars, letter, k)
            if ok:
                chars[k] = (_LEET | _LEET_INSIDE)[c]
    out: list[str] = []
    at: list[int] = []
    for c, i in zip(chars, index):
        word = c.isalnum() or c == "*"
        if not word:
            if out and out[-1] != " ":
                out.append(" ")
                at.append(i)
            continue
        out.append(c)
        at.append(i)
    s = "".join(out)
    # join single characters spaced apart (`f u c k`, `f.u.c.k`) and spaces between CJK characters
    keep = [True] * len(s)
    for m in re.finditer(r"(?<![^ ])[^ ](?: [^ ]){2,}(?![^ ])", s):
        for k in range(m.start() + 1, m.end(), 2):
            keep[k] = False
    for m in re.finditer(r"(?<=[\u3400-\u9fff])[ *]+(?=[\u3400-\u9fff])", s):
        for k in range(m.start(), m.end()):
            keep[k] = False
    return "".join(c for c, k in zip(s, keep) if k), [i for i, k in zip(at, keep) if k]


def _word_has_latin(chars: list[str], k: int) -> bool:
    lo = hi = k
    while lo > 0 and chars[lo - 1].isalpha():
        lo -= 1
    while hi + 1 < len(chars) and chars[hi + 1].isalpha():
        hi += 1
    return any("a" <= c <= "z" for c in chars[lo:hi + 1])


def _word_has_letter(chars: list[str], letter: list[bool], k: int) -> bool:
    lo = k
    while lo > 0 and (letter[lo - 1] or chars[lo - 1] in _LEET):
        lo -= 1
    hi = k
    while hi + 1 < len(chars) and (letter[hi + 1] or chars[hi + 1] in _LEET):
        hi += 1
    return any(letter[lo:hi + 1])


@dataclass(frozen=True)
class Hit:
    category: str
    start: int  # in the original text
    end: int
    text: str  # the original span
    entry: str  # the word-list entry, or "classifier"


@dataclass(frozen=True)
class Verdict:
    text: str  # with the spans of `mask` categories replaced
    hits: tuple[Hit, ...]
    action: Policy  # the strongest policy among the hits (allow when none)

    @property
    def categories(self) -> list[str]:
        return sorted({h.category for h in self.hits})


def read_words(path: str | Path | None = None) -> dict[str, list[str]]:
    """Entries by category from a `category<TAB>entry` file (the packaged default when `path` is None)."""
    if path is None:
        raw, name = resources.files(__package__).joinpath("content_words.tsv").read_bytes(), "the default word list"
    else:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"word list {p} does not exist")
        raw, name = p.read_bytes(), str(p)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"word list {name} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    words: dict[str, list[str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        category, sep, entry = line.partition("\t")
        category, entry = category.strip(), entry.strip()
        if not sep or category not in CATEGORIES:
            raise ConfigError(f"{name}, line {n}: expected 'category<TAB>entry' with a category among "
                              f"{', '.join(CATEGORIES)}; got {line[:60]!r}")
        if not entry.strip("*"):
            raise ConfigError(f"{name}, line {n}: the entry is empty; write a word or phrase after the tab")
        words.setdefault(category, []).append(entry)
    return words


def _pattern(entry: str) -> str:
    """An entry as a regular expression over normalised text."""
    norm, _ = normalise(entry.rstrip("*"))
    prefix = entry.endswith("*")
    if all(_cjk(c) or not c.isalpha() for c in norm.replace(" ", "")) and any(_cjk(c) for c in norm):
        return re.escape(norm.replace(" ", ""))
    pieces = []
    for w, word in enumerate(norm.split(" ")):
        letters = [re.escape(c) + "+" if w == 0 and j == 0 else f"(?:{re.escape(c)}|\\*)+" for j, c in enumerate(word)]
        pieces.append("".join(letters))
    body = " ?".join(pieces)  # the words of a phrase may run together
    return rf"(?<![a-z0-9*]){body}{'[a-z0-9*]*' if prefix else ''}(?![a-z0-9*])"


class ContentFilter:
    """`check(text)` -> Verdict: what the text holds, by category, and what the policies make of it.

    `policies` maps a category to allow / flag / mask / refuse (the rest get `default`); `classifier`
    is an optional stage after the word lists: a function texts -> probabilities of abuse, or
    "profanity-check" for alt-profanity-check's English model (`pip install textmill[safety]`), whose
    hits at `threshold` or above count as abuse over the whole text. `counts` tallies the hits by
    category over every text checked."""

    def __init__(self, policies: Mapping[str, Policy] | None = None, *, default: Policy = "flag",
                 words: str | Path | None = None, extra_words: str | Path | None = None,
                 classifier: Classifier | Literal["profanity-check"] | None = None, threshold: float = 0.9) -> None:
        policies = dict(policies or {})
        for category, policy in [*policies.items(), ("default", default)]:
            if category != "default" and category not in CATEGORIES:
                raise ConfigError(f"unknown content category {category!r}; categories: {', '.join(CATEGORIES)}")
            if policy not in POLICIES:
                raise ConfigError(f"unknown policy {policy!r} for {category}; policies: {', '.join(POLICIES)}")
        if not 0 < threshold <= 1:
            raise ConfigError(f"threshold must be in (0, 1]; got {threshold}")
        self.policies = {c: policies.get(c, default) for c in CATEGORIES}
        entries = read_words(words)
        for category, more in (read_words(extra_words) if extra_words is not None else {}).items():
            entries.setdefault(category, []).extend(more)
        self.entries = entries
        self._compiled = {c: [(e, re.compile(_pattern(e))) for e in es] for c, es in entries.items()}
        for category, patterns in SENTENCE_PATTERNS.items():
            self._compiled.setdefault(category, []).extend(("pattern", re.compile(p)) for p in patterns)
        self._neutral = {c: re.compile("|".join(_pattern(e) for e in es)) for c, es in NEUTRAL.items()}
        self.classifier = _profanity_check() if classifier == "profanity-check" else classifier
        self.threshold = threshold
        self.counts: Counter[str] = Counter()

    def hits(self, texts: str | Sequence[str]) -> list[Hit] | list[list[Hit]]:
        """The hits in one text, or in each of a list (the classifier runs once over the list)."""
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        found = [self._list_hits(t) for t in batch]
        if self.classifier is not None:
            english = [i for i, t in enumerate(batch) if _mostly_latin(t)]
            probs = self.classifier([batch[i] for i in english]) if english else []
            for i, p in zip(english, probs):
                if p >= self.threshold and not any(h.category == "abuse" for h in found[i]):
                    found[i].append(Hit("abuse", 0, len(batch[i]), batch[i], "classifier"))
        return found[0] if single else found

    def _list_hits(self, text: str) -> list[Hit]:
        norm, index = normalise(text)
        if not norm:
            return []
        hits: dict[tuple[str, int, int], Hit] = {}

        def add(category: str, m: re.Match, entry: str) -> None:
            start, end = index[m.start()], index[m.end() - 1] + 1
            hits.setdefault((category, start, end), Hit(category, start, end, text[start:end], entry))

        neutral = {c: [(m.start(), m.end()) for m in p.finditer(norm)] for c, p in self._neutral.items()}
        for category, patterns in self._compiled.items():
            for entry, pattern in patterns:
                for m in pattern.finditer(norm):
                    if any(a <= m.start() and m.end() <= b for a, b in neutral.get(category, ())):
                        continue
                    aimed = _aimed(text, norm, index, m)
                    if category == "personal_attack" and not aimed:
                        continue
                    add(category, m, entry)
                    if category == "abuse" and aimed:
                        add("personal_attack", m, entry)
        harm = [h for h in hits.values() if h.category == "self_harm"]
        kept = [h for h in hits.values() if not (h.category == "violence" and any(s.start < h.end and h.start < s.end
                                                                                 for s in harm))]
        return _merge(kept)

    def verdict(self, text: str, hits: Iterable[Hit]) -> Verdict:
        hits = tuple(h for h in hits if self.policies[h.category] != "allow")
        action: Policy = max((self.policies[h.category] for h in hits), key=POLICIES.index, default="allow")
        masked = [h for h in hits if self.policies[h.category] == "mask" and h.entry != "classifier"]
        out, at = [], 0
        for h in sorted(masked, key=lambda h: h.start):
            if h.start >= at:
                out += [text[at:h.start], f"<{h.category.upper()}>"]
                at = h.end
        out.append(text[at:])
        return Verdict("".join(out), hits, action)

    def check(self, text: str) -> Verdict:
        return self.check_all([text])[0]

    def check_all(self, texts: Sequence[str]) -> list[Verdict]:
        verdicts = [self.verdict(t, h) for t, h in zip(texts, self.hits(list(texts)))]
        self.counts.update(h.category for v in verdicts for h in v.hits)
        return verdicts

    def refused(self, verdict: Verdict) -> list[Hit]:
        return [h for h in verdict.hits if self.policies[h.category] == "refuse"]

    def masked(self, text: str, verdict: Verdict, end: int | None = None) -> str:
        """`text` up to `end` (all of it by default) with the spans of `mask` categories replaced."""
        end = len(text) if end is None else end
        return self.verdict(text[:end], [h for h in verdict.hits if h.end <= end]).text

    def cut(self, text: str) -> tuple[str, Verdict]:
        """For an output: the text before its first refused span (all of it when nothing is refused),
        masked, and the verdict on the whole text."""
        v = self.check(text)
        return self.masked(text, v, min((h.start for h in self.refused(v)), default=None)), v


def _aimed(text: str, norm: str, index: list[int], m: re.Match) -> bool:
    """Whether the word matched at `m` is said to someone: after "you" / "你" ("you idiot", "你这个废物"),
    after "what a" / "such a" ("what a moron"), or called out after a comma at the end ("go away, idiot")."""
    before = norm[:m.start()]
    if _SECOND_PERSON.search(before):
        return True
    start, end = index[m.start()], index[m.end() - 1] + 1
    if _ONLY_A.search(before) and re.match(r"\W*would\b", text[end:]):  # "only a complete imbecile would ..."
        return True
    # the insult ends the sentence ("what a shit film" is about the film), or only "you are" follows it
    last = re.fullmatch(r"\W*(?:(?:you|u) (?:are|r)|you're|youre)?\W*", text[end:], re.IGNORECASE) is not None
    return last and (_AIMED_INSULT.search(before) is not None or text[:start].rstrip().endswith((",", "，")))


def _merge(hits: Iterable[Hit]) -> list[Hit]:
    """Hits sorted by position, overlapping hits of one category joined into one."""
    out: list[Hit] = []
    for h in sorted(hits, key=lambda h: (h.category, h.start, -h.end)):
        last = out[-1] if out else None
        if last is not None and last.category == h.category and h.start < last.end:
            if h.end > last.end:
                text = last.text + h.text[last.end - h.start:]
                out[-1] = Hit(h.category, last.start, h.end, text, last.entry)
            continue
        out.append(h)
    return sorted(out, key=lambda h: (h.start, h.category))


def _mostly_latin(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(c.isascii() for c in letters) * 2 >= len(letters)


def _profanity_check() -> Classifier:
    try:
        from profanity_check import predict_prob
    except ImportError:
        raise ConfigError("the 'profanity-check' classifier needs alt-profanity-check: pip install 'textmill[safety]'") from None
    return lambda texts: [float(p) for p in predict_prob(list(texts))]
