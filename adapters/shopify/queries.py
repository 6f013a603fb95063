"""Every GraphQL document the Shopify adapter sends, as module constants.

``tests/shopify/test_queries_validate.py`` validates each public ``str`` constant here against
Shopify's published Admin schema, so keep non-GraphQL strings out of this module.

Page sizes follow Shopify's requested-cost rules (platforms.md): a connection costs
``2 + first × (cost of one node)``, an object 1, a scalar or enum 0, and one query may request
at most 1,000 points. The arithmetic is written next to each size; ``sandbox/shopify/cost.py``
computes the same numbers and a test checks that each size is the largest that fits.
"""

from __future__ import annotations

import json

MAX_REQUESTED_COST = 1000
LINE_ITEMS_PER_ORDER = 10
LEVELS_PER_ITEM = 10

# One order node: order 1 + customer 1 + shippingAddress 1
#   + lineItems(first: 10): 2 + 10 × (lineItem 1 + originalUnitPriceSet 1 + shopMoney 1
#                                      + variant 1 + inventoryItem 1) = 2 + 10 × 5 = 52
#   = 55 points.  orders(first: N): 2 + 55 N ≤ 1,000  →  N = 18 (992 points).
# Orders with more than 10 lines are completed with ORDER_LINE_ITEMS_PAGE.
ORDERS_PAGE_SIZE = 18

# order 1 + lineItems(first: N): 2 + 5 N ≤ 1,000 → N = 199 (998 points).
ORDER_LINE_ITEMS_PAGE_SIZE = 199

# One variant: variant 1 + product 1 + inventoryItem 1 = 3; 2 + 3 N ≤ 1,000 → N = 332, but a
# connection returns at most 250 nodes, so 250 (752 points).
VARIANTS_PAGE_SIZE = 250

# One variant with levels: variant 1 + inventoryItem 1
#   + inventoryLevels(first: 10): 2 + 10 × (level 1 + location 1 + quantities 3) = 52
#   = 54 points (the quantities list is counted as one object per requested name).
#   productVariants(first: N): 2 + 54 N ≤ 1,000 → N = 18 (974 points).
VARIANT_LEVELS_PAGE_SIZE = 18

_LINE_ITEM_FIELDS = """
        id
        title
        sku
        quantity
        currentQuantity
        unfulfilledQuantity
        originalUnitPriceSet { shopMoney { amount currencyCode } }
        variant { id sku inventoryPolicy inventoryItem { id } }
"""

_ORDER_FIELDS = """
      id
      name
      createdAt
      updatedAt
      cancelledAt
      closedAt
      email
      currencyCode
      tags
      displayFinancialStatus
      displayFulfillmentStatus
      customer { id displayName }
      shippingAddress { name company address1 address2 city provinceCode zip countryCodeV2 phone }
"""

ORDERS_PAGE = (
    """
query OrdersPage($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {"""
    + _ORDER_FIELDS
    + """      lineItems(first: 10) {
        pageInfo { hasNextPage endCursor }
        nodes {"""
    + _LINE_ITEM_FIELDS
    + """        }
      }
    }
  }
}
"""
)

ORDER_LINE_ITEMS_PAGE = (
    """
query OrderLineItems($id: ID!, $first: Int!, $after: String) {
  order(id: $id) {
    id
    lineItems(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {"""
    + _LINE_ITEM_FIELDS
    + """      }
    }
  }
}
"""
)

VARIANTS_PAGE = """
query VariantsPage($first: Int!, $after: String, $query: String) {
  productVariants(first: $first, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      title
      displayName
      sku
      inventoryPolicy
      price
      updatedAt
      inventoryQuantity
      product { id }
      inventoryItem { id tracked }
    }
  }
}
"""

_PRODUCT_VARIANT_FIELDS = """
        id
        title
        displayName
        sku
        inventoryPolicy
        price
        updatedAt
        inventoryQuantity
        inventoryItem { id tracked }
"""

# One product: product 1 + variants(first: 25): 2 + 25 × (variant 1 + inventoryItem 1) = 53
#   products(first: N): 2 + 53 N ≤ 1,000 → N = 18 (956 points).
# Products with more than 25 variants are completed with PRODUCT_VARIANTS_PAGE.
VARIANTS_PER_PRODUCT = 25
PRODUCTS_PAGE_SIZE = 18

