"""What a running instance announces in discovery: the registry backends store it, the
RPC client picks endpoints from it, the hub keeps it as a map."""
from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class InstanceInfo:
    """One running instance as the registry knows it."""

    id: str
    endpoint: str
    services: list[str]
    pid: int = 0
    host: str = ''
    version: str = ''
    started: float = 0.0
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> 'InstanceInfo':
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})
