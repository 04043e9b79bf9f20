"""The few data types that flow through the pipeline.

locate -> plan (rules) -> manifest -> git -> build -> verify

Every stage takes and returns these values; none of them prints. Values are
NamedTuples: immutable, ordered, hashable, cheap to pickle across process
boundaries (the parallel scanner sends them) and compared in tests; the reports
that stages fill in are small mutable classes. Not dataclasses, on the paths a
`check` runs: creating a dataclass compiles its generated methods (~1 ms each),
and importing `dataclasses` pulls in `inspect`; a pre-commit hook's one-file
check made 27 of them, a third of its run time.
"""
from __future__ import annotations

import enum
from pathlib import Path
from typing import NamedTuple


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


class Span(NamedTuple):
    """A byte range in a file plus its 1-based line and column (columns count characters)."""

    start_byte: int
    end_byte: int
    start_line: int
    start_col: int
    end_line: int
    end_col: int


class Edit(NamedTuple):
    """Replace bytes [start, end) of `path` with `replacement` (UTF-8 text)."""

    path: str
    start: int
    end: int
    replacement: str

    @property
    def is_insertion(self) -> bool:
        return self.start == self.end


class Fix(NamedTuple):
    """What apply does for one finding: a description and its byte edits (maybe none,
    when the finding is covered by a file-level change such as the import rewrite)."""

    description: str
    edits: tuple[Edit, ...] = ()


class Finding(NamedTuple):
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


class Problem(NamedTuple):
    """An input that could not be examined (unparsable file, bad encoding, bad manifest).

    Problems are reported like findings but with their own ids (wasiport/parse-error, ...)."""

    code: str
    message: str
    path: str
    line: int = 0
    col: int = 0


class Profile(NamedTuple):
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


class Record:
    """Equality and repr by the `__slots__` fields: the base of the mutable records
    (here and in the engine), which write their `__init__` out."""

    __slots__ = ()

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()

    __hash__ = None  # mutable: not hashable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={v!r}' for n, v in zip(self.__slots__, self._values()))})"


class FileReport(Record):
    """What scanning one file produced."""

    __slots__ = ("path", "findings", "problems")

    def __init__(self, path: str, findings: list[Finding] | None = None, problems: list[Problem] | None = None) -> None:
        self.path = path
        self.findings: list[Finding] = [] if findings is None else findings
        self.problems: list[Problem] = [] if problems is None else problems

    def __reduce__(self):  # pickled as its three fields: the scan cache holds many
        return (FileReport, (self.path, self.findings, self.problems))


class StageResult(Record):
    """One pipeline stage's outcome, as apply reports it."""

    __slots__ = ("stage", "ok", "summary", "details")

    def __init__(self, stage: str, ok: bool, summary: str, details: list[str] | None = None) -> None:
        self.stage = stage  # locate | plan | manifest | git | build | verify | run
        self.ok = ok
        self.summary = summary
        self.details: list[str] = [] if details is None else details


class PortResult(Record):
    """Everything `apply` did and found, serialisable for --format json."""

    __slots__ = ("crate_name", "crate_root", "findings", "stages", "commit", "already_ported", "nothing_to_port")

    def __init__(
        self,
        crate_name: str,
        crate_root: Path,
        findings: list[Finding] | None = None,
        stages: list[StageResult] | None = None,
        commit: str | None = None,
        already_ported: bool = False,
        nothing_to_port: bool = False,
    ) -> None:
        self.crate_name = crate_name
        self.crate_root = crate_root
        self.findings: list[Finding] = [] if findings is None else findings
        self.stages: list[StageResult] = [] if stages is None else stages
        self.commit = commit
        self.already_ported = already_ported  # no change: a port exists and nothing is left to change
        self.nothing_to_port = nothing_to_port  # no change: no port, and nothing apply changes

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.stages)

    @property
    def degraded(self) -> list[Finding]:
        return [f for f in self.findings if f.port is PortStatus.DEGRADED]

    @property
    def manual(self) -> list[Finding]:
        return [f for f in self.findings if f.port is PortStatus.MANUAL]
