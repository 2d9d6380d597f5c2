"""The edge's clients of its three backend services (router, providers, state): one channel
factory (channel.py), one gRPC-status mapping (errors.py), and `Backends` (backends.py)."""
