"""Withdraw filters read once: the claimer of each recent filter body, kept by its bytes.

A worker sends the same withdraw body again and again (its pipelines, its
site), and so do its many copies. Reading such a body costs more than
handing out the work it asks for when claims are coalesced: parsing the
JSON, checking it, translating the filter into SQL and keying it for the
coalescing. ``PreparedWithdraws`` does that once per distinct body and keeps
the store's claimer (``Store.prepare_withdraw``) under the body's exact bytes.

Only bodies that were accepted are kept, so a refused body is read, and
refused, every time. Bodies longer than ``MAX_KEY_BYTES`` are never kept and
at most ``MAX_ENTRIES`` are (the least recently used goes first), so the
cache holds at most about a MiB whatever clients send.
"""

from __future__ import annotations

from collections import OrderedDict

from workflow.buckets.stores.base import Claimer

#: Longest body kept; worker filters are a few hundred bytes.
MAX_KEY_BYTES = 4096
#: Distinct filter bodies kept.
MAX_ENTRIES = 256


class PreparedWithdraws:
    """The claimer of each recent withdraw body (see the module docstring)."""

    def __init__(
        self, *, max_entries: int = MAX_ENTRIES, max_key_bytes: int = MAX_KEY_BYTES
    ) -> None:
        self._entries: OrderedDict[bytes, Claimer] = OrderedDict()
        self.max_entries = max_entries
        self.max_key_bytes = max_key_bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, body: bytes) -> Claimer | None:
        """The claimer kept for exactly these bytes, if any."""
        claimer = self._entries.get(body)
        if claimer is not None:
            self._entries.move_to_end(body)
        return claimer

    def keep(self, body: bytes, claimer: Claimer) -> Claimer:
        """Keep ``claimer``, prepared from the accepted ``body``, if the body is short.

        Returns ``claimer``, so that preparing and keeping read as one call.
        """
        if len(body) <= self.max_key_bytes:
            self._entries[body] = claimer
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return claimer
