"""The limits an endpoint enforces, taken from AWS so the local target behaves like the cloud one."""

# Lambda's synchronous invocation payload limit, each way (6 MB). API Gateway's own 10 MB is looser.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# What Lambda measures on the way out: the handler's return value as the runtime client serializes it
# (the whole proxy envelope, the body a JSON string inside it), not the body alone.
MAX_RESPONSE_BYTES = 6_291_556
# Texts per request: keeps one request well inside API Gateway's 29 s integration timeout.
MAX_TEXTS_PER_REQUEST = 2_000
# API Gateway REST integration timeout, for clients that pick a request timeout.
API_GATEWAY_TIMEOUT_SECONDS = 29
# Lambda's deployment limit: function code + all layers, unzipped. AWS's "250 MB" is 250 MiB.
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 ** 2  # 262,144,000 bytes
# API Gateway REST: the request line and headers together, at most 10,240 bytes (its 431-style refusal).
MAX_REQUEST_HEAD_BYTES = 10_240
