"""Incremental fuzzy filtering of credentials, fast enough to run on every keystroke.

Each credential gets one lower-cased haystack (name, service, context, kind, tags).
A query is split on spaces; every term must match the haystack as a subsequence
("ghci" matches "github-pat-ci"). Ranking puts exact substrings of the name first,
then substrings anywhere, then scattered matches, each group in the caller's order.

When a query only extends the previous one (the person typed one more character),
only the previous matches are searched again: at 100k credentials that is what keeps
a keystroke well under the 50 ms budget.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aegis_tui.core.models import Credential


def haystack(credential: Credential) -> str:
    return " ".join((credential.name, credential.service, credential.context, credential.kind, *credential.tags)).lower()


def _pattern(term: str) -> re.Pattern[str]:
    return re.compile(".*?".join(re.escape(ch) for ch in term))


class FuzzyFilter:
    """Filters a fixed list of credentials; call ``apply`` with each new query."""

    def __init__(self, credentials: Sequence[Credential]) -> None:
        self._items = list(credentials)
        self._names = [c.name.lower() for c in self._items]
        self._hay = [haystack(c) for c in self._items]
        self._last_query = ""
        self._last_hits: list[int] = list(range(len(self._items)))

    def apply(self, query: str) -> list[Credential]:
        """The credentials matching ``query``, best first."""
        return [self._items[i] for i in self.indices(query)]

    def indices(self, query: str) -> list[int]:
        terms = query.lower().split()
        if not terms:
            self._last_query, self._last_hits = "", list(range(len(self._items)))
            return self._last_hits
        # Extending a query can only narrow it (a longer term, or one more term).
        incremental = bool(self._last_query) and query.lower().startswith(self._last_query)
        hits: Sequence[int] = self._last_hits if incremental else range(len(self._items))
        hay = self._hay
        for term in terms:  # one pass per term, each over the survivors of the last
            if len(term) == 1:
                hits = [i for i in hits if term in hay[i]]
            else:
                search = _pattern(term).search
                hits = [i for i in hits if search(hay[i])]
        self._last_query, self._last_hits = query.lower(), list(hits)
        first, names = terms[0], self._names
        in_name: list[int] = []
        anywhere: list[int] = []
        scattered: list[int] = []
        for i in hits:
            if first in names[i]:
                in_name.append(i)
            elif first in hay[i]:
                anywhere.append(i)
            else:
                scattered.append(i)
        return in_name + anywhere + scattered
