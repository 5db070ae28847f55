#!/usr/bin/env python3
"""Print one field of the JSON on stdin: `packages[name=X].version` picks
the element of `packages` whose `name` is X, then its `version`."""
import json
import re
import sys

value = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    match = re.fullmatch(r"(\w+)\[(\w+)=([\w-]+)\]", part)
    if match:
        key, field, wanted = match.groups()
        value = next(item for item in value[key] if item.get(field) == wanted)
    else:
        value = value[part]
print(value)
