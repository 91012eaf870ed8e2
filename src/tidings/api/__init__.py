"""The HTTP API: one module per resource; handlers stay short and call the pipeline and store."""
