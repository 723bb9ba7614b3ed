"""Runner: execute a Plan against the store and the backends; events, results, explain."""
