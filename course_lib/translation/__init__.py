"""Image-to-image translation with GANs (chapter 4), and how distribution matching erases or adds tumours.

    :mod:`~course_lib.translation.synthetic_brain`  FLAIR-like and T1-like slices with tumour masks; paired or
                                                    unpaired domains with a chosen share of tumour slices
    :mod:`~course_lib.translation.real_data`        a real slice in two contrasts (ITK), MSD Task01 and BraTS readers
    :mod:`~course_lib.translation.histogram`        histogram matching: one brightness curve, the unpaired baseline
    :mod:`~course_lib.translation.losses`           LSGAN, cycle-consistency and identity losses
    :mod:`~course_lib.translation.models`           ResNet generator, PatchGAN discriminator, history pool
    :mod:`~course_lib.translation.cyclegan`         one CycleGAN step, CycleGAN training, the paired L1 control
    :mod:`~course_lib.translation.classifier`       the referee: a tumour classifier trained on real T1 slices
    :mod:`~course_lib.translation.bias`             erased / hallucinated shares (by a referee or against the
                                                    true T1 and mask), intensity error in the tumour
    :mod:`~course_lib.translation.experiment`       the bias sweep over the target domain's tumour share
    :mod:`~course_lib.translation.figures`          the chapter's figures: contrasts, live samples, bias curves

The lecture in four lines::

    loss_d = lsgan_discriminator_loss(d_t(real_t), d_t(fake_t.detach()))    # reals -> 1, fakes -> 0
    loss_g = lsgan_generator_loss(d_t(g(real_f)))                           # fool the discriminator
    loss_g += 10 * cycle_consistency_loss(h(g(real_f)), real_f)             # there and back again
    rates = bias_rates(truth_calls(g(flair), t1, mask, thresholds), has_tumour)  # what happened to the tumours?

:mod:`~course_lib.translation.experiment` and :mod:`~course_lib.translation.real_data` are imported on demand.
"""

from course_lib.translation.bias import (
    BiasRates,
    TruthThresholds,
    bias_rates,
    contrast_recovered,
    dark_spot_area,
    fit_truth_thresholds,
    paint_in,
    paint_out,
    truth_calls,
    tumour_intensity_error,
)
from course_lib.translation.classifier import (
    ClassifierResult,
    TumourClassifier,
    train_tumour_classifier,
    tumour_scores,
    youden_threshold,
)
from course_lib.translation.cyclegan import (
    CycleGAN,
    TranslatorConfig,
    cyclegan_step,
    train_cyclegan,
    train_paired,
    translate,
)
from course_lib.translation.histogram import match_histograms
from course_lib.translation.losses import (
    LAMBDA_CYCLE,
    LAMBDA_IDENTITY,
    cycle_consistency_loss,
    identity_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from course_lib.translation.models import ImagePool, PatchDiscriminator, ResnetGenerator, from_gan_range, to_gan_range
from course_lib.translation.synthetic_brain import BrainConfig, BrainSlices, brain_slices, unpaired_domains

__all__ = [
    # data
    "BrainConfig", "BrainSlices", "brain_slices", "unpaired_domains",
    # the unpaired baseline, and the losses
    "match_histograms",
    "LAMBDA_CYCLE", "LAMBDA_IDENTITY", "lsgan_discriminator_loss", "lsgan_generator_loss", "cycle_consistency_loss",
    "identity_loss",
    # models and training
    "ResnetGenerator", "PatchDiscriminator", "ImagePool", "to_gan_range", "from_gan_range", "CycleGAN",
    "TranslatorConfig", "cyclegan_step", "train_cyclegan", "train_paired", "translate",
    # the referee and the measures
    "TumourClassifier", "ClassifierResult", "train_tumour_classifier", "tumour_scores", "youden_threshold",
    "BiasRates", "bias_rates", "tumour_intensity_error", "TruthThresholds", "fit_truth_thresholds", "truth_calls",
    "contrast_recovered", "dark_spot_area", "paint_out", "paint_in",
]
