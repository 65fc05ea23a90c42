"""Pre-flight: everything a deploy to AWS needs, checked before anything is created.

Each check that fails names what is missing and the one command that fixes it. The only thing
pre-flight changes on its own is installing the pinned CDK CLI into the package's cache (no AWS
resource); bootstrapping the account is done by the deploy, with a line in the widget.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from ...core.errors import UserInputError
from .aws_client import AwsClient, Identity, make_session
from .cdk_cli import ensure_cli, require_node

Line = Callable[[str], None]


@dataclass
class Preflight:
    client: AwsClient
    identity: Identity
    cli: str
    node: str
    bootstrapped: bool
    profile: Optional[str]

    def text(self) -> str:
        return (f"account {self.identity.account} in {self.identity.region} as {self.identity.arn}; "
                f"node {self.node}; CDK {'bootstrapped' if self.bootstrapped else 'not bootstrapped yet'}")


def resolve_session(profile: Optional[str], region: Optional[str]) -> Any:
    """A session with credentials and a region, or the error that says how to get them."""
    from botocore.exceptions import BotoCoreError

    session = make_session(profile, region)
    where = f"profile {profile!r}" if profile else "the environment, ~/.aws or SSO"
    try:
        credentials = session.get_credentials()
    except BotoCoreError as exc:  # e.g. an SSO profile whose token expired
        raise UserInputError(f"the AWS credentials from {where} could not be loaded ({exc})",
                             f"sign in again: aws sso login{f' --profile {profile}' if profile else ''}", where="pre-flight")
    if credentials is None:
        raise UserInputError(f"no AWS credentials found (looked in {where})",
                             "run: aws configure  (or aws configure sso), or pass --profile NAME", where="pre-flight")
    if not session.region_name:
        raise UserInputError("no AWS region is set",
                             "pass --region (e.g. --region eu-west-1), or run: aws configure set region eu-west-1",
                             where="pre-flight")
    return session


def who_am_i(client: AwsClient, profile: Optional[str]) -> Identity:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return client.identity()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
            todo = f"refresh them: aws sso login{f' --profile {profile}' if profile else ''} (or new access keys)"
        else:
            todo = "check the access key with: aws sts get-caller-identity"
        raise UserInputError(f"AWS refused the credentials ({code})", todo, where="pre-flight")
    except BotoCoreError as exc:
        raise UserInputError(f"AWS could not be reached to check the credentials ({type(exc).__name__}: {exc})",
                             "check the network connection (and AWS_ENDPOINT_URL, if set)", where="pre-flight")


def run_preflight(profile: Optional[str], region: Optional[str], on_line: Line = lambda _l: None) -> Preflight:
    """Credentials and region, Node.js and the pinned CDK CLI, and whether the account is bootstrapped."""
    session = resolve_session(profile, region)
    client = AwsClient(session)
    identity = who_am_i(client, profile)
    node = require_node()
    cli = ensure_cli(on_line)
    bootstrapped = client.bootstrap_version() is not None
    return Preflight(client, identity, cli, node, bootstrapped, profile)
