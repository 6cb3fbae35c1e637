"""Data for the course: seeded synthetic generators and readers of real datasets.

Synthetic (deterministic for a given ``seed``, fast enough for quick mode):
    :mod:`~course_lib.data.synthetic_lesions`    faint rare lesions (segmentation under imbalance)
    :mod:`~course_lib.data.synthetic_histology`  H&E-like tiles with tumour regions and patch labels
    :mod:`~course_lib.data.synthetic_instances`  touching round objects with instance labels
    :mod:`~course_lib.data.synthetic_cxr`        PA + lateral chest X-ray pairs, findings visible in one view or both
    :mod:`~course_lib.data.synthetic_cells`      fluorescence cells with dots (easy, clustered, shifted lighting)
    :mod:`~course_lib.data.synthetic_nuclei`     H&E-like nuclei of three classes with dots per class
    :mod:`~course_lib.data.synthetic_wells`      a 96-well plate over time: growth per treatment, well images

Real data:
    :mod:`~course_lib.data.sample_images`  real images shipped inside installed packages
    :mod:`~course_lib.data.slides`         whole-slide images: levels, tissue mask, patch grid, heat-map
    :mod:`~course_lib.data.idc`            Kaggle IDC breast histopathology patches, per-patient splits
    :mod:`~course_lib.data.cxr_images`     radiographs from DICOM, 8/16-bit PNG or JPEG to [0, 1] at 224 px
    :mod:`~course_lib.data.cxr_labels`     NIH, PadChest, CheXpert, MIMIC-CXR label tables; PA + lateral pairs
    :mod:`~course_lib.data.cxr_datasets`   torch Datasets over those tables (single view, paired views)
    :mod:`~course_lib.data.counting_datasets`  VGG cells, BBBC005, bone marrow, adipocytes: dots and counts
    :mod:`~course_lib.data.download`       resumable, verified downloads for ``data_scripts/``
    :mod:`~course_lib.data.sampling`       class balancing (weighted sampler, class weights)
"""
