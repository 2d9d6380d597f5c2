"""Moved to switchyard.edge.clients.providers."""
from switchyard.edge.clients.providers import MuxCall as MuxCall