PRODUCTS_PAGE = (
    """
query ProductsPage($first: Int!, $after: String, $query: String) {
  products(first: $first, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      title
      handle
      status
      vendor
      tags
      updatedAt
      variants(first: 25) {
        pageInfo { hasNextPage endCursor }
        nodes {"""
    + _PRODUCT_VARIANT_FIELDS
    + """        }
      }
    }
  }
}
"""
)

# product 1 + variants(first: N): 2 + 2 N ≤ 1,000 → N = 498, capped at 250 (503 points).
PRODUCT_VARIANTS_PAGE_SIZE = 250

PRODUCT_VARIANTS_PAGE = (
    """
query ProductVariantsOfProduct($id: ID!, $first: Int!, $after: String) {
  product(id: $id) {
    id
    variants(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {"""
    + _PRODUCT_VARIANT_FIELDS
    + """      }
    }
  }
}
"""
)

VARIANT_LEVELS_PAGE = """
query VariantLevelsPage($first: Int!, $after: String) {
  productVariants(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      inventoryItem {
        id
        inventoryLevels(first: 10) {
          pageInfo { hasNextPage endCursor }
          nodes {
            updatedAt
            location { id }
            quantities(names: ["available", "on_hand", "incoming"]) { name quantity }
          }
        }
      }
    }
  }
}
"""

# inventoryItem 1 + inventoryLevels(first: N): 2 + N × (level 1 + location 1 + quantities 3)
#   = 3 + 5 N ≤ 1,000 → N = 199 (998 points).
INVENTORY_ITEM_LEVELS_PAGE_SIZE = 199

INVENTORY_ITEM_LEVELS_PAGE = """
query InventoryItemLevels($id: ID!, $first: Int!, $after: String) {
  inventoryItem(id: $id) {
    id
    inventoryLevels(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        updatedAt
        location { id }
        quantities(names: ["available", "on_hand", "incoming"]) { name quantity }
      }
    }
  }
}
"""

# API versions up to 2025-07 name the endpoint ``callbackUrl``; 2025-10 renamed it ``uri``.
WEBHOOK_SUBSCRIPTION_CREATE = """
mutation WebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $callbackUrl: URL!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {callbackUrl: $callbackUrl, format: JSON}) {
    webhookSubscription { id topic }
    userErrors { field message }
  }
}
"""

WEBHOOK_SUBSCRIPTION_CREATE_URI = """
mutation WebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
    webhookSubscription { id topic }
    userErrors { field message }
  }
}
"""

# Documents that only exist from a newer API version than the reference schema (2025-01).
NEWER_THAN_2025_01 = frozenset({"WEBHOOK_SUBSCRIPTION_CREATE_URI"})

PRODUCT_VARIANTS_BULK_UPDATE = """
mutation ProductVariantsBulkUpdate($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {
    productVariants { id inventoryPolicy }
    userErrors { field message code }
  }
}
"""

METAFIELDS_SET = """
mutation MetafieldsSet($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) {
    metafields { id namespace key }
    userErrors { field message code }
  }
}
"""

METAFIELDS_DELETE = """
mutation MetafieldsDelete($metafields: [MetafieldIdentifierInput!]!) {
  metafieldsDelete(metafields: $metafields) {
    deletedMetafields { ownerId namespace key }
    userErrors { field message }
  }
}
"""

TAGS_ADD = """
mutation TagsAdd($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) {
    node { id }
    userErrors { field message }
  }
}
"""

TAGS_REMOVE = """
mutation TagsRemove($id: ID!, $tags: [String!]!) {
  tagsRemove(id: $id, tags: $tags) {
    node { id }
    userErrors { field message }
  }
}
"""

# order 1 + fulfillmentOrders(first: 5): 2 + 5 × (1 + lineItems(first: 50): 2 + 50 × (1 + lineItem 1))
#   = 1 + 2 + 5 × 103 = 518 points.
ORDER_FULFILLMENT_ORDERS = """
query OrderFulfillmentOrders($id: ID!) {
  order(id: $id) {
    id
    fulfillmentOrders(first: 5) {
      nodes {
        id
        status
        lineItems(first: 50) {
          nodes { id remainingQuantity lineItem { id } }
        }
      }
    }
  }
}
"""

FULFILLMENT_CREATE = """
mutation FulfillmentCreate($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status trackingInfo { number company url } }
    userErrors { field message }
  }
}
"""

