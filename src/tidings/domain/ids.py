"""Time-ordered, sortable ids (ULID layout: 48-bit milliseconds + 80 random bits, base32)."""

from __future__ import annotations

import math
import os
import threading
import time
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two digits for each 10-bit value: an id takes 13 lookups rather than 26 digit steps.
_PAIRS = [first + second for first in _ALPHABET for second in _ALPHABET]
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def _encode(value: int, length: int) -> str:
    """`value` (below 32**length) as `length` digits, most significant first; `length` even."""
    shifts = range(5 * length - 10, -1, -10)
    return "".join([_PAIRS[value >> shift & 1023] for shift in shifts])


def new_id() -> str:
    """A 26-character id that sorts after every id this process made before it.

    Within one millisecond the random part is incremented, so ids made in a burst keep
    their creation order (cursors and SSE replay rely on it).
    """
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            rand = _last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # room to increment
        _last_ms, _last_rand = ms, rand
    return _encode(ms << 80 | rand, 26)


def first_id_at(moment: datetime) -> str:
    """The smallest id made at or after `moment` (an aware datetime, to the millisecond): the
    ids of a time range are a range of ids, so a primary key doubles as an index on creation
    time. Before 1970 it is the smallest id of all; 48 bits of ms reach past the year 9999."""
    ms = max(0, math.floor(moment.timestamp() * 1000))
    return _encode(ms, 10) + _ALPHABET[0] * 16
