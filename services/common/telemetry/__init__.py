"""Observability: tracer set-up (`tracer`), trace context (`propagation`), GenAI attributes
(`genai`), prices (`cost`), request log lines (`request_log`). Every hot-path caller first
checks `tracer.ENABLED`, so tracing off costs one module attribute read."""
