"""Reading the config's YAML strictly: a key given twice in one mapping is an error (PyYAML
keeps the last copy without a word, so half an entry could silently vanish)."""
from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MERGE_TAG = "tag:yaml.org,2002:merge"


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that records every duplicate key (with its place) before constructing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[str, str, int, int]] = []   # (where, key, first, again)

    def construct_document(self, node: Node) -> Any:
        self._walk(node, "")
        return super().construct_document(node)

    def _walk(self, node: Node, where: str) -> None:
        if isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, f"{where}[{i}]")
        elif isinstance(node, MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == MERGE_TAG or not isinstance(key_node, ScalarNode):
                    continue   # `<<: *defaults` may be overridden key by key: not a duplicate
                key, line = str(key_node.value), key_node.start_mark.line + 1
                if key in seen:
                    self.duplicates.append((where, key, seen[key], line))
                else:
                    seen[key] = line
                self._walk(value_node, f"{where}.{key}" if where else key)


def read_yaml(text: str) -> tuple[Any, list[tuple[str, str]]]:
    """The document, and a (place, problem) pair per duplicate key.

    Raises yaml.YAMLError on a syntax error (the caller names line and column)."""
    loader = StrictLoader(text)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    problems = [(where or "top level", f"key '{key}' is given twice (lines {first} and "
                                       f"{again}); YAML would keep only the last — keep one")
                for where, key, first, again in loader.duplicates]
    return data, problems
