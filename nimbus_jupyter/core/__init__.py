"""The core: what every layer above shares, with no target, endpoint or face in it.

Errors, paths and atomic files, the typed records and the one registry that stores them, bundles (a
pipeline as a directory with a content hash), plans (values) and their executors, progress events,
the staging directory a run builds in, what operating a deployment shows, and log lines.

The package's layers, each importing only from itself and the layers listed before it (a test,
``tests/test_layers.py``, fails on an import that runs upward or on any import cycle, counting imports
inside functions)::

    runtime  ->  core  ->  endpoint  ->  targets  ->  api  ->  faces  ->  nimbus_jupyter (the facade)

``runtime`` comes first: it is what ships to Lambda (spaCy and the standard library only), and it owns
the bundle format that ``core.bundle`` writes and the runtime reads.
"""
