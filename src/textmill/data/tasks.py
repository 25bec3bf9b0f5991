"""Task adapters: raw data -> (source, target) pairs for conditional generation, and a source as a
user writes it -> the form the model reads (`format_source`). Training and generation both go through
`format_source`, so a model sees its inputs the same way in both.

- translation: parallel files (`data.source` + `data.target`, one sentence per line) or a table
  (TSV/CSV/JSONL/Parquet) with `data.source_field` / `data.target_field` (default `source` / `target`).
- summarization: a table of articles and summaries (default fields `article` / `summary`). An
  over-long article keeps its beginning.
- dialogue: one dialogue per line with turns separated by `dialogue.turn_separator` (DailyDialog's
  `__eou__`), or JSONL whose `text_field` holds a list of turns (strings, or messages with a
  `content` or `text` field). Every turn after the first is a reply; its source is the turns before
  it, one per line. The model reads the last `history_turns` of them, marked `<user>` (the turn just
  before the reply) and `<bot>` (the replier) alternating backwards, or separated by `<sep>`. An
  over-long history keeps its end.
- keywords: any corpus the `lm` task reads; each text's keywords (`data.keywords`) are its source.

A gpt run fine-tuned from an instruct model learns a paired task as a chat (`messages`): the user
asks `data.instruction` (default: `INSTRUCTIONS`) followed by the source; a dialogue's turns are the
chat's own messages, the turn just before the reply the user's, with the instruction (if any) as
the system message. The reply is the assistant's.

Pairs with an empty side are skipped and counted in the log.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..config import DataConfig
from ..errors import DataError
from .keywords import extract_keywords
from .sources import field_text, read_documents, read_lines, read_records, table_format

log = logging.getLogger(__name__)
Pair = tuple[str, str]
USER, BOT, SEP = "<user>", "<bot>", "<sep>"
INSTRUCTIONS = {"translation": "Translate this text.", "summarization": "Summarize this article in a few sentences.",
                "keywords": "Write a text that uses these keywords.", "dialogue": None}
Message = dict[str, str]


def _existing_file(path: str, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{what} {path!r} does not exist (paths are relative to {Path.cwd()})")
    if not p.is_file():
        raise DataError(f"{what} {path!r} is a directory; paired tasks read one file")
    return p


@dataclass(frozen=True)
class Task:
    """How one task reads pairs and formats user input. `keep` says which end of an over-long
    source survives truncation; `control_tokens` are source-side tokens the task writes."""

    cfg: DataConfig
    name: str = "translation"
    keep: Literal["start", "end"] = "start"
    control_tokens: tuple[str, ...] = ()

    def read(self, source: str, target: str | None) -> list[Pair]:
        raise NotImplementedError

    def format_source(self, text: str) -> str:
        return text.strip()

    @property
    def instruction(self) -> str | None:
        return self.cfg.instruction if self.cfg.instruction is not None else INSTRUCTIONS[self.name]

    def messages(self, text: str) -> list[Message]:
        """A source as the chat an instruct model reads: the instruction and the source, from the user."""
        source = self.format_source(text)
        return [{"role": "user", "content": f"{self.instruction}\n\n{source}" if self.instruction else source}]

    def pairs(self, source: str, target: str | None = None, what: str = "training") -> list[Pair]:
        """Clean pairs of the files (empty sides skipped, `max_documents` applied)."""
        raw = self.read(source, target)
        pairs = [(s.strip(), t.strip()) for s, t in raw]
        kept = [(s, t) for s, t in pairs if s and t]
        if len(kept) < len(pairs):
            log.warning("%s data: skipped %d of %d pairs with an empty source or target", what, len(pairs) - len(kept), len(pairs))
        if not kept:
            raise DataError(f"{source} holds no {self.name} pairs with both a source and a target")
        return kept[: self.cfg.max_documents] if self.cfg.max_documents else kept


class PairedTask(Task):
    """Translation and summarization: the two sides come straight from the data."""

    def read(self, source: str, target: str | None) -> list[Pair]:
        src = _existing_file(source, "data source")
        if target is not None:
            tgt = _existing_file(target, "data target")
            a, b = read_lines(src), read_lines(tgt)
            if len(a) != len(b):
                raise DataError(f"parallel files are misaligned: {src} has {len(a):,} lines but {tgt} has {len(b):,}; "
                                "each line of the source file must translate the same line of the target file")
            return list(zip(a, b))
        if table_format(src, self.cfg.format) in ("text", "lines"):
            raise DataError(f"{self.name} from {src}: give data.target (the parallel target file), or a TSV/CSV/JSONL/"
                            "Parquet file (set data.format) with data.source_field and data.target_field")
        defaults = ("article", "summary") if self.name == "summarization" else ("source", "target")
        sf = self.cfg.source_field if self.cfg.source_field is not None else defaults[0]
        tf = self.cfg.target_field if self.cfg.target_field is not None else defaults[1]
        return [(field_text(r[sf]), field_text(r[tf])) for r in read_records(src, self.cfg.format, [sf, tf])]


class DialogueTask(Task):
    def dialogues(self, source: str) -> list[list[str]]:
        path = _existing_file(source, "data source")
        if table_format(path, self.cfg.format) in ("text", "lines"):
            sep = self.cfg.dialogue.turn_separator
            return [[t.strip() for t in line.split(sep)] for line in read_lines(path) if line.strip()]
        field = self.cfg.text_field
        out = []
        for n, row in enumerate(read_records(path, self.cfg.format, [field]), 1):
            turns = row[field]
            if not isinstance(turns, list):
                raise DataError(f"{path}: row {n}: field {field!r} must be a list of turns (strings or messages)")
            out.append([_turn_text(t, path, n) for t in turns])
        return out

    def read(self, source: str, target: str | None) -> list[Pair]:
        w = self.cfg.dialogue.history_turns
        pairs = []
        for turns in self.dialogues(source):
            turns = [" ".join(t.split()) for t in turns if t.strip()]  # one line per turn
            pairs.extend(("\n".join(turns[max(0, i - w):i]), turns[i]) for i in range(1, len(turns)))
        return pairs

    def history(self, turns: list[str]) -> str:
        if not self.cfg.dialogue.speaker_markers:
            return f" {SEP} ".join(turns)
        n = len(turns)
        return " ".join(f"{USER if (n - 1 - i) % 2 == 0 else BOT} {t}" for i, t in enumerate(turns))

    def format_source(self, text: str) -> str:
        """Turns separated by newlines (or the turn separator), most recent last."""
        return self.history(self.turns(text))

    def turns(self, text: str) -> list[str]:
        """The last `history_turns` turns of a history (separated by newlines or the turn separator)."""
        sep = re.escape(self.cfg.dialogue.turn_separator)
        return [t.strip() for t in re.split(rf"\n|{sep}", text) if t.strip()][-self.cfg.dialogue.history_turns:]

    def messages(self, text: str) -> list[Message]:
        """The turns as a chat's messages, the last one the user's, after the instruction as the system message."""
        turns = self.turns(text)
        n = len(turns)
        chat = [{"role": "user" if (n - 1 - i) % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
        return ([{"role": "system", "content": self.instruction}] if self.instruction else []) + chat


def _turn_text(turn: object, path: Path, row: int) -> str:
    if isinstance(turn, str):
        return turn.strip()
    if isinstance(turn, dict):
        for key in ("content", "text"):
            if isinstance(turn.get(key), str):
                return turn[key].strip()
    raise DataError(f"{path}: row {row}: a turn must be a string or an object with a 'content' or 'text' field")


class KeywordsTask(Task):
    def read(self, source: str, target: str | None) -> list[Pair]:
        docs = read_documents(self.cfg.model_copy(update={"source": source, "max_documents": None}))
        keywords = extract_keywords(docs, self.cfg.keywords.method, self.cfg.keywords.count)
        return [(" ".join(k), d) for k, d in zip(keywords, docs)]

    def format_source(self, text: str) -> str:
        """Keywords separated by commas, spaces or Chinese list marks."""
        return " ".join(w for w in re.split(r"[,，、;；\s]+", text) if w)


def build_task(cfg: DataConfig) -> Task:
    if cfg.task in ("translation", "summarization"):
        return PairedTask(cfg, cfg.task)
    if cfg.task == "dialogue":
        markers = (USER, BOT) if cfg.dialogue.speaker_markers else (SEP,)
        return DialogueTask(cfg, "dialogue", keep="end", control_tokens=markers)
    if cfg.task == "keywords":
        return KeywordsTask(cfg, "keywords")
    raise DataError(f"task {cfg.task!r} has no source/target pairs; it is a language-modelling corpus")
