"""Observability: tracer set-up (`tracer`), the spans a process records (`spans`), their way
out — a queue shipped over a pipe (`shipper`) to an exporter process (`exporter`) that encodes
them as OTLP (`otlp`) —, trace context (`propagation`), GenAI attributes (`genai`), prices
(`cost`), request log lines (`request_log`). Every hot-path caller first checks
`tracer.ENABLED`, so tracing off costs one module attribute read."""
