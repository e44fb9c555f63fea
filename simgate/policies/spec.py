"""A policy as registered: where it lives and what it claims to be. Nothing is loaded here."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from simgate.errors import located
from simgate.policies import loaders

FORMATS = ("onnx", "torchscript", "scripted")
#: formats whose file is the policy itself: a digest in the manifest is required, so a changed
#: file is noticed before it is gated under the old name
DIGEST_REQUIRED = ("onnx", "torchscript")


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
    #: other files the policy reads (gains, normalisation tables): part of what a result depends on
    files: tuple[Path, ...] = ()
    #: the sha256 of each ``files`` entry, by the name the manifest gives it
    files_sha256: dict[str, str] = dataclasses.field(default_factory=dict, compare=False)
    #: manifest line of each key of the entry ("env", "sha256", "files", ...), for error messages
    lines: dict[str, int] = dataclasses.field(default_factory=dict, compare=False, repr=False)
    #: the observation/action contract (:class:`simgate.robots.load.ContractDef`) a policy for a
    #: YAML robot brings: how its training env built each observation and used each action
    contract: Any = dataclasses.field(default=None, compare=False, repr=False)

    def problem(self, check_digest: bool = False) -> str | None:
        """Why this policy cannot run, found without loading it (cheap: collection time).

        ``check_digest``: also hash the file and compare it with ``sha256`` (required for ONNX and
        TorchScript); done once per run for the policies the run uses.
        """
        if self.file is not None and not self.file.is_file():
            return located(self.manifest, self.line, f"policy {self.name!r}: file {self.file} does not exist; "
                                                     "fix 'file:' or restore the file")
        for extra in self.files:
            if extra.is_dir():  # each file is checked against its own files_sha256 entry
                return located(self.manifest, self.lines.get("files", self.line),
                               f"policy {self.name!r}: files: {extra} is a folder; list the files in it one by one")
            if not extra.is_file():
                return located(self.manifest, self.lines.get("files", self.line),
                               f"policy {self.name!r}: files: {extra} does not exist; fix 'files:' or restore the file")
        if check_digest:
            problem = self._files_problem()
            if problem:
                return problem
        if not check_digest or self.file is None:
            return None
        digest = self.file_digest()
        if self.sha256 is None:
            if self.format not in DIGEST_REQUIRED:
                return None
            return located(self.manifest, self.line,
                           f"policy {self.name!r}: sha256 is required for {self.format} policies; add "
                           f"'sha256: {digest}' (the digest of {self.file.name} now) to its manifest entry")
        if digest != self.sha256:
            return located(self.manifest, self.lines.get("sha256", self.line),
                           f"policy {self.name!r}: sha256: {self.file.name} has digest {digest}, the manifest says "
                           f"{self.sha256}; re-export the policy, or write the new digest if the change is intended")
        return None

    def _files_problem(self) -> str | None:
        """Each ``files:`` entry against its ``files_sha256`` digest (required: such a file may
        hold weights, e.g. a scripted controller's gains)."""
        line = self.lines.get("files_sha256", self.lines.get("files", self.line))
        for extra in self.files:
            digest = hashlib.sha256(extra.read_bytes()).hexdigest()
            stated = self.files_sha256.get(extra.name)
            if stated is None:
                return located(self.manifest, line, f"policy {self.name!r}: files_sha256 needs the digest of "
                                                    f"{extra.name} (it may hold weights): add "
                                                    f"'files_sha256: {{{extra.name}: {digest}}}' to its manifest entry")
            if stated != digest:
                return located(self.manifest, line, f"policy {self.name!r}: files_sha256: {extra.name} has digest "
                                                    f"{digest}, the manifest says {stated}; restore the file, or write "
                                                    "the new digest if the change is intended")
        return None

    def file_digest(self) -> str:
        return hashlib.sha256(self.file.read_bytes()).hexdigest()

    def load(self):
        """The runnable policy: ``act(obs[batch, n_obs]) -> actions[batch, n_act]``.

        Raises PolicyLoadError with a message naming the policy and the fix.
        """

        return loaders.load(self)
