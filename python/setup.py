"""Builds libfleet.so from the repository (cmake, in a temporary folder) and bundles it
as fleet/_lib/libfleet.so; the rest is pyproject.toml's.

    pip install ./python                 (from the repository's root)

The library is configured like the main build: the cuda backend whenever nvcc and the
CUDA toolkit are found (FLEET_CUDA=AUTO), else cpu only. FLEET_CMAKE_FLAGS adds cmake
options ("-DFLEET_CUDA=OFF"); FLEET_BUILD_JOBS sets the parallel jobs (default: the
cores). Nothing is written into the source tree: cmake's build and setuptools' build
and egg-info folders are temporary.
"""
import atexit
import os
import shlex
import shutil
import subprocess
import tempfile

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRATCH = tempfile.mkdtemp(prefix="fleet-python-build-")
atexit.register(shutil.rmtree, SCRATCH, True)  # each setuptools step is its own process


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        if not os.path.exists(os.path.join(ROOT, "CMakeLists.txt")):
            raise RuntimeError("fleet: setup.py builds libfleet.so from the repository around "
                               "python/ (%s has no CMakeLists.txt)" % ROOT)
        build = os.path.join(SCRATCH, "cmake")
        flags = shlex.split(os.environ.get("FLEET_CMAKE_FLAGS", ""))
        jobs = os.environ.get("FLEET_BUILD_JOBS", str(os.cpu_count() or 2))
        subprocess.check_call(["cmake", "-S", ROOT, "-B", build, "-DBUILD_TESTING=OFF",
                               "-DFLEET_BUILD_TESTS=OFF", "-DFLEET_EXAMPLES=OFF"] + flags)
        subprocess.check_call(["cmake", "--build", build, "-j", jobs, "--target", "fleet_shared"])
        dest = os.path.join(self.build_lib, "fleet", "_lib")
        os.makedirs(dest, exist_ok=True)
        shutil.copyfile(os.path.realpath(os.path.join(build, "libfleet.so")),
                        os.path.join(dest, "libfleet.so"))
        shutil.rmtree(build, ignore_errors=True)


class BinaryDistribution(Distribution):
    """The wheel holds a native library: tag it for this platform, not as pure Python."""

    def has_ext_modules(self):
        return True


setup(
    cmdclass={"build_py": BuildWithLibrary},
    distclass=BinaryDistribution,
    options={"build": {"build_base": os.path.join(SCRATCH, "build")},
             "egg_info": {"egg_base": SCRATCH}},
)
