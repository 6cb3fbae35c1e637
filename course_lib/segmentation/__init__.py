"""Segmentation models of chapter 2."""

from course_lib.segmentation.unet import UNet

__all__ = ["UNet"]
