"""Moved to switchyard.edge.clients.backends."""
from switchyard.edge.clients.backends import Backends as Backends
