"""The ``imgworker`` commands, one module per family, each imported only when it is used.

:mod:`worker.commands` is the entry point and the registry; :mod:`worker.cli.env` is what
every command gets. A command module imports only click and light modules at the top and the
work (settings, records, the flow, the broker) inside its functions.
"""
