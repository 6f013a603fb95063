"""The two GraphQL schemas of the sandbox, each loaded once per process."""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path

from graphql import GraphQLSchema, build_client_schema, build_schema

SDL_PATH = Path(__file__).resolve().parent / "schema.graphql"
REAL_SCHEMA_PATH = Path(__file__).resolve().parents[3] / "shared" / "shopify" / "admin_schema_2025-01.json.gz"


@cache
def sandbox_schema() -> GraphQLSchema:
    """The sandbox's own small SDL schema (a checked subset of Shopify's)."""
    return build_schema(SDL_PATH.read_text())


@cache
def real_schema() -> GraphQLSchema | None:
    """Shopify's published 2025-01 schema when ../shared is beside the project, else None."""
    if not REAL_SCHEMA_PATH.exists():
        return None
    with gzip.open(REAL_SCHEMA_PATH) as fh:
        return build_client_schema(json.load(fh)["data"], assume_valid=True)
