"""The few data types that flow through the pipeline.

locate -> plan (rules) -> manifest -> git -> build -> verify

Every stage takes and returns these values; none of them prints. They are
frozen dataclasses so that they can cross process boundaries (the parallel
scanner pickles them) and be compared in tests.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path


class Severity(enum.IntEnum):
    """Ordered so that `finding.severity >= threshold` reads naturally."""

    NOTE = 1
    WARNING = 2
    ERROR = 3

    @classmethod
    def parse(cls, text: str) -> "Severity":
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (expected error, warning or note)") from None

    def __str__(self) -> str:
        return self.name.lower()


class PortStatus(str, enum.Enum):
    """What `apply` does about a finding.

    KEPT: the port keeps the behaviour (e.g. the compat module emulates it).
    DEGRADED: the port does the closest safe thing and behaviour changes
    (reported, never silent). MANUAL: wasiport cannot port it.
    """

    KEPT = "kept"
    DEGRADED = "degraded"
    MANUAL = "manual"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, order=True)
class Span:
    """A byte range in a file plus its 1-based line and column (columns count characters)."""

    start_byte: int
    end_byte: int
    start_line: int
    start_col: int
    end_line: int
    end_col: int


@dataclass(frozen=True, order=True)
class Edit:
    """Replace bytes [start, end) of `path` with `replacement` (UTF-8 text)."""

    path: str
    start: int
    end: int
    replacement: str

    @property
    def is_insertion(self) -> bool:
        return self.start == self.end


@dataclass(frozen=True)
class Fix:
    """What apply does for one finding: a description and its byte edits (maybe none,
    when the finding is covered by a file-level change such as the import rewrite)."""

    description: str
    edits: tuple[Edit, ...] = ()


@dataclass(frozen=True)
class Finding:
    rule_id: str
    severity: Severity
    message: str
    path: str  # as given by the user or relative to the scanned root; '/' separators
    span: Span
    help: str = ""  # one sentence: what apply would do
    port: PortStatus = PortStatus.MANUAL
    fix: Fix | None = None
    # True when the engine proved the site is std::net (e.g. the receiver's type is known).
    sure: bool = True

    def sort_key(self) -> tuple:
        return (self.path, self.span.start_byte, self.rule_id)


@dataclass(frozen=True)
class Problem:
    """An input that could not be examined (unparsable file, bad encoding, bad manifest).

    Problems are reported like findings but with their own ids (wasiport/parse-error, ...)."""

    code: str
    message: str
    path: str
    line: int = 0
    col: int = 0


@dataclass(frozen=True)
class Profile:
    """The port target. The defaults describe WasmEdge with wasmedge_wasi_socket 0.5."""

    name: str = "wasmedge"
    gate: str = 'all(target_os = "wasi", not(target_env = "p2"))'
    socket_crate: str = "wasmedge_wasi_socket"
    # 0.5.4 is the first 0.5 release with everything the compat module uses (recv_with_flags,
    # Socket::broadcast); 0.5.5 and later need rustc 1.66.
    socket_version: str = "0.5.4"
    # Rust target names, newest first: >= 1.84 knows only wasip1, <= 1.77 only wasi.
    targets: tuple[str, ...] = ("wasm32-wasip1", "wasm32-wasi")
    compat_module: str = "wasiport_net"
    # Which crate-substitution generation `apply --deps` uses: "patch" (same-name forks
    # through [patch.crates-io]) or "rename" (tokio = { package = "tokio_wasi", ... }).
    substitution: str = "patch"

    @property
    def socket_api(self) -> str:
        """'0.4' or '0.5': selects the compat template (0.4 cannot keep timeouts)."""
        return "0.4" if self.socket_version.lstrip("^~=").startswith("0.4") else "0.5"


@dataclass
class FileReport:
    """What scanning one file produced."""

    path: str
    findings: list[Finding] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass
class StageResult:
    """One pipeline stage's outcome, as apply reports it."""

    stage: str  # locate | plan | manifest | git | build | verify | run
    ok: bool
    summary: str
    details: list[str] = field(default_factory=list)


@dataclass
class PortResult:
    """Everything `apply` did and found, serialisable for --format json."""

    crate_name: str
    crate_root: Path
    findings: list[Finding] = field(default_factory=list)
    stages: list[StageResult] = field(default_factory=list)
    commit: str | None = None
    already_ported: bool = False

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.stages)

    @property
    def degraded(self) -> list[Finding]:
        return [f for f in self.findings if f.port is PortStatus.DEGRADED]

    @property
    def manual(self) -> list[Finding]:
        return [f for f in self.findings if f.port is PortStatus.MANUAL]
