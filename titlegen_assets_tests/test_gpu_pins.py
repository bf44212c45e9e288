"""The GPU pin check (constraints/check_gpu_pins.py) reads pip's resolution report: what it must refuse."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "constraints" / "check_gpu_pins.py"


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("check_gpu_pins", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _item(name, version, *requires):
    return {"metadata": {"name": name, "version": version, "requires_dist": list(requires)},
            "download_info": {"url": f"https://files.example/{name}-{version}.whl"}}


def _report(*items):
    return {"install": [_item("torch", "2.13.0", "nvidia-cublas>=13; platform_system == 'Linux'"),
                        _item("nvidia-cublas", "13.1.1.3"), *items]}


def test_a_consistent_report_passes_and_markers_are_read_for_linux_python_312(check):
    report = _report(_item("titlegen", "0.1.0", "trl>=1.15", "unsloth>=2026.10; extra == 'gpu'",
                           "dagster-k8s>=0.29; extra == 'k8s'", "pywin32; sys_platform == 'win32'"),
                     _item("trl", "1.15.0"), _item("unsloth", "2026.10.7", "tomli; python_version < '3.11'"))
    found, resolved = check.problems(report, {"trl": "1.15.0", "torch": "2.13.0"}, "gpu,postgres", "3.12")
    assert found == [] and resolved["unsloth"] == "2026.10.7"


def test_a_pin_outside_the_set_an_unmet_requirement_and_a_cpu_torch_are_each_refused(check):
    report = _report(_item("unsloth", "2026.10.7", "trl<=1.15.0", "datasets<5"), _item("trl", "1.16.0"))
    report["install"][0]["metadata"]["requires_dist"] = []  # a torch without nvidia-* requirements: a CPU build
    found, _ = check.problems(report, {"bitsandbytes": "0.50.2", "trl": "1.15.0"}, "gpu", "3.12")
    assert "pin bitsandbytes==0.50.2 is not part of the resolved set" in found
    assert "pin trl==1.15.0 resolved to 1.16.0" in found
    assert "unsloth requires trl<=1.15.0 but 1.16.0 is resolved" in found
    assert "unsloth requires datasets<5 but it is not in the resolved set" in found
    assert any(line.startswith("torch 2.13.0 resolved to a build without CUDA") for line in found)


def test_the_pins_file_is_read_as_name_and_exact_version(check, tmp_path):
    pins = tmp_path / "pins.txt"
    pins.write_text("# comment\nunsloth_zoo==2026.10.7\nHuggingFace_Hub==1.33.0  # why\n")
    assert check.pins(pins) == {"unsloth-zoo": "2026.10.7", "huggingface-hub": "1.33.0"}
