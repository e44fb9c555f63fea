"""A name → object table that answers unknown names with "did you mean"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from simgate.errors import SimgateError
from simgate.names import did_you_mean  # also importable from here, its former home


class Registry:
    """Entries of one kind (``what``: env, policy, perturbation, metric)."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, Any] = {}
        self._owners: dict[str, str] = {}
        self.current_plugin = "?"
        #: resolved paths of the YAML files whose entries are registered (a file registered by a
        #: plugin is not registered again by the project folder's discovery)
        self.sources: set[str] = set()

    def add(self, name: str, entry: Any) -> None:
        if not isinstance(name, str) or not name:
            raise SimgateError(f"plugin {self.current_plugin}: {self.what} names must be non-empty strings, got {name!r}")
        if name in self._entries:
            raise SimgateError(
                f"plugin {self.current_plugin}: {self.what} {name!r} is already registered by "
                f"plugin {self._owners[name]}; choose another name"
            )
        self._entries[name] = entry
        self._owners[name] = self.current_plugin

    def get(self, name: str) -> Any:
        try:
            return self._entries[name]
        except KeyError:
            raise SimgateError(f"unknown {self.what} {name!r}{did_you_mean(name, self._entries)}") from None

    def owner(self, name: str) -> str:
        return self._owners[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def names(self) -> list[str]:
        return sorted(self._entries)
