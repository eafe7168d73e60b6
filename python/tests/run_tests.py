"""CTest's python_binding test: pytest over python/tests, or exit 77 (CTest's skip)
saying what is missing. CTest sets FLEET_LIBRARY to the libfleet.so just built and
PYTHONPATH to python/, so the tests import the package from the source tree."""
import importlib.util
import os
import sys

missing = [m for m in ("numpy", "pytest", "onnx", "onnxruntime")
           if importlib.util.find_spec(m) is None]
if missing:
    print("SKIP: the Python binding's tests need %s "
          "(python3 -m pip install numpy onnx onnxruntime pytest)" % ", ".join(missing))
    sys.exit(77)

import pytest  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-rs", here] + sys.argv[1:]))
