"""Schemathesis hooks for gatehouse's dev server (SCHEMATHESIS_HOOKS=hooks).

The dev server checks SigV4 on the AWS_IAM routes as API Gateway does. An
auth provider marks their generated calls as authenticated; `before_call`
then signs each one, over its final body, with the dev server's development
credentials (AWS's documentation example keys). Schemathesis's
`ignored_auth` probes drop or replace that credential and go out unsigned,
so the server must refuse them.
"""

import schemathesis
from requests_aws4auth import AWS4Auth

IAM_PATHS = "^/guard/(check|report)$"
MARKER = "sign-me-with-the-dev-credentials"
DEV_CREDENTIALS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


@schemathesis.auth(refresh_interval=None).apply_to(path_regex=IAM_PATHS)
class DevSigV4:
    def get(self, case, ctx):
        return MARKER

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = data


@schemathesis.hook
def before_call(context, case, kwargs):
    if (case.headers or {}).get("Authorization") == MARKER:
        # requests calls this after the body is serialised; it replaces the
        # marker with the real Authorization header.
        kwargs["auth"] = AWS4Auth(*DEV_CREDENTIALS, "ap-east-1", "execute-api")
