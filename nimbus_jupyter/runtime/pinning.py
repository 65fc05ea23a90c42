"""Which version a request expects: a batch is pinned to one version of a deployment, and an endpoint
that serves another one refuses the request (409 ``version_changed``) instead of answering with a
different pipeline's results.

The client sends the version number and the bundle's content hash it expects, as headers (they travel
the same way over HTTP, through API Gateway, and inside a ``lambda.invoke`` proxy event); either one
that differs from what this process serves is a refusal. A request without them is answered by
whatever serves (one-off calls, curl). The refusal names what serves now, so the client can say it.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from .contract import ApiError, header

EXPECT_VERSION_HEADER = "x-nimbus-expect-version"
EXPECT_HASH_HEADER = "x-nimbus-expect-hash"
VERSION_CHANGED = "version_changed"


def check_expected(event: Dict[str, Any], version: str, bundle_hash: str) -> None:
    """Raise a 409 when the request expects another version or another bundle than this one."""
    want_version: Optional[str] = header(event, EXPECT_VERSION_HEADER)
    want_hash: Optional[str] = header(event, EXPECT_HASH_HEADER)
    version_differs = want_version is not None and want_version.strip() != str(version)
    hash_differs = want_hash is not None and bool(bundle_hash) and want_hash.strip() != bundle_hash
    if not (version_differs or hash_differs):
        return
    wanted = " ".join(x for x in (f"v{want_version.strip()}" if want_version else "",
                                  f"(hash {want_hash.strip()[:12]})" if want_hash else "") if x)
    raise ApiError(409, VERSION_CHANGED,
                   f"this endpoint serves v{version} (hash {bundle_hash[:12]}), not {wanted}, which the request "
                   "expects: the deployment changed since the request's batch began; nothing was run",
                   extra={"serving": {"version": str(version), "hash": bundle_hash}})
