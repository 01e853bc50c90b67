"""Environment probe for `model-tools doctor`: prints one JSON object and exits 0.

Runs with any Python 3.8+; imports torch, transformers and peft only to read their versions
and the GPU's capabilities, and reports what is missing instead of failing.
"""
import sys

# Run as `python -c`: Python < 3.11 ignores PYTHONSAFEPATH and puts the current directory ("")
# first on sys.path, where a json.py or torch.py would be imported instead of the real one.
if sys.path and sys.path[0] == "":
    del sys.path[0]

import importlib  # noqa: E402 - after the sys.path fix above
import json  # noqa: E402
import platform  # noqa: E402


def version_of(name):
    try:
        module = importlib.import_module(name)
    except Exception as error:  # noqa: BLE001 - any import failure means "not usable"
        return None, "{}: {}".format(type(error).__name__, error)
    return getattr(module, "__version__", "unknown"), None


def main():
    report = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "packages": {},
        "errors": {},
        "cuda": False,
        "cuda_version": None,
        "gpus": [],
        "bf16": False,
        "mps": False,
    }
    for name in ("torch", "transformers", "peft", "safetensors", "numpy"):
        version, error = version_of(name)
        report["packages"][name] = version
        if error:
            report["errors"][name] = error
    if report["packages"]["torch"]:
        import torch

        report["cuda"] = bool(torch.cuda.is_available())
        report["cuda_version"] = torch.version.cuda
        if report["cuda"]:
            for index in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(index)
                report["gpus"].append(
                    {
                        "name": props.name,
                        "memory_bytes": int(props.total_memory),
                        "capability": "{}.{}".format(props.major, props.minor),
                    }
                )
            report["bf16"] = bool(torch.cuda.is_bf16_supported())
        mps = getattr(torch.backends, "mps", None)
        report["mps"] = bool(mps and mps.is_available())
    print(json.dumps(report))


if __name__ == "__main__":
    main()
