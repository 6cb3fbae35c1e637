"""Segmentation of chapter 2, one idea per module.

    :mod:`~course_lib.segmentation.receptive_field`  receptive fields and what a fully convolutional pass saves
    :mod:`~course_lib.segmentation.fcn`              patch classifier -> fully convolutional net, slow path beside it
    :mod:`~course_lib.segmentation.unet`             U-Net, with or without skip connections
    :mod:`~course_lib.segmentation.edges`            background / interior / border targets, instances from them
    :mod:`~course_lib.segmentation.cased`            CASED curriculum adaptive patch sampling
    :mod:`~course_lib.segmentation.experiments`      the chapter's comparisons, one call each
"""

from course_lib.segmentation.unet import UNet

__all__ = ["UNet"]
