#!/usr/bin/env python3
"""The SAM transform of template.yaml, offline, as `sam deploy` runs it first.

Usage: sam_transform.py [template.yaml] > transformed.json

Prints the CloudFormation template the transform produces, or every error
it finds (exit 1). Local CodeUri paths are replaced by S3 URIs as
`sam validate` does; no AWS credentials or network are needed (the template
names no managed policy, so the policy map is never asked for).
`tests/e2e/template.rs` reads its output; `scripts/test.sh` runs it through
the tools virtualenv, which has samtranslator (from aws-sam-cli).
"""

import json
import os
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """A policy loader that fails loudly rather than calling IAM."""

    def load(self):
        raise SystemExit("sam_transform.py: the template names a managed policy; "
                         "the offline transform cannot resolve it")


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = f"s3://bucket/{name}.zip"
    # The pseudo parameters (AWS::Region …) need a region, never a call.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    try:
        transformed = transform(template, {}, NoManagedPolicies())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"sam_transform.py: {cause.message}", file=sys.stderr)
        sys.exit(1)
    json.dump(transformed, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
