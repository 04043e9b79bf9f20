"""git for ports: the dirty-tree gate, the port transaction (atomic, recoverable), patch series.

Public API::

    from wasiport import vcs
    vcs.check_clean(root, paths)
    with vcs.PortTransaction(root, branch=vcs.DEFAULT_BRANCH) as txn: ...

Every git command goes through this package; nothing else runs git.
"""
from wasiport.vcs.repo import (
    DEFAULT_BRANCH,
    UPSTREAM_SUBJECT_PREFIX,
    DirtyFile,
    PortTransaction,
    Recovery,
    apply_series,
    check_clean,
    dirty_files,
    export_patches,
    find_repo_root,
    git_error_reason,
    init_with_commit,
    recover_interrupted,
    require_repo,
    series_applied,
    upstream_commit,
)

__all__ = [
    "DEFAULT_BRANCH",
    "UPSTREAM_SUBJECT_PREFIX",
    "DirtyFile",
    "PortTransaction",
    "Recovery",
    "apply_series",
    "check_clean",
    "dirty_files",
    "export_patches",
    "find_repo_root",
    "git_error_reason",
    "init_with_commit",
    "recover_interrupted",
    "require_repo",
    "series_applied",
    "upstream_commit",
]
