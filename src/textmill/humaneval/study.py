"""A human evaluation study in one SQLite file: the systems' outputs, blinded and shuffled, and the
raters' judgements.

Two kinds of task: an *item* (one output, rated 1-5 for fluency, coherence and grammar) and a *pair*
(two systems' outputs for the same prompt, A or B preferred, or a tie; which system is A is drawn at
creation). Each rater sees every task once, in an order of their own (drawn from the study's seed and
the rater's name), never a system's name. A judgement is keyed by (rater, task), so two browsers of
one rater, or a double click, never count twice, and SQLite's locking keeps concurrent raters from
losing one another's.

Only invited raters judge: a rater's token is an HMAC of their name under a secret the study keeps
(`textmill humaneval invite STUDY --rater NAME` prints their link), so whoever holds the study file
can invite, and nobody who merely reaches the server can add judgements under a new name.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ..errors import ConfigError
from ..files import replacing

FORMAT = "textmill-humaneval"
VERSION = 1
CRITERIA = ("fluency", "coherence", "grammar")
SCALE = (1, 5)

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE systems (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, source TEXT NOT NULL);
CREATE TABLE items (id INTEGER PRIMARY KEY, system_id INTEGER NOT NULL REFERENCES systems, prompt TEXT NOT NULL,
                    text TEXT NOT NULL);
CREATE TABLE pairs (id INTEGER PRIMARY KEY, a INTEGER NOT NULL REFERENCES items, b INTEGER NOT NULL REFERENCES items);
CREATE TABLE ratings (rater TEXT NOT NULL, item_id INTEGER NOT NULL REFERENCES items, fluency INTEGER NOT NULL,
                      coherence INTEGER NOT NULL, grammar INTEGER NOT NULL, at REAL NOT NULL, PRIMARY KEY (rater, item_id));
CREATE TABLE preferences (rater TEXT NOT NULL, pair_id INTEGER NOT NULL REFERENCES pairs,
                          choice TEXT NOT NULL CHECK (choice IN ('a', 'b', 'tie')), at REAL NOT NULL,
                          PRIMARY KEY (rater, pair_id));
"""


@dataclass(frozen=True)
class Output:
    system: str
    prompt: str
    text: str


class AlreadyJudged(ConfigError):
    """The rater has already judged this task."""


class NotInvited(ConfigError):
    """The rater's token is missing or not the one their invitation holds."""


