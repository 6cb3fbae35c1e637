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

Experiments (each notebook's comparison over seeds, one call each) and their bookkeeping:

    :mod:`~course_lib.histology.balancing_experiment`  ch02a: shuffled vs class-balanced batches
    :mod:`~course_lib.histology.loss_experiment`       ch02b: BCE vs soft Dice vs both, choices on validation
    :mod:`~course_lib.histology.experiments`           ch02c: skip connections, edges, instance separation
    :mod:`~course_lib.histology.sampling_experiment`   ch02c: uniform vs balanced vs CASED patch sampling
    :mod:`~course_lib.histology.viz`                   mean ± sd tables, bars with the seeds, records
"""

from course_lib.histology.unet import UNet

__all__ = ["UNet"]
