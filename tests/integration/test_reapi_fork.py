"""A local step started while the REAPI client's gRPC channel is busy (a remote run with
steps that stay local): the step's process must not die in the fork before its exec.
gRPC's fork handlers restart its poller thread in the child, which aborts on the epoll fd
Popen closes or hangs (grpc/grpc#43055, 6% of such children here): executors/reapi turns
them off."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

_SCRIPT = r"""
import sys, threading
from pathlib import Path
import crossplan.executors.reapi  # noqa: F401  (what a remote run imports first)
import grpc
from concurrent import futures
from crossplan.backends.host import run_commands

server = grpc.server(futures.ThreadPoolExecutor(4))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
    "t.T", {"E": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)}),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
channel = grpc.insecure_channel(f"127.0.0.1:{port}")
call = channel.unary_unary("/t.T/E")
stop = threading.Event()

def busy():
    while not stop.is_set():
        call(b"x" * 100, timeout=10)

threads = [threading.Thread(target=busy) for _ in range(4)]
for t in threads:
    t.start()
call(b"warm", timeout=10)
work = Path(sys.argv[1])
failed = 0
for i in range(int(sys.argv[2])):
    log = work / f"{i}.log"
    code = run_commands([("true",)], cwd=work, env={"PATH": "/usr/bin:/bin"}, log=log, step="s")
    if code != 0:
        failed += 1
        print(log.read_text(), file=sys.stderr)
# An orderly shutdown: left running, the server's thread can hang the interpreter's exit
# (its pool refuses new work during shutdown while the busy threads still call it).
stop.set()
for t in threads:
    t.join()
channel.close()
server.stop(None).wait()
print(failed)
"""


def test_steps_started_beside_a_busy_grpc_channel_all_run(tmp_path: Path) -> None:
    # its own process group: a step's child hung in the fork (the bug) is killed with it
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(tmp_path), "200"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)  # ~2 s when it works
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"200 steps beside a busy gRPC channel did not finish in 120 s:\n{err}")
    assert proc.returncode == 0, err[-3000:]
    assert out.split()[-1] == "0", err[-3000:]
