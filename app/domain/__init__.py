"""Pure rules with no I/O: references, deletion replay, layers, changes, platforms,
tar framing, progress, JSON bounds, registry-auth headers, time formats, JSON lines."""