def create(outputs: Sequence[Output], path: str | Path, *, sources: dict[str, str] | None = None, pairs: bool = True,
           seed: int = 0, overwrite: bool = False) -> Path:
    """Write a study of `outputs` to `path` (atomically: a half-written study never appears there).
    With `pairs`, every two systems' outputs for the same prompt also make an A/B task."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} exists; choose another --out or pass --overwrite (its ratings would be lost)")
    systems = sorted({o.system for o in outputs})
    if not outputs:
        raise ConfigError("a study needs outputs to rate; none were given")
    if any(not o.text.strip() for o in outputs):
        empty = next(o for o in outputs if not o.text.strip())
        raise ConfigError(f"system {empty.system!r} has an empty output for prompt {empty.prompt!r}; raters cannot judge "
                          "empty text: drop it or generate again")
    rng = random.Random(seed)
    with replacing(path) as tmp, closing(sqlite3.connect(tmp)) as db, db:  # the file appears whole or not at all
        db.executescript(SCHEMA)
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("format", FORMAT), ("version", str(VERSION)),
                                                          ("seed", str(seed)), ("created", str(time.time())),
                                                          ("invite_secret", secrets.token_hex(32))])
        ids = {}
        for name in systems:
            ids[name] = db.execute("INSERT INTO systems (name, source) VALUES (?, ?)",
                                   (name, (sources or {}).get(name, name))).lastrowid
        shuffled = list(outputs)
        rng.shuffle(shuffled)  # item ids say nothing about the system
        by_prompt: dict[str, dict[str, int]] = {}
        for o in shuffled:
            item = db.execute("INSERT INTO items (system_id, prompt, text) VALUES (?, ?, ?)",
                              (ids[o.system], o.prompt, o.text)).lastrowid
            by_prompt.setdefault(o.prompt, {}).setdefault(o.system, item)
        if pairs:
            found = [(a, b) for per in by_prompt.values() for a, b in itertools.combinations(sorted(per.values()), 2)]
            rng.shuffle(found)
            for a, b in found:
                db.execute("INSERT INTO pairs (a, b) VALUES (?, ?)", (a, b) if rng.random() < 0.5 else (b, a))
    return path


def read_jsonl_outputs(path: Path, system: str) -> list[Output]:
    """Outputs from a JSONL file of {"prompt", "text"} rows (what `textmill generate --json` prints)."""
    from ..data.sources import read_jsonl

    if not path.is_file():
        raise ConfigError(f"{path} does not exist; pass a JSONL file of {{\"prompt\", \"text\"}} rows "
                          "(`textmill generate ... --json` writes them) or a model with --prompts")
    out = []
    for n, row in read_jsonl(path):
        if not isinstance(row.get("text"), str):
            raise ConfigError(f"{path}:{n} has no \"text\" string; each line must be {{\"prompt\": ..., \"text\": ...}}")
        out.append(Output(system, str(row.get("prompt", "")), row["text"]))
    if not out:
        raise ConfigError(f"{path} holds no outputs")
    return out


class Study:
    """An open study file (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"{self.path} does not exist; create a study with `textmill humaneval create`")
        try:
            with self._db() as db:
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError:
            raise ConfigError(f"{self.path} is not a textmill study (not an SQLite file with its tables); "
                              "create one with `textmill humaneval create`") from None
        if meta.get("format") != FORMAT:
            raise ConfigError(f"{self.path} is an SQLite file but not a textmill study; create one with `textmill humaneval create`")
        if int(meta.get("version", 0)) > VERSION:
            raise ConfigError(f"{self.path} was written by a newer textmill (study version {meta['version']}); upgrade textmill")
        self.seed = int(meta["seed"])
        if "invite_secret" not in meta:  # a study written before invitations: it gets its secret now
            with self._db() as db:
                db.execute("INSERT OR IGNORE INTO meta VALUES ('invite_secret', ?)", (secrets.token_hex(32),))
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        self._secret = bytes.fromhex(meta["invite_secret"])

    def token(self, rater: str) -> str:
        """The token of `rater`'s invitation (the same every time for the same study and name)."""
        return hmac.new(self._secret, check_rater(rater).encode(), hashlib.sha256).hexdigest()[:32]

    def admit(self, rater: str, token: str) -> str:
        """`rater`, checked against their invitation's token; NotInvited when it does not match."""
        rater = check_rater(rater)
        if not hmac.compare_digest(self.token(rater).encode(), (token or "").encode()):
            raise NotInvited(f"{rater!r} has no valid invitation to this study: open the link the study's owner gave you "
                             "(they make it with `textmill humaneval invite STUDY --rater NAME`)")
        return rater

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA foreign_keys = ON")
        try:
            with db:
                yield db
        finally:
            db.close()

    def tasks(self) -> list[tuple[str, int]]:
        with self._db() as db:
            return ([("item", i) for (i,) in db.execute("SELECT id FROM items ORDER BY id")] +
                    [("pair", i) for (i,) in db.execute("SELECT id FROM pairs ORDER BY id")])

    def order(self, rater: str) -> list[tuple[str, int]]:
        tasks = self.tasks()
        random.Random(f"{self.seed}/{rater}").shuffle(tasks)
        return tasks

    def next_task(self, rater: str) -> dict[str, Any]:
        """The rater's next task (its prompt and text, or texts A and B; never a system), and progress."""
        rater = check_rater(rater)
        order = self.order(rater)
        with self._db() as db:
            done = {("item", i) for (i,) in db.execute("SELECT item_id FROM ratings WHERE rater = ?", (rater,))}
            done |= {("pair", i) for (i,) in db.execute("SELECT pair_id FROM preferences WHERE rater = ?", (rater,))}
            progress = {"done": len(done), "total": len(order)}
            for kind, i in order:
                if (kind, i) in done:
                    continue
                if kind == "item":
                    prompt, text = db.execute("SELECT prompt, text FROM items WHERE id = ?", (i,)).fetchone()
                    return {"kind": "item", "id": i, "prompt": prompt, "text": text, "progress": progress}
                (prompt, a), (b,) = (db.execute("SELECT i.prompt, i.text FROM pairs p JOIN items i ON i.id = p.a WHERE p.id = ?",
                                                (i,)).fetchone(),
                                     db.execute("SELECT i.text FROM pairs p JOIN items i ON i.id = p.b WHERE p.id = ?",
                                                (i,)).fetchone())
                return {"kind": "pair", "id": i, "prompt": prompt, "a": a, "b": b, "progress": progress}
        return {"kind": "done", "progress": progress}

    def rate(self, rater: str, item_id: int, scores: dict[str, int]) -> None:
        rater = check_rater(rater)
        missing = [c for c in CRITERIA if c not in scores]
        if missing:
            raise ConfigError(f"a rating needs {', '.join(CRITERIA)}; missing: {', '.join(missing)}")
        for c in CRITERIA:
            v = scores[c]
            if isinstance(v, bool) or not isinstance(v, int) or not SCALE[0] <= v <= SCALE[1]:
                raise ConfigError(f"{c} must be a whole number from {SCALE[0]} to {SCALE[1]} (got {v!r})")
        with self._db() as db:
            if db.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone() is None:
                raise ConfigError(f"item {item_id} is not in this study")
            cur = db.execute("INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                             (rater, item_id, *(scores[c] for c in CRITERIA), time.time()))
            if cur.rowcount == 0:
                raise AlreadyJudged(f"{rater} has already rated item {item_id}; each rater judges each task once")

    def prefer(self, rater: str, pair_id: int, choice: str) -> None:
        rater = check_rater(rater)
        if choice not in ("a", "b", "tie"):
            raise ConfigError(f"choice must be a, b or tie (got {choice!r})")
        with self._db() as db:
            if db.execute("SELECT 1 FROM pairs WHERE id = ?", (pair_id,)).fetchone() is None:
                raise ConfigError(f"pair {pair_id} is not in this study")
            cur = db.execute("INSERT INTO preferences VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                             (rater, pair_id, choice, time.time()))
            if cur.rowcount == 0:
                raise AlreadyJudged(f"{rater} has already compared pair {pair_id}; each rater judges each task once")

    def ratings(self) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute("SELECT r.rater, s.name, i.id, i.prompt, i.text, r.fluency, r.coherence, r.grammar, r.at "
                              "FROM ratings r JOIN items i ON i.id = r.item_id JOIN systems s ON s.id = i.system_id "
                              "ORDER BY r.at").fetchall()
        keys = ("rater", "system", "item", "prompt", "text", *CRITERIA, "at")
        return [dict(zip(keys, r)) for r in rows]

    def preferences(self) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute("SELECT r.rater, r.pair_id, sa.name, sb.name, ia.prompt, r.choice, r.at FROM preferences r "
                              "JOIN pairs p ON p.id = r.pair_id JOIN items ia ON ia.id = p.a JOIN items ib ON ib.id = p.b "
                              "JOIN systems sa ON sa.id = ia.system_id JOIN systems sb ON sb.id = ib.system_id "
                              "ORDER BY r.at").fetchall()
        keys = ("rater", "pair", "system_a", "system_b", "prompt", "choice", "at")
        return [dict(zip(keys, r)) for r in rows]

    def systems(self) -> list[str]:
        with self._db() as db:
            return [n for (n,) in db.execute("SELECT name FROM systems ORDER BY name")]



def invite(path: str | Path, raters: Sequence[str], url: str = "http://127.0.0.1:8000") -> dict[str, str]:
    """Each rater's invitation: the link to the rating page of the study at `path`, served at `url`."""
    study = Study(path)
    base = url.rstrip("/")
    return {rater: f"{base}/rate?{urlencode({'rater': check_rater(rater), 'token': study.token(rater)})}" for rater in raters}


def check_rater(rater: str) -> str:
    name = (rater or "").strip()
    if not name or len(name) > 64:
        raise ConfigError("a rater name is 1 to 64 characters; type your name or initials")
    return name
