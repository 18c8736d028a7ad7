"""Package layout only; all metadata lives in pyproject.toml.

The repository keeps the CLI (`cli/`), the fold protocols (`protocols/`) and the published
baselines (`baselines/`) at top level, where people look for them. They install as parts of the
one `austack` package so that a wheel is self-contained and nothing reads files relative to the
current directory.
"""
from setuptools import find_namespace_packages, find_packages, setup

MAPPED = {"austack.cli": "cli",
          "austack._resources.protocols": "protocols",
          "austack._resources.baselines": "baselines"}

packages = find_packages(include=["austack", "austack.*"])
package_dir = {"austack": "austack"}
for name, folder in MAPPED.items():
    package_dir[name] = folder
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_namespace_packages(where=folder)]

setup(packages=packages, package_dir=package_dir)
