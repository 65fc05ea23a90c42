"""How a client reaches an endpoint: one ``EndpointClient`` over pluggable transports.

``transport``: the ``Transport`` protocol and ``HttpTransport`` (the HTTP contract with the API key).
``invoke``: ``LambdaInvokeTransport`` (the same handler by ``lambda.invoke``). ``client``: health, predict
and JSON routes over any transport. Targets choose the transport for a deployment (``Target.endpoint``);
batch scoring, the smoke test and the sidebar use what they are given.
"""
