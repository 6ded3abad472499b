"""Trim Linear's published GraphQL schema (linear/linear, packages/sdk/src/schema.graphql) to
what staging-ops sends: the two mutations with their arguments and input types kept whole
(those are what a request is validated against), the payloads they return with a few fields,
and one Query field (a schema must have a query type). Run by hand when the schema is updated:

    python -m devtools.contracts.trim_linear FULL_SCHEMA COMMIT > devtools/contracts/linear.graphql
"""

from __future__ import annotations

import sys

from graphql import (
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    get_named_type,
    print_schema,
)

MUTATIONS = ("attachmentLinkURL", "commentCreate")
QUERIES = ("issue",)
# The output fields kept per type (the rest of each type is not read by staging-ops).
OUTPUT_FIELDS = {
    "AttachmentPayload": ("attachment", "lastSyncId", "success"),
    "CommentPayload": ("comment", "lastSyncId", "success"),
    "Attachment": ("id", "title", "subtitle", "url", "createdAt", "updatedAt", "issue"),
    "Comment": ("id", "body", "url", "createdAt", "issue"),
    "Issue": ("id", "identifier", "title", "url"),
}


def trim(full: GraphQLSchema) -> GraphQLSchema:
    built: dict[str, object] = {}

    def wrap(kind: object) -> object:
        if isinstance(kind, GraphQLNonNull):
            return GraphQLNonNull(wrap(kind.of_type))
        if isinstance(kind, GraphQLList):
            return GraphQLList(wrap(kind.of_type))
        return named(get_named_type(kind))

    def named(kind: object) -> object:
        name = kind.name
        if name in built:
            return built[name]
        if isinstance(kind, GraphQLInputObjectType):
            copy = GraphQLInputObjectType(name, {}, description=kind.description)
            built[name] = copy
            for field_name, field in kind.fields.items():
                field.type = wrap(field.type)
                copy.fields[field_name] = field
            return copy
        if isinstance(kind, GraphQLObjectType):
            keep = OUTPUT_FIELDS[name]
            copy = GraphQLObjectType(name, {}, description=kind.description)
            built[name] = copy
            for field_name in keep:
                copy.fields[field_name] = field_of(kind.fields[field_name])
            return copy
        built[name] = kind  # scalars and enums as they are
        return kind

    def field_of(field: GraphQLField) -> GraphQLField:
        args = {}
        for arg_name, arg in field.args.items():
            arg.type = wrap(arg.type)
            args[arg_name] = arg
        return GraphQLField(
            wrap(field.type),
            args=args,
            description=field.description,
            deprecation_reason=field.deprecation_reason,
        )

    mutation = GraphQLObjectType(
        "Mutation", {name: field_of(full.mutation_type.fields[name]) for name in MUTATIONS}
    )
    query = GraphQLObjectType(
        "Query", {name: field_of(full.query_type.fields[name]) for name in QUERIES}
    )
    return GraphQLSchema(query=query, mutation=mutation)


def main() -> None:
    source, commit = sys.argv[1], sys.argv[2]
    with open(source, encoding="utf-8") as handle:
        full = build_schema(handle.read())
    print(f"# Trimmed from linear/linear@{commit} packages/sdk/src/schema.graphql")
    print("# by devtools/contracts/trim_linear.py: the mutations staging-ops sends, whole.")
    print(print_schema(trim(full)))


if __name__ == "__main__":
    main()
