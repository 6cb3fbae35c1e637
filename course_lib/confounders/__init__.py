"""Chapter 5: right for the right reasons — confounders, saliency, and the methods that try to fix them.

Data:
    :mod:`~course_lib.confounders.synthetic_sites`  two sites, a site artefact outside the ROI confounded with the label
    :mod:`~course_lib.confounders.decoy_digits`     Ross et al.'s Decoy MNIST protocol on scikit-learn's digits
    :mod:`~course_lib.confounders.cxr_mix`          full mode: a site-confounded chest X-ray mix of two datasets

Can the site be read off the images?
    :mod:`~course_lib.confounders.site_probe`       the average image of each site; a held-out site classifier

Saliency:
    :mod:`~course_lib.confounders.saliency`         input gradients, integrated gradients, the share inside the ROI

Mitigations, one idea each:
    :mod:`~course_lib.confounders.range_normalisation`  divide each image by its maximum
    :mod:`~course_lib.confounders.subspace_alignment`   align the sites' PCA subspaces (Fernando et al.)
    :mod:`~course_lib.confounders.site_centring`        subtract each site's mean image: subspace alignment's control
    :mod:`~course_lib.confounders.gradient_reversal`    a site head behind a gradient reversal layer (Ganin & Lempitsky)
    :mod:`~course_lib.confounders.rrr`                  Right for the Right Reasons (Ross et al.)
    :mod:`~course_lib.confounders.gradmask`             GradMask (Simpson et al.)
    :mod:`~course_lib.confounders.actdiff`              ActDiff (Viviano et al.)

Experiment and figures:
    :mod:`~course_lib.confounders.models`      the small CNN and MLP, split into ``features`` and ``head``
    :mod:`~course_lib.confounders.methods`     train one classifier with one method; evaluate accuracy, AUROC, saliency
    :mod:`~course_lib.confounders.experiment`  methods x seeds, selection on validation, confound sweep, decoy digits
    :mod:`~course_lib.confounders.viz`         the chapter's figures and tables

The penalties in three lines (``A = ~roi``, 1 where the model must not look)::

    rrr_loss(model, x, y, roi, lam)       # CE + lam * || A * d/dx sum_k log p_k ||^2
    gradmask_loss(model, x, y, roi, lam)  # CE + lam * || A * d(z_1 - z_0)/dx ||^2
    actdiff_loss(model, x, y, roi, lam)   # CE + lam * || f(x) - f(x with the outside replaced) ||^2
"""

from course_lib.confounders.actdiff import actdiff_loss, masked_copy
from course_lib.confounders.gradient_reversal import GradReverse, grad_reverse, lambda_schedule
from course_lib.confounders.gradmask import gradmask_loss
from course_lib.confounders.range_normalisation import range_normalise
from course_lib.confounders.rrr import rrr_loss
from course_lib.confounders.saliency import input_gradient, integrated_gradients, saliency_in_roi
from course_lib.confounders.subspace_alignment import SubspaceAlignment

__all__ = ["actdiff_loss", "masked_copy", "GradReverse", "grad_reverse", "lambda_schedule", "gradmask_loss",
           "range_normalise", "rrr_loss", "input_gradient", "integrated_gradients", "saliency_in_roi",
           "SubspaceAlignment"]
