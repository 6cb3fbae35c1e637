"""Data for the course: seeded synthetic generators and readers of real datasets.

Synthetic (deterministic for a given ``seed``, fast enough for quick mode):
    :mod:`~course_lib.data.synthetic_lesions`    faint rare lesions (segmentation under imbalance)
    :mod:`~course_lib.data.synthetic_histology`  H&E-like tiles with tumour regions and patch labels
    :mod:`~course_lib.data.synthetic_instances`  touching round objects with instance labels

Real data:
    :mod:`~course_lib.data.sample_images`  real images shipped inside installed packages
    :mod:`~course_lib.data.slides`         whole-slide images: levels, tissue mask, patch grid, heat-map
    :mod:`~course_lib.data.idc`            Kaggle IDC breast histopathology patches, per-patient splits
    :mod:`~course_lib.data.download`       resumable, verified downloads for ``data_scripts/``
    :mod:`~course_lib.data.sampling`       class balancing (weighted sampler, class weights)
"""
