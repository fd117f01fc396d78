"""Time in the engine: timezone-aware UTC, stored as fixed-width text so SQL compares correctly.

A naive datetime handed in by a caller means local time and is converted to UTC here.
"""

from __future__ import annotations

try:
    # The C module behind ``datetime`` (the same classes): ``datetime.py`` first runs its
    # pure-Python version, about a tenth of a reading command's start (docs/performance.md).
    # The modules a reading command imports take these three from here.
    from _datetime import UTC, datetime, timedelta
except ImportError:  # an interpreter without it
    from datetime import UTC, datetime, timedelta

# Stored fixed width (see to_db): 2026-11-21T08:19:06.123456Z sorts lexically in time order.


class UTCDateTime(datetime):
    """An aware UTC datetime that also subtracts and compares with a caller's naive datetime,
    taking the naive one as local time (so ``next_retry - datetime.now()`` just works)."""

    def __sub__(self, other):  # type: ignore[no-untyped-def, override]
        if isinstance(other, datetime) and other.tzinfo is None:
            other = to_utc(other)
        return super().__sub__(other)

    def __rsub__(self, other):  # type: ignore[no-untyped-def]
        if isinstance(other, datetime) and other.tzinfo is None:
            return to_utc(other) - datetime(*self.timetuple()[:6], self.microsecond, UTC)
        return NotImplemented

    def _cmp_other(self, other: object) -> object:
        if isinstance(other, datetime) and other.tzinfo is None:
            return to_utc(other)
        return other

    def __lt__(self, other: object) -> bool:
        return super().__lt__(self._cmp_other(other))  # type: ignore[operator]

    def __le__(self, other: object) -> bool:
        return super().__le__(self._cmp_other(other))  # type: ignore[operator]

    def __gt__(self, other: object) -> bool:
        return super().__gt__(self._cmp_other(other))  # type: ignore[operator]

    def __ge__(self, other: object) -> bool:
        return super().__ge__(self._cmp_other(other))  # type: ignore[operator]

    def __eq__(self, other: object) -> bool:
        return super().__eq__(self._cmp_other(other))

    __hash__ = datetime.__hash__


def utcnow() -> datetime:
    return UTCDateTime.now(UTC)


def to_utc(value: datetime) -> datetime:
    """Aware → UTC; naive → interpreted as local time, then UTC."""
    if value.tzinfo is None:
        value = value.astimezone()  # attaches the local zone to a naive value
    value = value.astimezone(UTC)
    if type(value) is not UTCDateTime:
        value = UTCDateTime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            UTC,
        )
    return value


# The last UTC value to_db stored and its text: a runner's cycle stores the same "now" in
# several statements. Held as one tuple (replaced whole, so a thread never sees half of it);
# the value is held too, so the identity test cannot match a new object at a freed one's
# address. (Only UTC values: a naive one's text depends on the local zone of the moment.)
_last_stored: tuple[datetime | None, str | None] = (None, None)


def to_db(value: datetime | None) -> str | None:
    global _last_stored
    if value is None:
        return None
    last = _last_stored
    if last[0] is value:
        return last[1]
    given = value
    if value.tzinfo is not UTC:
        given = None
        value = to_utc(value)
    # isoformat is C code and pads the year to four digits (strftime's %Y does not); in UTC
    # it ends in "+00:00". Without arguments it is about twice as fast as with timespec
    # (keyword parsing), and the same text unless the microseconds are zero.
    if value.microsecond:
        text = value.isoformat()[:-6] + "Z"
    else:
        text = value.isoformat(timespec="microseconds")[:-6] + "Z"
    if given is not None:
        _last_stored = (given, text)
    return text


def from_db(value: str | None) -> datetime | None:
    """Parse a stored timestamp; also accepts the seeds' ISO and SQLite CURRENT_TIMESTAMP forms."""
    if value is None or value == "":
        return None
    if value.endswith("Z") and len(value) == 27:
        return UTCDateTime.fromisoformat(value)  # Python 3.11 reads the Z as UTC
    parsed = datetime.fromisoformat(value.replace(" ", "T"))
    if parsed.tzinfo is None:
        # Legacy rows: CURRENT_TIMESTAMP is UTC; seed rows wrote naive local isoformat().
        # Both cases are normalised by migration; a stray naive value is taken as UTC.
        parsed = parsed.replace(tzinfo=UTC)
    return to_utc(parsed)


class Clock:
    """Source of 'now'. Tests and snapshots freeze it; the engine never calls datetime.now()."""

    def now(self) -> datetime:
        return utcnow()

    def now_text(self) -> str:
        """``to_db(self.now())``. The system clock skips the ``UTCDateTime`` (a subclass
        built from C costs a Python-level constructor call), since only the text is kept."""
        text = to_db(datetime.now(UTC) if type(self).now is Clock.now else self.now())
        assert text is not None
        return text


class FrozenClock(Clock):
    def __init__(self, at: datetime) -> None:
        self._at = to_utc(at)

    def now(self) -> datetime:
        return self._at

    def advance(self, seconds: float) -> None:
        self._at += timedelta(seconds=seconds)

    def set(self, at: datetime) -> None:
        self._at = to_utc(at)


SYSTEM_CLOCK = Clock()


def span(seconds: float) -> str:
    """A window's length in the largest unit that divides it (``1h``, ``90s``, ``10m``)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def short(seconds: float) -> str:
    """``12m``, ``3m12s``, ``45s``, ``2h05m``: a wait as a person reads it."""
    s = int(seconds + 0.999)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 600:
        return f"{s // 60}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"
