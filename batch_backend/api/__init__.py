"""The versioned JSON-over-HTTP API: error mapping and the OpenAPI document."""
