"""Regenerate ``schema.graphql`` (the sandbox's own small schema) from Shopify's 2025-01 schema.

Run by hand when the adapter needs a new field::

    .venv/bin/python -m sandbox.shopify.make_schema

Only the listed types/fields/arguments are copied, with their exact types, so the sandbox
accepts a subset of what Shopify accepts. ``EXTENSIONS`` adds fields of newer API versions
(listed in tests/shopify/test_sandbox_schema.py as known differences).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    build_client_schema,
    get_named_type,
)

SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "shopify" / "admin_schema_2025-01.json.gz"
OUT = Path(__file__).resolve().parent / "schema.graphql"

PAGING = ["first", "after", "last", "before", "reverse"]
CONN = ["pageInfo", "nodes", "edges"]
EDGE = ["node", "cursor"]

SPEC: dict[str, list[str]] = {
    "QueryRoot": [
        "orders",
        "order",
        "products",
        "product",
        "productVariants",
        "inventoryItem",
        "inventoryItems",
        "ordersCount",
        "shop",
        "currentBulkOperation",
        "node",
    ],
    "Mutation": [
        "webhookSubscriptionCreate",
        "productVariantsBulkUpdate",
        "metafieldsSet",
        "metafieldsDelete",
        "tagsAdd",
        "tagsRemove",
        "bulkOperationRunQuery",
        "fulfillmentCreate",
        "refundCreate",
    ],
    "Node": ["id"],
    "PageInfo": ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"],
    "Order": [
        "id",
        "legacyResourceId",
        "name",
        "createdAt",
        "updatedAt",
        "cancelledAt",
        "closedAt",
        "email",
        "currencyCode",
        "tags",
        "note",
        "displayFinancialStatus",
        "displayFulfillmentStatus",
        "customer",
        "shippingAddress",
        "lineItems",
        "metafield",
        "fulfillmentOrders",
        "refunds",
        "suggestedRefund",
        "totalRefundedSet",
        "transactions",
    ],
    "OrderConnection": CONN,
    "OrderEdge": EDGE,
    "LineItem": [
        "id",
        "title",
        "name",
        "sku",
        "quantity",
        "currentQuantity",
        "unfulfilledQuantity",
        "originalUnitPriceSet",
        "variant",
        "product",
    ],
    "LineItemConnection": CONN,
    "LineItemEdge": EDGE,
    "MoneyBag": ["shopMoney", "presentmentMoney"],
    "MoneyV2": ["amount", "currencyCode"],
    "Customer": ["id", "displayName", "firstName", "lastName"],
    "MailingAddress": [
        "name",
        "firstName",
        "lastName",
        "company",
        "address1",
        "address2",
        "city",
        "province",
        "provinceCode",
        "zip",
        "countryCodeV2",
        "phone",
    ],
    "ProductVariant": [
        "id",
        "legacyResourceId",
        "title",
        "displayName",
        "sku",
        "inventoryPolicy",
        "price",
        "updatedAt",
        "inventoryQuantity",
        "product",
        "inventoryItem",
        "metafield",
    ],
    "ProductVariantConnection": CONN,
    "ProductVariantEdge": EDGE,
    "Product": ["id", "title", "handle", "status", "vendor", "tags", "updatedAt", "variants"],
    "ProductConnection": CONN,
    "ProductEdge": EDGE,
    "InventoryItem": ["id", "sku", "tracked", "updatedAt", "inventoryLevels"],
    "InventoryItemConnection": CONN,
    "InventoryItemEdge": EDGE,
    "Count": ["count", "precision"],
    "Shop": ["id", "name", "myshopifyDomain", "ianaTimezone", "currencyCode"],
    "InventoryLevelConnection": CONN,
    "InventoryLevelEdge": EDGE,
    "InventoryLevel": ["id", "updatedAt", "location", "quantities", "item"],
    "InventoryQuantity": ["name", "quantity"],
    "Location": ["id", "name"],
    "Metafield": ["id", "namespace", "key", "value", "type"],
    "BulkOperation": [
        "id",
        "status",
        "errorCode",
        "objectCount",
        "rootObjectCount",
        "url",
        "partialDataUrl",
        "createdAt",
        "completedAt",
        "query",
        "type",
        "fileSize",
    ],
    "WebhookSubscription": ["id", "topic"],
    "UserError": ["field", "message"],
    "WebhookSubscriptionCreatePayload": ["webhookSubscription", "userErrors"],
    "ProductVariantsBulkUpdatePayload": ["productVariants", "userErrors"],
    "ProductVariantsBulkUpdateUserError": ["field", "message", "code"],
    "MetafieldsSetPayload": ["metafields", "userErrors"],
    "MetafieldsSetUserError": ["field", "message", "code", "elementIndex"],
    "MetafieldsDeletePayload": ["deletedMetafields", "userErrors"],
    "MetafieldIdentifier": ["ownerId", "namespace", "key"],
    "TagsAddPayload": ["node", "userErrors"],
    "TagsRemovePayload": ["node", "userErrors"],
    "BulkOperationRunQueryPayload": ["bulkOperation", "userErrors"],
    "BulkOperationUserError": ["field", "message", "code"],
    "FulfillmentOrder": ["id", "status", "lineItems"],
    "FulfillmentOrderConnection": CONN,
    "FulfillmentOrderEdge": EDGE,
    "FulfillmentOrderLineItem": ["id", "remainingQuantity", "totalQuantity", "lineItem"],
    "FulfillmentOrderLineItemConnection": CONN,
    "FulfillmentOrderLineItemEdge": EDGE,
    "Fulfillment": ["id", "status", "trackingInfo"],
    "FulfillmentTrackingInfo": ["company", "number", "url"],
    "FulfillmentCreatePayload": ["fulfillment", "userErrors"],
    "Refund": ["id", "note", "createdAt", "totalRefundedSet", "refundLineItems", "transactions"],
    "OrderTransaction": ["id", "kind", "status", "gateway", "amountSet", "createdAt", "parentTransaction"],
    "OrderTransactionConnection": CONN,
    "OrderTransactionEdge": EDGE,
    "SuggestedRefund": ["amountSet", "subtotalSet", "totalTaxSet", "maximumRefundableSet", "refundLineItems",
                        "suggestedTransactions"],
    "SuggestedOrderTransaction": ["kind", "gateway", "amountSet", "maximumRefundableSet", "parentTransaction"],
    "RefundLineItem": ["lineItem", "quantity", "restockType"],
    "RefundLineItemConnection": CONN,
    "RefundLineItemEdge": EDGE,
    "RefundCreatePayload": ["order", "refund", "userErrors"],
    # input objects: the fields the adapter sends
    "WebhookSubscriptionInput": ["callbackUrl", "format", "includeFields", "filter", "metafieldNamespaces"],
    "ProductVariantsBulkInput": ["id", "inventoryPolicy", "price"],
    "MetafieldsSetInput": ["ownerId", "namespace", "key", "value", "type", "compareDigest"],
    "MetafieldIdentifierInput": ["ownerId", "namespace", "key"],
    "FulfillmentInput": ["trackingInfo", "notifyCustomer", "lineItemsByFulfillmentOrder"],
    "FulfillmentOrderLineItemsInput": ["fulfillmentOrderId", "fulfillmentOrderLineItems"],
    "FulfillmentOrderLineItemInput": ["id", "quantity"],
    "FulfillmentTrackingInput": ["number", "url", "company"],
    "RefundInput": ["orderId", "note", "notify", "refundLineItems", "transactions"],
    "OrderTransactionInput": ["amount", "gateway", "kind", "orderId", "parentId"],
    "RefundLineItemInput": ["lineItemId", "quantity", "restockType", "locationId"],
}
ARGS: dict[str, list[str]] = {
    "QueryRoot.orders": PAGING + ["sortKey", "query"],
    "QueryRoot.productVariants": PAGING + ["sortKey", "query"],
    "Order.lineItems": PAGING,
    "Order.fulfillmentOrders": PAGING + ["displayable"],
    "QueryRoot.products": PAGING + ["sortKey", "query"],
    "Product.variants": PAGING,
    "FulfillmentOrder.lineItems": PAGING,
    "InventoryItem.inventoryLevels": PAGING + ["query"],
    "Refund.refundLineItems": PAGING,
    "Refund.transactions": PAGING,
    "QueryRoot.inventoryItems": PAGING + ["query"],
    "QueryRoot.ordersCount": ["query", "limit"],
    "Order.suggestedRefund": ["refundLineItems", "suggestFullRefund"],
    "Order.transactions": ["first"],
}
EXTENSIONS = {"WebhookSubscriptionInput": ["  uri: String"]}


def main() -> None:
    real = build_client_schema(json.load(gzip.open(SCHEMA))["data"], assume_valid=True)
    needed_leaf: set[str] = set()
    out: list[str] = [
        "# Generated by sandbox/shopify/make_schema.py from Shopify's Admin API 2025-01 schema.",
        "",
    ]
    out += ["schema {", "  query: QueryRoot", "  mutation: Mutation", "}", ""]

    def note(t: Any) -> str:
        named = get_named_type(t)
        if named.name not in SPEC:
            needed_leaf.add(named.name)
        return str(t)

    for name, fields in SPEC.items():
        t = real.get_type(name)
        if isinstance(t, GraphQLInputObjectType):
            out.append(f"input {name} {{")
            for f in fields:
                out.append(f"  {f}: {note(t.fields[f].type)}")
            out += EXTENSIONS.get(name, [])
        else:
            assert isinstance(t, GraphQLObjectType | GraphQLInterfaceType), name
            kind = "interface" if isinstance(t, GraphQLInterfaceType) else "type"
            impl = [i.name for i in getattr(t, "interfaces", []) if i.name in SPEC and "id" in fields]
            out.append(f"{kind} {name}" + (f" implements {' & '.join(impl)}" if impl else "") + " {")
            for f in fields:
                fd = t.fields[f]
                wanted = ARGS.get(f"{name}.{f}", list(fd.args))
                args = [f"{a}: {note(fd.args[a].type)}" for a in wanted if a in fd.args]
                sig = f"({', '.join(args)})" if args else ""
                out.append(f"  {f}{sig}: {note(fd.type)}")
        out += ["}", ""]
    builtin = {"String", "Int", "Float", "Boolean", "ID"}
    seen: set[str] = set()
    while needed_leaf - seen - builtin:
        name = sorted(needed_leaf - seen - builtin)[0]
        seen.add(name)
        t = real.get_type(name)
        if isinstance(t, GraphQLScalarType):
            out += [f"scalar {name}", ""]
        elif isinstance(t, GraphQLEnumType):
            out += [f"enum {name} {{"] + [f"  {v}" for v in t.values] + ["}", ""]
        elif isinstance(t, GraphQLInputObjectType):
            out.append(f"input {name} {{")
            for f, fd in t.fields.items():
                out.append(f"  {f}: {note(fd.type)}")
            out += ["}", ""]
        else:
            raise SystemExit(f"type {name} is referenced but not listed in SPEC")
    OUT.write_text("\n".join(out))


if __name__ == "__main__":
    main()
