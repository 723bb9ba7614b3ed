"""Running a plan: the scheduler orders and parallelises nodes; one Executor runs each."""
