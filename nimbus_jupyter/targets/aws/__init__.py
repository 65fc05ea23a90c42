"""The ``aws`` target: the bundled CDK app puts the pipeline on Lambda (layer from manylinux wheels, no Docker).

Modules, each owning one thing:
- ``spec``: the stack spec, the data the CDK app reads (plan is data).
- ``layer``: builds and caches the spaCy dependency layer from manylinux wheels.
- ``package``: assembles the function code (runtime + bundle when it fits) and sizes it against the limits.
- ``cost``: Lambda and API Gateway prices (one dated table) and the estimates made from them.
"""
