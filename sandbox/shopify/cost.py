"""Requested query cost, computed the way Shopify documents it.

A connection costs ``2 + first × (cost of one node)``, an object 1, a scalar or enum 0, a
mutation 10. A list of objects that is not a connection (``quantities(names: [...])``) counts
one object per requested name, or one when the size is unknown. ``pageInfo``, ``edges`` and
``nodes`` are part of the connection's 2 points.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    value_from_ast_untyped,
)

MUTATION_COST = 10


def _unwrap(t: Any) -> Any:
    while isinstance(t, GraphQLNonNull):
        t = t.of_type
    return t


def requested_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any] | None = None,
) -> int:
    variables = variables or {}
    if operation.operation.value == "mutation":
        return MUTATION_COST * max(1, len(operation.selection_set.selections))
    root = schema.query_type
    assert root is not None
    return _selection_cost(schema, root, operation.selection_set, fragments, variables)


def _arg(field: FieldNode, name: str, variables: dict[str, Any]) -> Any:
    for arg in field.arguments or ():
        if arg.name.value == name:
            return value_from_ast_untyped(arg.value, variables)
    return None


def _fields(
    selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode]
) -> list[FieldNode]:
    out: list[FieldNode] = []
    for sel in selection_set.selections if selection_set else ():
        if isinstance(sel, FieldNode):
            out.append(sel)
        elif isinstance(sel, InlineFragmentNode):
            out += _fields(sel.selection_set, fragments)
        elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments:
            out += _fields(fragments[sel.name.value].selection_set, fragments)
    return out


def _selection_cost(
    schema: GraphQLSchema,
    parent: Any,
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> int:
    total = 0
    for field in _fields(selection_set, fragments):
        name = field.name.value
        if name.startswith("__") or not hasattr(parent, "fields") or name not in parent.fields:
            continue
        ftype = _unwrap(parent.fields[name].type)
        named = get_named_type(ftype)
        if is_leaf_type(named):
            continue
        if named.name.endswith("Connection") and isinstance(named, GraphQLObjectType):
            first = _arg(field, "first", variables) or _arg(field, "last", variables) or 0
            node_type = get_named_type(named.fields["nodes"].type) if "nodes" in named.fields else None
            per_node = 0
            for sub in _fields(field.selection_set, fragments):
                if sub.name.value == "nodes" and node_type is not None:
                    per_node = max(
                        per_node,
                        1 + _selection_cost(schema, node_type, sub.selection_set, fragments, variables),
                    )
                elif sub.name.value == "edges" and node_type is not None:
                    for edge_field in _fields(sub.selection_set, fragments):
                        if edge_field.name.value == "node":
                            per_node = max(
                                per_node,
                                1
                                + _selection_cost(
                                    schema, node_type, edge_field.selection_set, fragments, variables
                                ),
                            )
            total += 2 + int(first) * per_node
            continue
        child = 1 + _selection_cost(schema, named, field.selection_set, fragments, variables)
        if isinstance(ftype, GraphQLList):
            names = _arg(field, "names", variables)
            child *= len(names) if isinstance(names, list) and names else 1
        total += child
    return total
