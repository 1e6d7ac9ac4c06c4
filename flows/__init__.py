"""The import pipeline: steps, sources, inspection, conversion and stores.

Nothing here knows about RabbitMQ, processes or the command line: the caller (the daemon in
``worker/`` or the embedded ``imgworker import``) hands a flow its collaborators.
"""
