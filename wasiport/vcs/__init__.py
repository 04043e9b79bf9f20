"""git for ports: the dirty-tree gate, the port transaction (atomic, recoverable), patch series.

Public API::

    from wasiport import vcs
    vcs.check_clean(root, paths)
    with vcs.PortTransaction(root, branch=vcs.DEFAULT_BRANCH) as txn: ...

Every git command goes through this package; nothing else runs git.

Modules: git.py (running git, repositories, identity, branches), gate.py (the
clean-tree gate), transaction.py (the port transaction and its recovery),
signals.py (SIGTERM/SIGINT around it), lock.py (one writer per repository or
project), patches.py (patch series).
"""
from wasiport.vcs.gate import DirtyFile, check_clean, dirty_files, refuse_dirty_edits
from wasiport.vcs.git import (
    DEFAULT_BRANCH,
    UPSTREAM_SUBJECT_PREFIX,
    find_repo_root,
    git_error_reason,
    init_with_commit,
    require_repo,
    upstream_commit,
)
from wasiport.vcs.lock import Acquired, Holder, LockBusy, project_lock, repository_lock
from wasiport.vcs.patches import apply_series, export_patches, series_applied
from wasiport.vcs.transaction import PortTransaction, Recovery, RestoreReport, recover_interrupted

__all__ = [
    "Acquired",
    "DEFAULT_BRANCH",
    "DirtyFile",
    "Holder",
    "LockBusy",
    "PortTransaction",
    "Recovery",
    "RestoreReport",
    "UPSTREAM_SUBJECT_PREFIX",
    "apply_series",
    "check_clean",
    "dirty_files",
    "export_patches",
    "find_repo_root",
    "git_error_reason",
    "init_with_commit",
    "project_lock",
    "recover_interrupted",
    "refuse_dirty_edits",
    "repository_lock",
    "require_repo",
    "series_applied",
    "upstream_commit",
]
