"""Build step only; the package metadata is in pyproject.toml (PEP 621).

A non-editable install (``pip install .``, the EMR wheel) has no checkout beside it, so the build
copies the stage configs (``configs/*.yaml``) and the EMR bootstrap script (``bootstrap/*.sh``) into
``dhs_gen/_shipped/``, where :mod:`dhs_gen.resources` finds them. An editable install reads them
from the checkout instead.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {"configs": "*.yaml", "bootstrap": "*.sh"}  # checkout folder -> files shipped from it


class BuildPyWithResources(build_py):
    """``build_py`` that also ships the configs and the bootstrap script inside ``dhs_gen``."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "dhs_gen" / "_shipped"
        shutil.rmtree(target, ignore_errors=True)  # no stale copy of a config removed since the last build
        for folder, pattern in SHIPPED.items():
            for src in sorted((ROOT / folder).glob(pattern)):
                dest = target / folder / src.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)


setup(cmdclass={"build_py": BuildPyWithResources})
