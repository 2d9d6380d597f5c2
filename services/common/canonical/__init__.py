"""Canonical-model helpers and the one home of every format mapping table."""
