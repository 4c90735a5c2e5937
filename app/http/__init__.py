"""Flask: routes (one module per resource), schemas, the @operation decorator, auth, problems,
streaming, the cached fast path and the OpenAPI document."""
