"""The one C extension: ociruntime.linux._kernel (raw system calls; see _kernel.c for why).

Everything else about the package is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("ociruntime.linux._kernel", ["ociruntime/linux/_kernel.c"],
                             extra_compile_args=["-O2", "-Wall", "-Werror"])])
