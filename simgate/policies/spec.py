"""A policy as registered: where it lives and what it claims to be. Nothing is loaded here."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from simgate.errors import located

FORMATS = ("onnx", "torchscript", "scripted")


@dataclasses.dataclass(frozen=True)
class PolicySpec:
    name: str
    env: str
    format: str
    observation_size: int
    action_size: int
    file: Path | None = None
    entry: str | None = None  # "module:callable" for scripted controllers
    sha256: str | None = None
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    manifest: str = "<plugin>"
    line: int | None = None  # of the entry in the manifest, for error messages

    def problem(self) -> str | None:
        """Why this policy cannot run, found without loading it (cheap: collection time)."""
        if self.file is not None and not self.file.is_file():
            return located(self.manifest, self.line, f"policy {self.name!r}: file {self.file} does not exist; "
                                                     "fix 'file:' or restore the file")
        return None

    def file_digest(self) -> str:
        return hashlib.sha256(self.file.read_bytes()).hexdigest()

    def load(self):
        """The runnable policy: ``act(obs[batch, n_obs]) -> actions[batch, n_act]``.

        Raises PolicyLoadError with a message naming the policy and the fix.
        """
        from simgate.policies import loaders

        return loaders.load(self)
