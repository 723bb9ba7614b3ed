"""The no-op memo: a `plan run` that found everything cached is replayed, before Typer, the
recipe models or the planner load, while nothing it depended on has changed.

A memo is keyed by the exact argv (never parsed here: the Typer app stays the one CLI
definition), the working directory, the environment, the interpreter and crossplan's own
code and installed distributions. It holds what the run depended on, as stat signatures
taken once the run ended but only of things untouched since ``RACY_NS`` before the process
started (git's racy-clean rule, as the stat memo): the plan files, every input file and
directory the input trees walked, the sandbox binary, the store blobs of every node, and
each node key's ``store_time`` in the store index. Any difference, or any error reading it,
is a miss: the normal run, which re-plans from the files' bytes. What the memo keeps to
print is the run's own output (its total time replaced by the replay's). A memoised
`--push` whose images were all up to date also asks each tag once (one GET, no write) that
it still names the same index; so does a run with images on registry bases, of each base's
tag (or plan.lock's digest: still there), and of none named by digest in the recipe.
``CROSSPLAN_NOOP_MEMO=off`` turns it off. Written by cli/noop_record.py."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import time

TYPE_CHECKING = False  # typing is not imported: this module runs before anything else
if TYPE_CHECKING:
    import sqlite3

__all__ = ["ARGV", "FORMAT", "RACY_NS", "SECONDS_MARK", "STARTED_NS", "code_signature",
           "enabled", "index_times", "memo_path", "replay"]

FORMAT = "crossplan-noop-1"
RACY_NS = 2_000_000_000  # as probe/digest.py's stat memo
# Set by main() for a `plan run` the memo did not answer: the argv to key a new memo by and
# when the process started (nothing modified after it, or just before, is memoised).
ARGV: list[str] | None = None
STARTED_NS = time.time_ns()
# The environment the process was started with: what a memo is keyed by, also when it is
# written at the end of a run during which a module set a variable of its own (e.g.
# executors/reapi's GRPC_VERBOSITY default), which would key it where no replay looks.
STARTED_ENV = dict(os.environ)
# Shell bookkeeping that says nothing about a run.
_VOLATILE_ENV = frozenset({"_", "OLDPWD", "SHLVL", "PWD"})
# The run's own total in the memoised text ("5 cached in 0.42s"), replaced by the replay's.
SECONDS_MARK = "\0seconds\0"


def enabled(environ: dict[str, str] | os._Environ[str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("CROSSPLAN_NOOP_MEMO", "").lower() not in ("0", "off", "no", "false")


def code_signature() -> list[object]:
    """crossplan's own files (path, mtime, size) and the installed distributions."""
    files: list[object] = []
    stack = [os.path.dirname(os.path.dirname(os.path.realpath(__file__)))]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    if e.name != "__pycache__":
                        stack.append(e.path)
                elif e.name.endswith(".py"):
                    st = e.stat()
                    files.append([e.path, st.st_mtime_ns, st.st_size])
    dists: list[str] = []
    for entry in sys.path:
        if entry.endswith("-packages") and os.path.isdir(entry):
            dists += [n for n in os.listdir(entry) if n.endswith(".dist-info")]
    files.sort(key=str)
    return [files, sorted(dists)]


def memo_path(argv: list[str], environ: dict[str, str] | os._Environ[str] | None = None) -> str:
    """Where the memo of ``plan <argv>`` run here, now, lives (in the default store)."""
    env = STARTED_ENV if environ is None else environ
    tty = sys.stdout.isatty()
    width = os.get_terminal_size(sys.stdout.fileno()).columns if tty else None
    ident = [FORMAT, os.path.realpath(sys.executable), sys.prefix, sys.version, os.getcwd(),
             argv, tty, width, sorted((k, v) for k, v in env.items() if k not in _VOLATILE_ENV),
             code_signature()]
    key = hashlib.sha256(json.dumps(ident).encode("utf-8", "surrogateescape")).hexdigest()
    store = env.get("CROSSPLAN_CACHE_DIR") or os.path.join(  # as cache.store.default_store_dir
        env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "crossplan")
    return os.path.join(store, "noop", f"{key}.json")


