"""Checks of what was built: plan doctor, image tests (docker run per platform), smoke runs."""
