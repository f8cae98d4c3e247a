"""The run machinery: settings, files, one session per invocation, isolated worker
processes, the cache, and the ``rflint report`` command."""
