#!/usr/bin/env python3
"""Fails when a source file includes a header from a layer above its own (see DESIGN.md).

Layers, bottom to top; a file may include its own layer and any layer below it."""
import pathlib
import re
import sys

ORDER = ["core", "backend", "ops", "formats", "text", "nn", "models", "runtime", "server", "cli"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(rel: str) -> str:
    return rel.split("/", 1)[0]


def main() -> int:
    src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
    bad = []
    for path in sorted(src.rglob("*")):
        if path.suffix not in {".h", ".cpp"}:
            continue
        rel = path.relative_to(src).as_posix()
        own = ORDER.index(layer_of(rel))
        for inc in INCLUDE.findall(path.read_text(errors="replace")):
            top = layer_of(inc)
            if top not in ORDER:
                continue  # a system or relative header
            if ORDER.index(top) > own:
                bad.append(f"{rel}: includes '{inc}' from layer '{top}' above '{layer_of(rel)}'")
            if layer_of(rel) == "backend" and top == "backend":
                # backend/cpu and backend/vulkan are siblings: neither includes the other.
                mine, theirs = rel.split("/")[1], inc.split("/")[1]
                if mine != theirs:
                    bad.append(f"{rel}: backend '{mine}' includes backend '{theirs}'")
    for line in bad:
        print(line)
    print(f"layering: {len(bad)} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
