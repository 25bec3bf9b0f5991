"""The longest run a text shares with any of a set of texts, over characters or tokens."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

_BETWEEN = object()  # between two texts: equal to nothing in a query, so no match spans two texts


class SubstringIndex:
    """A suffix automaton of `texts` (strings, or sequences of tokens): `longest(query)` finds the
    longest run of `query` that occurs in any of them, in time linear in the query."""

    def __init__(self, texts: Sequence[Sequence[Hashable]]) -> None:
        self.next: list[dict[Hashable, int]] = [{}]
        self.link, self.length = [-1], [0]
        last = 0
        for i, text in enumerate(texts):
            if i:
                last = self._extend(last, _BETWEEN)
            for unit in text:
                last = self._extend(last, unit)

    def _extend(self, last: int, unit: Hashable) -> int:
        nxt, link, length = self.next, self.link, self.length
        cur = len(length)
        nxt.append({})
        length.append(length[last] + 1)
        link.append(0)
        p = last
        while p != -1 and unit not in nxt[p]:
            nxt[p][unit] = cur
            p = link[p]
        if p != -1:
            q = nxt[p][unit]
            if length[p] + 1 == length[q]:
                link[cur] = q
            else:
                clone = len(length)
                nxt.append(dict(nxt[q]))
                length.append(length[p] + 1)
                link.append(link[q])
                while p != -1 and nxt[p].get(unit) == q:
                    nxt[p][unit] = clone
                    p = link[p]
                link[q] = link[cur] = clone
        return cur

    def longest(self, query: Sequence[Hashable]) -> tuple[int, int]:
        """(length, end) of the longest shared run: `query[end - length:end]`."""
        state = run = best = best_end = 0
        for i, unit in enumerate(query):
            while state and unit not in self.next[state]:
                state = self.link[state]
                run = self.length[state]
            if unit in self.next[state]:
                state = self.next[state][unit]
                run += 1
            if run > best:
                best, best_end = run, i + 1
        return best, best_end
