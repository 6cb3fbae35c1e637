"""Core data helpers that every chapter uses. Each chapter's own data (its synthetic generators and its
real-dataset readers) lives in the chapter's package.

    :mod:`~course_lib.data.download`       resumable, verified downloads for ``data_scripts/``
    :mod:`~course_lib.data.archives`       safe archive extraction (members checked, links and ``..`` refused)
    :mod:`~course_lib.data.sample_images`  real images shipped inside installed packages
    :mod:`~course_lib.data.splits`         patient-level splits: no patient in two splits
"""
