"""POST /guard/check from a Python back end, signed with SigV4 by botocore
(the route is AWS_IAM-authorized in template.yaml). docs/guard.md shows this
file; the test suite runs it against the dev server."""

import json
import urllib.error
import urllib.request

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest


def check_pass(api, region, scene, pass_token=None, device_id=None, user_ip=None, credentials=None):
    """Admitted: {"errCode": 0, "level", "pass"?}; refused (HTTP 403):
    {"errCode": "guard-captcha-required" | "guard-tencent-required" |
    "guard-pass-invalid"}. `credentials` default to botocore's chain (the
    back end's role)."""
    body = json.dumps({"scene": scene, "passToken": pass_token, "deviceId": device_id, "userIp": user_ip})
    request = AWSRequest(method="POST", url=api.rstrip("/") + "/guard/check", data=body,
                         headers={"content-type": "application/json"})
    credentials = credentials or botocore.session.get_session().get_credentials()
    SigV4Auth(credentials, "execute-api", region).add_auth(request)
    prepared = urllib.request.Request(request.url, data=body.encode(), method="POST",
                                      headers=dict(request.headers))
    try:
        with urllib.request.urlopen(prepared) as response:
            return {"status": response.status, **json.load(response)}
    except urllib.error.HTTPError as refused:
        return {"status": refused.code, **json.load(refused)}
