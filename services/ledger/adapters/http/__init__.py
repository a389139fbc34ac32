"""The finance/audit HTTP API: routes, OpenAPI document and JSON/CSV rendering."""
