"""Remote execution over the Remote Execution API v2 (BuildGrid, Buildbarn, NativeLink...):
settings (no gRPC), channel, CAS, input trees, commands, outputs, and the executor."""

import os

# gRPC's C core logs reconnects (GOAWAY) and fork notices on stderr at INFO level; crossplan
# reports what matters itself. Set before any submodule imports grpc.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
# Its fork handlers restart its poller thread in a forked child, which aborts when Popen
# closes the child's descriptors before exec (grpc/grpc#43055): a local step started while
# a remote run's channel is busy died with SIGABRT (6% of such forks, tests/integration/
# test_reapi_fork.py). crossplan forks only to exec.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
