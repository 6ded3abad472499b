"""The vendored contracts are what they claim: a valid OpenAPI 3.0 document with GitHub's two
operations, and a valid GraphQL SDL with Linear's two mutations."""

from __future__ import annotations

import json

import schemathesis
from graphql import build_schema

from devtools.standins.github import CONTRACT as GITHUB
from devtools.standins.linear import CONTRACT as LINEAR


def test_github_contract_is_an_openapi_document_with_the_two_operations():
    document = json.loads(GITHUB.read_text())
    assert document["openapi"].startswith("3.0")
    schema = schemathesis.openapi.from_dict(document)
    operations = {op.ok().label for op in schema.get_all_operations()}
    assert operations == {
        "POST /repos/{owner}/{repo}/deployments",
        "POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
    }


def test_linear_contract_is_a_schema_with_the_two_mutations():
    schema = build_schema(LINEAR.read_text())
    assert set(schema.mutation_type.fields) == {"attachmentLinkURL", "commentCreate"}
    link = schema.mutation_type.fields["attachmentLinkURL"]
    assert str(link.args["issueId"].type) == "String!"
    assert str(link.args["url"].type) == "String!"
