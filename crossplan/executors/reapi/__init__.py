"""Remote execution over the Remote Execution API v2 (BuildGrid, Buildbarn, NativeLink...):
settings (no gRPC), channel, CAS, input trees, commands, outputs, and the executor."""

import os

# gRPC's C core logs reconnects (GOAWAY) and fork notices on stderr at INFO level; crossplan
# reports what matters itself. Set before any submodule imports grpc.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
