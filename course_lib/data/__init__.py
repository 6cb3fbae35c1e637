"""Data for the course: seeded synthetic generators and readers of real datasets.

Synthetic generators are deterministic for a given ``seed`` and fast enough for quick mode.
Package-shipped real images are located by :mod:`course_lib.data.sample_images`.
"""
