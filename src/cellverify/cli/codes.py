"""Exit codes of the ``cellverify`` command: 0 success, 1 a check failed,
2 a usage or configuration error (or no verdict could be reached)."""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
