"""Incidents: a component that stays unhealthy for ``after`` checks in a row is alerted on
once; it is alerted on again only after it recovered and failed again."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Incidents:
    """Consecutive failures per component, and the components alerted on (a sensor cursor)."""

    after: int = 3
    failures: dict[str, int] = field(default_factory=dict)
    alerted: set[str] = field(default_factory=set)

    @classmethod
    def from_cursor(cls, cursor: str | None, *, after: int) -> Incidents:
        if not cursor:
            return cls(after=after)
        data = json.loads(cursor)
        return cls(after, dict(data.get("failures", {})), set(data.get("alerted", [])))

    def to_cursor(self) -> str:
        return json.dumps({"failures": self.failures, "alerted": sorted(self.alerted)})

    def observe(self, healthy: dict[str, bool]) -> tuple[list[str], list[str]]:
        """Record one round of checks; returns (components to alert on, components recovered)."""
        alert, recovered = [], []
        for name, ok in sorted(healthy.items()):
            if ok:
                self.failures.pop(name, None)
                if name in self.alerted:
                    self.alerted.discard(name)
                    recovered.append(name)
                continue
            self.failures[name] = self.failures.get(name, 0) + 1
            if self.failures[name] >= self.after and name not in self.alerted:
                self.alerted.add(name)
                alert.append(name)
        return alert, recovered


def alert_message(component: str, state: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"type": "component_alert", "component": component, "state": state, **detail}
