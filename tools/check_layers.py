#!/usr/bin/env python3
"""Fails when a source file includes a header from a layer above its own (see DESIGN.md).

Layers, bottom to top; a file may include its own layer and any layer below it. Two layers hold
siblings that must stay apart: backend/cpu and backend/vulkan never include each other, and each
folder of runtime/ includes only itself and the runtime folders RUNTIME_USES lists for it."""
import pathlib
import re
import sys

ORDER = ["core", "backend", "ops", "formats", "text", "nn", "models", "runtime", "server", "cli"]
# runtime/<concern> -> the runtime folders it may include. plan (memory planner and catalog)
# reads file headers and runs nothing; store fetches files and resolves catalog names; llm,
# speech and vision run models of one modality each.
RUNTIME_USES = {
    "plan": set(),
    "store": {"plan"},
    "llm": {"plan"},
    "speech": {"plan"},
    "vision": {"plan"},
    "diffusion": {"plan"},
    "music": {"plan"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(rel: str) -> str:
    return rel.split("/", 1)[0]


def folder_of(rel: str) -> str:
    """The second path component (backend/cpu -> cpu), or "" for a file directly in the layer."""
    parts = rel.split("/")
    return parts[1] if len(parts) > 2 else ""


def check_file(rel: str, text: str) -> list[str]:
    bad = []
    own = layer_of(rel)
    if own not in ORDER:
        return [f"{rel}: not in a known layer ({', '.join(ORDER)})"]
    if own == "runtime" and folder_of(rel) not in RUNTIME_USES:
        bad.append(f"{rel}: runtime files live in one of runtime/{{{','.join(RUNTIME_USES)}}}/")
    for inc in INCLUDE.findall(text):
        top = layer_of(inc)
        if top not in ORDER:
            continue  # a system or relative header
        if ORDER.index(top) > ORDER.index(own):
            bad.append(f"{rel}: includes '{inc}' from layer '{top}' above '{own}'")
        if own == top == "backend":
            mine, theirs = folder_of(rel), folder_of(inc)
            if mine != theirs:
                bad.append(f"{rel}: backend '{mine}' includes backend '{theirs}'")
        if own == top == "runtime":
            mine, theirs = folder_of(rel), folder_of(inc)
            if mine in RUNTIME_USES and theirs != mine and theirs not in RUNTIME_USES[mine]:
                bad.append(f"{rel}: runtime/{mine} includes runtime/{theirs}, which it does not "
                           f"list in tools/check_layers.py")
    return bad


def main() -> int:
    src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
    bad = []
    for path in sorted(src.rglob("*")):
        if path.suffix in {".h", ".cpp", ".comp", ".glsl"}:
            bad += check_file(path.relative_to(src).as_posix(), path.read_text(errors="replace"))
    for line in bad:
        print(line)
    print(f"layering: {len(bad)} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
