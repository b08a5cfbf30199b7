"""Each leaf works in a directory of its own, and its results say which files it changed.

`vsm run|up --workspace DIR`: a leaf whose provider runs an agent in a directory (`command`,
`codex`) gets

- `DIR/.vsm-worktrees/<leaf id>`, a `git worktree` of DIR on the branch `vsm/<leaf id>`, when DIR
  is the top of a git work tree (the worktree and its branch are reused on a restart; the folder is
  listed in the repository's `info/exclude` so it never shows as untracked);
- `DIR/<leaf id>` otherwise.

So agents working at once never write into each other's files. The directory is made at the
leaf's first call (on the worker thread that runs it, never on an actor's thread), under a file
lock, because leaves on the multiprocess base make theirs at the same moment.

After each call the leaf lists what changed in its directory: in a worktree the paths whose
`git status` entry appeared, changed or went, plus what commits made since the call began touched
(agents such as aider commit); elsewhere a before/after scan of names, sizes and mtimes, bounded to
`SCAN_LIMIT` entries. The paths (relative, `/`-separated) join the provider's own in the result's
`files_touched`.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
from collections.abc import Mapping
from contextlib import contextmanager

from attrs import evolve

from ..providers import MissingConfig, ModelRequest, ModelResponse, ProviderRequestError

__all__ = ["SCAN_LIMIT", "WORKTREES", "WorkspaceProvider", "check_workspace", "leaf_workspace", "workspace_kind"]

WORKTREES = ".vsm-worktrees"
SCAN_LIMIT = 20_000
GIT_TIMEOUT = 120.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def slug(leaf_id: str) -> str:
    """A leaf id as one path component and one branch-name component."""
    text = _UNSAFE.sub("-", leaf_id).strip(".-") or "leaf"
    return text[:-5] + "-lock" if text.endswith(".lock") else text


def _git(cwd: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(name, None)
    try:
        done = subprocess.run(["git", "-C", cwd, *args], capture_output=True, env=env, timeout=GIT_TIMEOUT,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        if not check:
            return subprocess.CompletedProcess(args, 127, b"", str(error).encode())
        raise ProviderRequestError(f"git {args[0]} in {cwd} failed: {error}") from None
    if check and done.returncode != 0:
        raise ProviderRequestError(f"git {' '.join(args[:2])} in {cwd} failed: "
                                   f"{done.stderr.decode('utf-8', 'replace').strip()[-500:]}")
    return done


def workspace_kind(root: str) -> str:
    """"git" when `root` is the top of a git work tree, else "plain"."""
    done = _git(root, "rev-parse", "--show-toplevel", check=False)
    if done.returncode != 0:
        return "plain"
    top = done.stdout.decode("utf-8", "replace").strip()
    return "git" if top and os.path.realpath(top) == os.path.realpath(root) else "plain"


def check_workspace(root: str) -> tuple[str, str]:
    """The absolute workspace root and its kind; a message (ValueError) when it cannot serve."""
    path = os.path.abspath(root)
    if not os.path.isdir(path):
        raise ValueError(f"--workspace {root}: no such directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"--workspace {root}: not writable")
    kind = workspace_kind(path)
    if kind == "git" and _git(path, "rev-parse", "--verify", "--quiet", "HEAD", check=False).returncode != 0:
        raise ValueError(f"--workspace {root}: the git repository has no commit yet, so no worktree can be "
                         "made of it; commit something first")
    return path, kind


def leaf_workspace(root: str, kind: str, leaf_id: str) -> str:
    """Where a leaf works (see the module docstring); nothing is made here."""
    return os.path.join(root, WORKTREES, slug(leaf_id)) if kind == "git" else os.path.join(root, slug(leaf_id))


def prepare(root: str, kind: str, leaf_id: str) -> str:
    """Make the leaf's directory (a worktree in a repository), or reuse the one there."""
    path = leaf_workspace(root, kind, leaf_id)
    if kind != "git":
        os.makedirs(path, exist_ok=True)
        return path
    with _locked(os.path.join(root, WORKTREES)):
        if os.path.exists(os.path.join(path, ".git")):
            if workspace_kind(path) == "git":
                return path  # a restart: the leaf carries on in its worktree
            raise MissingConfig(f"{path} has a .git entry but is not a git worktree; remove it or use another --workspace")
        if os.path.isdir(path) and os.listdir(path):
            raise MissingConfig(f"{path} exists and is not a git worktree; remove it or use another --workspace")
        _exclude(root)
        _git(root, "worktree", "prune", check=False)  # a worktree whose folder was deleted is still registered
        branch = f"vsm/{slug(leaf_id)}"
        if _git(root, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False).returncode == 0:
            _git(root, "worktree", "add", path, branch)
        else:
            _git(root, "worktree", "add", "-b", branch, path, "HEAD")
    return path


