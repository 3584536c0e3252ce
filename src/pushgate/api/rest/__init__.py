"""The native REST API at ``/v1`` (JSON, OpenAPI)."""
