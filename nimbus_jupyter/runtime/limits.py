"""The limits an endpoint enforces, taken from AWS so the local target behaves like the cloud one."""

# Lambda's synchronous invocation payload limit, each way (6 MB). API Gateway's own 10 MB is looser.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# Texts per request: keeps one request well inside API Gateway's 29 s integration timeout.
MAX_TEXTS_PER_REQUEST = 2_000
# API Gateway REST integration timeout, for clients that pick a request timeout.
API_GATEWAY_TIMEOUT_SECONDS = 29
# Lambda's deployment limit: function code + all layers, unzipped. AWS's "250 MB" is 250 MiB.
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 ** 2  # 262,144,000 bytes