@contextmanager
def _locked(folder: str):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _exclude(root: str) -> None:
    done = _git(root, "rev-parse", "--git-common-dir", check=False)
    if done.returncode != 0:
        return
    common = done.stdout.decode("utf-8", "replace").strip()
    info = os.path.join(common if os.path.isabs(common) else os.path.join(root, common), "info")
    exclude = os.path.join(info, "exclude")
    line = f"/{WORKTREES}/"
    try:
        with open(exclude, encoding="utf-8") as handle:
            if line in handle.read().split("\n"):
                return
    except FileNotFoundError:
        pass
    os.makedirs(info, exist_ok=True)
    with open(exclude, "a", encoding="utf-8") as handle:
        handle.write(f"\n# vsm_actors: the leaves' worktrees\n{line}\n")


# -- what changed ------------------------------------------------------------------------------

Snapshot = tuple[str | None, dict[str, tuple]]


def snapshot(path: str, kind: str) -> Snapshot:
    """(HEAD or None, path -> signature) of a leaf's directory now."""
    if kind == "git":
        head = _git(path, "rev-parse", "--verify", "--quiet", "HEAD", check=False).stdout.decode().strip() or None
        return head, _git_status(path)
    return None, _scan(path)


def changed_files(path: str, kind: str, before: Snapshot) -> tuple[list[str], bool]:
    """Paths that changed since `before` (sorted) and whether a bound cut the listing short."""
    head, after = snapshot(path, kind)
    old_head, old = before
    changed = {p for p, sig in after.items() if old.get(p) != sig} | (old.keys() - after.keys())
    if kind == "git" and head and old_head and head != old_head:
        names = _git(path, "diff", "--name-only", "-z", old_head, head, check=False).stdout
        changed.update(n for n in names.decode("utf-8", "replace").split("\0") if n)
    changed.discard("")
    truncated = len(after) >= SCAN_LIMIT or len(old) >= SCAN_LIMIT
    return sorted(changed), truncated


def _signature(path: str) -> tuple:
    try:
        st = os.lstat(path)
    except OSError:
        return ("gone",)
    return (st.st_mtime_ns, st.st_size, st.st_mode)


def _git_status(path: str) -> dict[str, tuple]:
    out = _git(path, "status", "--porcelain=v1", "-z", "--untracked-files=all", check=False).stdout
    entries: dict[str, tuple] = {}
    parts = out.decode("utf-8", "replace").split("\0")
    i = 0
    while i < len(parts) and len(entries) < SCAN_LIMIT:
        entry = parts[i]
        i += 1
        if len(entry) < 4:
            continue
        code, name = entry[:2], entry[3:]
        entries[name] = (code, *_signature(os.path.join(path, name)))
        if code[0] in "RC" and i < len(parts):  # a rename or copy: its origin follows
            entries[parts[i]] = (code, "origin")
            i += 1
    return entries


def _scan(path: str) -> dict[str, tuple]:
    entries: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in files:
            full = os.path.join(folder, name)
            entries[os.path.relpath(full, path).replace(os.sep, "/")] = _signature(full)
            if len(entries) >= SCAN_LIMIT:
                return entries
    return entries


# -- the provider a leaf calls ------------------------------------------------------------------

class WorkspaceProvider:
    """A provider that runs in one leaf's directory: made at the first call, changes recorded."""

    def __init__(self, inner, root: str, kind: str, leaf_id: str) -> None:
        self.inner, self.root, self.kind, self.leaf_id = inner, root, kind, leaf_id
        self.path = leaf_workspace(root, kind, leaf_id)
        self.name = inner.name
        self.ready = False

    @property
    def blocking(self) -> bool:
        return getattr(self.inner, "blocking", False) is True

    def complete(self, request: ModelRequest) -> ModelResponse:
        if not self.ready:
            prepare(self.root, self.kind, self.leaf_id)
            self.ready = True
        before = snapshot(self.path, self.kind)
        response = self.inner.complete(request)
        files, truncated = changed_files(self.path, self.kind, before)
        raw = dict(response.raw) if isinstance(response.raw, Mapping) else {}
        own = [f for f in raw.get("files_touched", ()) if isinstance(f, str)]
        raw["files_touched"] = sorted({*own, *files})
        raw["workspace"] = self.path
        if truncated:
            raw["workspace_scan_truncated"] = True
        return evolve(response, raw=raw)
