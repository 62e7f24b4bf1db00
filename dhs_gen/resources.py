"""Where the stage configs and the EMR bootstrap script are, installed or in a checkout.

A non-editable install ships them inside this package (``dhs_gen/_shipped/``, copied there by the
build, see setup.py); an editable install or a plain checkout has them at the repository root
(``configs/``, ``bootstrap/``). The shipped copy wins when present.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_DIR = PACKAGE_DIR / "_shipped"
PACKAGES_ROOT = PACKAGE_DIR.parent  # the checkout, or site-packages: jobs/, emr/, ... sit beside dhs_gen/


def resource_dir(name: str) -> Path:
    """The folder ``name`` ("configs" or "bootstrap"): shipped copy first, else the checkout's.

    FileNotFoundError naming both places when neither has it.
    """
    shipped = SHIPPED_DIR / name
    if shipped.is_dir():
        return shipped
    checkout = PACKAGES_ROOT / name
    if checkout.is_dir() and (PACKAGES_ROOT / "pyproject.toml").is_file():
        return checkout
    raise FileNotFoundError(f"{name}/ is neither installed ({shipped}) nor in a checkout ({checkout}); "
                            "reinstall the project")


def configs_dir() -> Path:
    """The folder of stage configs (``configs/*.yaml``)."""
    return resource_dir("configs")


def config_path(name: str) -> Path:
    """A shipped stage config by file name, e.g. ``config_path("phase4c_demo.yaml")``."""
    path = configs_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"config {name} not found in {path.parent}")
    return path


def job_script(name: str) -> Path:
    """A Spark job's script, ``jobs/<name>`` (installed beside this package, or in the checkout)."""
    return PACKAGES_ROOT / "jobs" / name


def bootstrap_script(name: str = "install_dhs.sh") -> Path:
    """The EMR bootstrap script."""
    path = resource_dir("bootstrap") / name
    if not path.is_file():
        raise FileNotFoundError(f"bootstrap script {name} not found in {path.parent}")
    return path
