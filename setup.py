"""The import package `switchyard` is the `services/` folder: the folders keep the names the
project was specified with, and nothing named `services` lands in site-packages."""
from setuptools import find_packages, setup

setup(
    package_dir={"switchyard": "services"},
    packages=["switchyard", *(f"switchyard.{p}" for p in find_packages("services"))],
)
