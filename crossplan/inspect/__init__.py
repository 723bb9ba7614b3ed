"""Looking at plans and stores: plan explain (why a rebuild), plan affected (what changed)."""