# order 1 + refunds (a plain list, not a connection: Shopify returns every refund; an order has
#   few) 1 each = a handful of points.
ORDER_REFUNDS = """
query OrderRefunds($id: ID!) {
  order(id: $id) {
    id
    refunds(first: 50) { id note }
  }
}
"""

# What Shopify proposes to give back for some units (Shopify's documented refund flow: ask, then
# refund with its suggested transactions). ``suggestFullRefund: false``: the units' price, not
# the whole order. order 1 + suggestedRefund 1 + 3 money bags × 2 + refundLineItems (a list,
#   1 + lineItem 1) + suggestedTransactions (a list, 1 + 2 money bags × 2 + parentTransaction 1)
#   = 16 points.
SUGGESTED_REFUND = """
query SuggestedRefund($id: ID!, $refundLineItems: [RefundLineItemInput!]) {
  order(id: $id) {
    id
    suggestedRefund(refundLineItems: $refundLineItems, suggestFullRefund: false) {
      amountSet { shopMoney { amount currencyCode } }
      subtotalSet { shopMoney { amount currencyCode } }
      totalTaxSet { shopMoney { amount currencyCode } }
      refundLineItems { quantity lineItem { id } }
      suggestedTransactions {
        kind
        gateway
        amountSet { shopMoney { amount currencyCode } }
        maximumRefundableSet { shopMoney { amount currencyCode } }
        parentTransaction { id kind }
      }
    }
  }
}
"""

REFUND_CREATE = """
mutation RefundCreate($input: RefundInput!) {
  refundCreate(input: $input) {
    refund {
      id
      note
      totalRefundedSet { shopMoney { amount currencyCode } }
      transactions(first: 10) { nodes { id kind status gateway amountSet { shopMoney { amount } } } }
    }
    userErrors { field message }
  }
}
"""

BULK_OPERATION_RUN_QUERY = """
mutation BulkOperationRunQuery($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""

CURRENT_BULK_OPERATION = """
query CurrentBulkOperation {
  currentBulkOperation(type: QUERY) {
    id
    status
    errorCode
    objectCount
    rootObjectCount
    url
    partialDataUrl
    createdAt
    completedAt
  }
}
"""

# ordersCount is capped by ``limit`` (Shopify's default is 10,000): enough to decide between
# paging and a bulk operation. A handful of points.
ORDERS_COUNT = """
query OrdersCount($query: String, $limit: Int) {
  ordersCount(query: $query, limit: $limit) { count precision }
}
"""

SHOP_TIMEZONE = """
query ShopTimezone {
  shop { id ianaTimezone }
}
"""

# One item: item 1 + inventoryLevels(first: 10): 2 + 10 × (level 1 + location 1 + quantities 3)
#   = 53 points.  inventoryItems(first: N): 2 + 53 N ≤ 1,000 → N = 18 (956 points).
INVENTORY_ITEMS_PAGE_SIZE = 18

INVENTORY_ITEMS_LEVELS_PAGE = """
query InventoryItemsLevelsPage($first: Int!, $after: String, $query: String) {
  inventoryItems(first: $first, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      updatedAt
      inventoryLevels(first: 10) {
        pageInfo { hasNextPage endCursor }
        nodes {
          updatedAt
          location { id }
          quantities(names: ["available", "on_hand", "incoming"]) { name quantity }
        }
      }
    }
  }
}
"""

# The document run *inside* a bulk operation: no page sizes (bulk ignores cost limits), edges
# for every connection, at most two levels. Child rows come back with ``__parentId``.
BULK_ORDERS_QUERY = (
    """
{
  orders(sortKey: UPDATED_AT) {
    edges {
      node {"""
    + _ORDER_FIELDS
    + """        lineItems {
          edges {
            node {"""
    + _LINE_ITEM_FIELDS
    + """            }
          }
        }
      }
    }
  }
}
"""
)


def bulk_orders_query(search: str | None) -> str:
    """``BULK_ORDERS_QUERY`` restricted by an orders search string such as ``updated_at:>'…'``."""
    if not search:
        return BULK_ORDERS_QUERY
    return BULK_ORDERS_QUERY.replace(
        "orders(sortKey: UPDATED_AT)", f"orders(sortKey: UPDATED_AT, query: {json.dumps(search)})", 1
    )
