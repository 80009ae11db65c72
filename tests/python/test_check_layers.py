"""tools/check_layers.py: the layering rules it enforces on src/ (DESIGN.md's layers)."""
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).parents[2]
spec = importlib.util.spec_from_file_location("check_layers", ROOT / "tools" / "check_layers.py")
check_layers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_layers)


def problems(rel, *includes):
    return check_layers.check_file(rel, "".join(f'#include "{i}"\n' for i in includes))


def test_lower_layers_and_own_folder_are_fine():
    assert problems("runtime/llm/session.cpp", "core/tensor.h", "models/llm/llm.h",
                    "runtime/llm/kv_cache.h", "runtime/plan/planner.h", "<vector>") == []
    assert problems("cli/cmd_run.cpp", "runtime/store/store.h", "server/http_server.h") == []


def test_upward_include_fails():
    assert "above" in problems("nn/linear.cpp", "models/llm/llm.h")[0]
    assert "above" in problems("runtime/plan/llm.cpp", "server/metrics.h")[0]


def test_runtime_folders_include_only_what_they_list():
    (msg,) = problems("runtime/plan/llm.cpp", "runtime/store/store.h")
    assert "runtime/plan includes runtime/store" in msg
    (msg,) = problems("runtime/speech/transcribe.cpp", "runtime/llm/session.h")
    assert "runtime/speech includes runtime/llm" in msg
    assert problems("runtime/store/pull.cpp", "runtime/plan/catalog.h") == []


def test_runtime_files_live_in_a_concern_folder():
    assert "live in one of" in problems("runtime/loose.cpp")[0]


def test_backends_are_siblings():
    (msg,) = problems("backend/vulkan/device.cpp", "backend/cpu/kernels.h")
    assert "backend 'vulkan' includes backend 'cpu'" in msg


def test_the_tree_itself_passes():
    src = ROOT / "src"
    bad = []
    for path in sorted(src.rglob("*")):
        if path.suffix in {".h", ".cpp"}:
            bad += check_layers.check_file(path.relative_to(src).as_posix(), path.read_text())
    assert bad == []
