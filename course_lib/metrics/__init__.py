"""Metrics of the course: segmentation overlap, lesion detection, soft Dice loss, F1 / AUROC, bootstrap CIs,
and the Dice validation hook for ``fit``.

Everything is importable from here::

    from course_lib.metrics import dice, iou, precision, soft_dice_loss, f1_bootstrap_ci
"""

from course_lib.metrics.bootstrap import (
    ConfidenceInterval,
    bootstrap_ci,
    bootstrap_indices,
    f1_bootstrap_ci,
    paired_f1_difference,
)
from course_lib.metrics.boundary import boundary_f1, boundary_pixels, boundary_precision_recall
from course_lib.metrics.classification import auroc, average_precision, f1_score
from course_lib.metrics.detection import lesion_detection_scores
from course_lib.metrics.dice_loss import SoftDiceLoss, soft_dice, soft_dice_loss
from course_lib.metrics.evaluators import best_threshold_dice, dice_evaluator
from course_lib.metrics.segmentation import (
    confusion_counts,
    dice,
    iou,
    mean_dice,
    mean_iou,
    multiclass_counts,
    multiclass_score,
    one_hot,
    precision,
    recall,
)

__all__ = [
    "ConfidenceInterval", "bootstrap_ci", "bootstrap_indices", "f1_bootstrap_ci", "paired_f1_difference",
    "auroc", "average_precision", "f1_score", "boundary_f1", "boundary_pixels", "boundary_precision_recall",
    "SoftDiceLoss", "soft_dice", "soft_dice_loss", "confusion_counts", "dice", "iou",
    "mean_dice", "mean_iou",
    "multiclass_counts", "multiclass_score", "one_hot", "precision", "recall",
    "lesion_detection_scores", "dice_evaluator", "best_threshold_dice",
]
