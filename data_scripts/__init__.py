"""Scripts that download and prepare the real datasets for full mode; run each from the repository root as
``python -m data_scripts.<name> --help``. Shared steps live in :mod:`data_scripts.cxr_common` (chest X-rays) and
:mod:`data_scripts.counting_common` (counting sets); archives are verified and extracted by
:mod:`course_lib.data.archives`, downloads go through :mod:`course_lib.data.download`."""
