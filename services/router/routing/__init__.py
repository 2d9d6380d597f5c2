"""Preference-aligned routing in the router service: a classifier picks a route for a
request's recent turns (`embedding`, local; or `llm`, the configured routing model), the
route's candidate pool is ranked (`ranking`) and becomes the request's plan (`engine`)."""
