"""Executing Actions: the executor protocol, the host executor, and the wrappers around it
(local store, remote cache, ELF verification); run events and results."""