def replay(argv: list[str]) -> bool:
    """Print the memoised output of ``plan <argv>`` if nothing it depended on changed."""
    if not enabled():
        return False
    t0 = time.perf_counter()
    try:
        with open(memo_path(argv), "rb") as f:
            memo = json.loads(f.read())
        if memo.get("format") != FORMAT or not _unchanged(memo):
            return False
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return False
    sys.stdout.write(_output(memo, time.perf_counter() - t0))
    sys.stdout.flush()
    return True


def _output(memo: dict[str, object], seconds: float) -> str:
    result = memo.get("json")
    if isinstance(result, dict):
        result["seconds"] = round(seconds, 3)
        return json.dumps(result, indent=2) + "\n"
    return str(memo["text"]).replace(SECONDS_MARK, f"{seconds:.2f}", 1)


def _same(sig: list[object], st: os.stat_result) -> bool:
    return sig == [st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode]


def _unchanged(memo: dict[str, object]) -> bool:
    for path, *sig in memo["dirs"]:  # type: ignore[attr-defined]
        if not _same(sig, os.stat(path)):
            return False
    for path, *sig in memo["files"]:  # type: ignore[attr-defined]
        if not _same(sig, os.lstat(path)):
            return False
    for path in memo["absent"]:  # type: ignore[attr-defined]
        if os.path.lexists(path):
            return False
    store = str(memo["store"])
    lock = os.open(os.path.join(store, "locks", "gc.lock"), os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_SH)  # gc holds it exclusively while it deletes
        for path, *sig in memo["blobs"]:  # type: ignore[attr-defined]
            if not _same(sig, os.lstat(os.path.join(store, "blobs", path[:2], path))):
                return False
        if index_times(store, list(memo["keys"])) != memo["keys"]:  # type: ignore[call-overload]
            return False
    finally:
        os.close(lock)
    return all(_still_names(*ref) for ref in memo.get("refs", ()))  # type: ignore[attr-defined]


def _still_names(scheme: str, host: str, path: str, accept: str, digest: str) -> bool:
    """One GET of a pushed tag, or a base's tag or locked digest: it still names the same
    bytes (what `--push` checks before writing anything; the index the image's key was made
    with). A registry that wants credentials, or any failure: a miss."""
    import http.client

    conn_type = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    conn = conn_type(host, timeout=10)
    try:
        conn.request("GET", path, headers={"Accept": accept})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status == 200 and "sha256:" + hashlib.sha256(body).hexdigest() == digest
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def index_times(store: str, keys: list[str]) -> dict[str, float]:
    """Each key's ``store_time`` in the store's index (diskcache's SQLite table), read in
    one read-only transaction: a key removed or published again reads differently. A
    store SQLite cannot read is an OSError. (sqlite3 is imported here: a memo that misses
    on a changed file, the edit loop, never pays for it.)"""
    import sqlite3

    db = os.path.join(store, "index", "cache.db").replace("%", "%25").replace("?", "%3f")
    try:
        return _index_times(sqlite3.connect(f"file:{db.replace('#', '%23')}?mode=ro", uri=True),
                            keys)
    except sqlite3.Error as exc:
        raise OSError(f"{db}: {exc}") from exc


def _index_times(con: sqlite3.Connection, keys: list[str]) -> dict[str, float]:
    try:
        found: dict[str, float] = {}
        with con:
            for i in range(0, len(keys), 500):
                part = keys[i:i + 500]
                rows = con.execute(
                    "SELECT key, store_time FROM Cache WHERE raw = 1 AND expire_time IS NULL"
                    f" AND key IN ({','.join('?' * len(part))})", part)
                found.update((str(k), float(t)) for k, t in rows)
        return found
    finally:
        con.close()
