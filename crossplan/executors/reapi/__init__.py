"""Remote execution over the Remote Execution API v2 (BuildGrid, Buildbarn, NativeLink...):
settings (no gRPC), channel, CAS, input trees, commands, outputs, and the executor."""
