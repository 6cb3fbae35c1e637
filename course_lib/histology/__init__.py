"""Chapter 2: histology and segmentation, one idea per module.

Data:
    :mod:`~course_lib.histology.slides`               whole-slide images: levels, regions, tissue mask
    :mod:`~course_lib.histology.slide_grid`           patch grid over the tissue, scores back as a heat-map
    :mod:`~course_lib.histology.idc`                  Kaggle IDC breast histopathology patches, per-patient splits
    :mod:`~course_lib.histology.sampling`             class balancing (weighted sampler, class weights)
    :mod:`~course_lib.histology.synthetic_tiles`      H&E-like tiles with tumour regions and patch labels
    :mod:`~course_lib.histology.synthetic_lesions`    faint rare lesions (segmentation under imbalance)
    :mod:`~course_lib.histology.synthetic_instances`  touching round objects with instance labels

Models and methods (the metrics, Dice and the soft Dice loss are in the core: :mod:`course_lib.metrics`):

    :mod:`~course_lib.histology.receptive_field`  receptive fields and what a fully convolutional pass saves
    :mod:`~course_lib.histology.fcn`              patch classifier -> fully convolutional net, slow path beside it
    :mod:`~course_lib.histology.unet`             U-Net, with or without skip connections
    :mod:`~course_lib.histology.edges`            background / interior / border targets, instances from them
    :mod:`~course_lib.histology.cased`            CASED curriculum adaptive patch sampling
    :mod:`~course_lib.histology.experiments`      the chapter's comparisons, one call each
"""

from course_lib.histology.unet import UNet

__all__ = ["UNet"]
