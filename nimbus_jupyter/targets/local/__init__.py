"""The local target: the Lambda handler behind a real HTTP server on 127.0.0.1, no account needed."""
