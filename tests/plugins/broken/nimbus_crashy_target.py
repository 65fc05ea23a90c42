"""A target plugin that fails to import (a dependency it needs is not installed)."""
import nimbus_some_missing_dependency  # noqa: F401


class CrashyTarget:
    name = "crashy"
