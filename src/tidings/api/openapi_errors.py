"""The errors /openapi.json lists for each operation, in the shape we answer them.

Litestar lists a 400 with its own ValidationException body for every handler that takes
parameters; we answer a body that is not JSON with 400 `invalid_json`, one of the wrong
shape with 422 `validation_error`, both as {"error": {"code", "message", "details"}}. This
replaces that entry with what the handlers really answer; a handler's own `responses` (say,
stats' 401 and 422 with its own words) stay as written.
"""

from __future__ import annotations

from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)

ERROR_SCHEMA = "ErrorAnswer"
# Answered without an API key (their own signature or token, or nothing to protect); each
# lists its own errors.
PUBLIC = ("/v1/unsubscribe", "/v1/providers/", "/v1/webpush/vapid-public-key")


def _error_schema() -> Schema:
    detail = Schema(
        type=OpenAPIType.OBJECT,
        properties={
            "code": Schema(type=OpenAPIType.STRING),
            "message": Schema(type=OpenAPIType.STRING),
            "details": Schema(),
        },
        required=["code", "message", "details"],
    )
    return Schema(type=OpenAPIType.OBJECT, properties={"error": detail}, required=["error"])


def _answer(description: str) -> OpenAPIResponse:
    schema = Reference(ref=f"#/components/schemas/{ERROR_SCHEMA}")
    return OpenAPIResponse(
        description=description, content={"application/json": OpenAPIMediaType(schema=schema)}
    )


def errors_for(path: str, operation: Operation) -> dict[str, str]:
    """{status: when} for the errors an operation answers, by what it takes and who may call."""
    errors: dict[str, str] = {}
    if not path.startswith("/v1/") or path.startswith(PUBLIC):
        return errors
    if operation.request_body is not None:
        errors["400"] = "The body is not JSON (`invalid_json`)"
        errors["413"] = "The body is larger than TIDINGS_MAX_BODY_BYTES"
    if operation.request_body is not None or operation.parameters:
        errors["422"] = "The request does not match the schema (`validation_error`)"
    errors["401"] = "Missing or bad credentials"
    errors["403"] = "Valid credentials that may not do this"
    errors["429"] = "Over the caller's request rate (Retry-After says when to try again)"
    return errors


def describe_errors(spec: OpenAPI) -> None:
    """Put our error answers into `spec` in place of Litestar's generic 400."""
    spec.components.schemas = {**(spec.components.schemas or {}), ERROR_SCHEMA: _error_schema()}
    for path, item in (spec.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            operation: Operation | None = getattr(item, method)
            if operation is None or operation.responses is None:
                continue
            generic = operation.responses.get("400")
            if isinstance(generic, OpenAPIResponse) and generic.description.startswith(
                "Bad request syntax"
            ):
                del operation.responses["400"]
            for status, description in errors_for(path, operation).items():
                operation.responses.setdefault(status, _answer(description))
