"""Pre-flight: everything a deploy to AWS needs, checked before anything is created.

Each check that fails names what is missing and the one command that fixes it. The only thing
pre-flight changes on its own is installing the pinned CDK CLI into the package's cache (no AWS
resource); bootstrapping the account is done by the deploy, with a line in the widget.

What it finds goes into the plan as data (``PreflightFacts``: account, region, identity, CLI path,
bootstrapped), so applying the plan needs nothing else. For a dry run (``lenient``) a check that fails
is a fact too, "unknown: no credentials (...)", and the plan is still made.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from ...core.errors import UserInputError
from .aws_client import AwsClient, Identity, make_session
from .cdk_cli import ensure_cli, require_node

Line = Callable[[str], None]


@dataclass(frozen=True)
class PreflightFacts:
    """What pre-flight found, as plain data (a plan's ``facts``); None where it could not be found."""

    profile: Optional[str]
    region: Optional[str]
    account: Optional[str] = None
    identity_arn: Optional[str] = None
    node: Optional[str] = None
    cli: Optional[str] = None  # the pinned CDK CLI's path
    bootstrapped: Optional[bool] = None
    unknown: str = ""  # why some facts are missing: "no credentials: ..." (only in a dry run's plan)

    @property
    def complete(self) -> bool:
        return not self.unknown and None not in (self.region, self.account, self.identity_arn, self.cli, self.bootstrapped)

    def text(self) -> str:
        if self.account is None:
            return f"unknown: {self.unknown}"
        text = (f"account {self.account} in {self.region} as {self.identity_arn}; node {self.node}; "
                f"CDK {'bootstrapped' if self.bootstrapped else 'not bootstrapped yet'}")
        return f"{text}; unknown: {self.unknown}" if self.unknown else text

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "PreflightFacts":
        return cls(**data)


@dataclass
class Preflight:
    client: AwsClient
    identity: Identity
    cli: str
    node: str
    bootstrapped: bool
    profile: Optional[str]

    def facts(self) -> PreflightFacts:
        return PreflightFacts(self.profile, self.identity.region, self.identity.account, self.identity.arn,
                              self.node, self.cli, self.bootstrapped)

    def text(self) -> str:
        return self.facts().text()


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


def read_preflight(profile: Optional[str], region: Optional[str], on_line: Line = lambda _l: None,
                   lenient: bool = False) -> Tuple[PreflightFacts, Optional[AwsClient]]:
    """``run_preflight`` as facts (and the client, when there are credentials). ``lenient`` (a dry run):
    a failed check is recorded as unknown instead of raised, and the others still run."""
    if not lenient:
        found = run_preflight(profile, region, on_line)
        return found.facts(), found.client
    unknown: List[str] = []
    client, identity, node, cli, bootstrapped = None, None, None, None, None
    try:
        client = AwsClient(resolve_session(profile, region))
        identity = who_am_i(client, profile)
        bootstrapped = client.bootstrap_version() is not None
    except UserInputError as exc:
        client = None
        unknown.append(_short(exc.what))
    except Exception as exc:  # AWS answered something unexpected: the plan says so
        client = None
        unknown.append(f"AWS could not be asked ({type(exc).__name__}: {str(exc)[:120]})")
    try:
        node = require_node()
        cli = ensure_cli(on_line)
    except UserInputError as exc:
        unknown.append(_short(exc.what))
    facts = PreflightFacts(profile, identity.region if identity else region, identity.account if identity else None,
                           identity.arn if identity else None, node, cli, bootstrapped, "; ".join(unknown))
    return facts, client


def _short(what: str) -> str:
    """"no AWS credentials found (looked in ...)" reads in a plan as "no credentials (...)"."""
    return what.replace("no AWS credentials found", "no credentials", 1)
