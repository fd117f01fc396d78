"""What verification found: one object per problem, with a one-line message, JSON-ready for
``operator audit verify --json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Past this many findings of one kind, only a count is kept: a file rewritten wholesale
# should produce a readable report, not a million lines.
PER_KIND_LIMIT = 50


@dataclass(frozen=True)
class Finding:
    """``kind`` names the problem (``truncated``, ``rewritten``, ``rollback``, ...);
    ``first_event``..``last_event`` is where; ``checkpoint`` is the (1-based) checkpoint
    that shows it, if one does."""

    kind: str
    message: str
    first_event: int | None = None
    last_event: int | None = None
    checkpoint: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Findings:
    """Findings in the order found, capped per kind (the rest only counted)."""

    items: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, finding: Finding) -> None:
        n = self.counts.get(finding.kind, 0) + 1
        self.counts[finding.kind] = n
        if n <= PER_KIND_LIMIT:
            self.items.append(finding)

    def extend(self, findings: list[Finding]) -> None:
        for f in findings:
            self.add(f)

    def merge(self, other: Findings) -> None:
        """Add another pass's findings, its counts included."""
        for f in other.items:
            self.add(f)
        for kind, n in other.counts.items():
            self.counts[kind] += n - min(n, PER_KIND_LIMIT)

    def summary(self) -> list[Finding]:
        """The findings kept, and one line per kind that had more than were kept."""
        more = [
            Finding(kind, f"... and {n - PER_KIND_LIMIT} more {kind} findings")
            for kind, n in self.counts.items()
            if n > PER_KIND_LIMIT
        ]
        return self.items + more

    def __bool__(self) -> bool:
        return bool(self.items)
