"""Chapter 3: counting cells, one idea per module.

Data:
    :mod:`~course_lib.counting.synthetic_cells`   fluorescence cells with dots (easy, clustered, shifted lighting)
    :mod:`~course_lib.counting.synthetic_nuclei`  H&E-like nuclei of three classes with dots per class
    :mod:`~course_lib.counting.synthetic_wells`   a 96-well plate over time: growth per treatment, well images
    :mod:`~course_lib.counting.datasets`          VGG cells, BBBC005, bone marrow, adipocytes: dots and counts
    :mod:`~course_lib.counting.training_data`     one Dataset of (image, target) pairs for every net; lighting
    :mod:`~course_lib.counting.synthetic_vgg`     VGG-cells-like images in the real set's file layout (CPU recipe)

Methods:

    :mod:`~course_lib.counting.classic`     threshold -> watershed -> count, and count errors (MAE, relative, bias)
    :mod:`~course_lib.counting.cell_size`   the cells' radius from an image and its dots (sigma of a new target)
    :mod:`~course_lib.counting.density`     Gaussian density targets (sum = count), Count-ception targets, the L1 loss
    :mod:`~course_lib.counting.models`      density U-Net, Count-ception net
    :mod:`~course_lib.counting.training`    the training loop (selection on validation), predicted counts
    :mod:`~course_lib.counting.steady_training`  warm-up, cosine decay, weight averaging: the VGG cells CPU recipe
    :mod:`~course_lib.counting.peaks`       cells as density peaks, one-to-one matching, localisation F1
    :mod:`~course_lib.counting.multiclass`  one density per class: lambda-weighted loss, max-over-channels classes
    :mod:`~course_lib.counting.experiment`  the chapter's comparisons, one call each
    :mod:`~course_lib.counting.vgg_protocol`  one draw of the VGG cells protocol with the steady recipe

The lecture in four lines::

    target = density_map(dots, image.shape, sigma=2.0)     # F_gt(x, y) = sum_i N([x, y]; [x_i, y_i], sigma^2)
    loss = l1_density_loss(model(images), targets)         # L = sum_{x, y} |F_gt(x, y) - F(I)(x, y)|
    count = count_from_density(density)                    # count = sum_{x, y} F(I)(x, y)
    classes = classify_cells(maps, find_cells(maps[0]))    # max prediction over the class channels per cell

:mod:`~course_lib.counting.experiment` is imported on demand (it pulls in the synthetic data generators):
``from course_lib.counting.experiment import run_counting_experiment``.
"""

from course_lib.counting.cell_size import cell_radii, cell_radius_from_dots, cell_regions
from course_lib.counting.classic import ClassicResult, classic_count, count_errors
from course_lib.counting.density import (
    count_from_density,
    countception_target,
    density_map,
    l1_density_loss,
    multiclass_density_maps,
    naive_density_map,
    peak_height,
)
from course_lib.counting.models import CountCeptionNet, DensityFCN, percentile_normalize
from course_lib.counting.multiclass import (
    MultiClassDensityLoss,
    classify_cells,
    confusion_matrix,
    match_and_classify,
    per_class_counts,
)
from course_lib.counting.peaks import Matching, find_cells, localisation_f1, localisation_scores, match_points
from course_lib.counting.training import predict_counts, predict_outputs, train_density_model
from course_lib.counting.training_data import DensityDataset, Lighting

__all__ = [
    # classic pipeline
    "ClassicResult", "classic_count", "count_errors",
    # targets
    "density_map", "naive_density_map", "multiclass_density_maps", "countception_target", "count_from_density",
    "peak_height",
    # the cell size of a new microscope (sigma of its targets)
    "cell_radius_from_dots", "cell_radii", "cell_regions",
    # models and training
    "DensityFCN", "CountCeptionNet", "l1_density_loss", "Lighting", "DensityDataset", "percentile_normalize",
    "train_density_model", "predict_outputs", "predict_counts",
    # localisation
    "find_cells", "Matching", "match_points", "localisation_f1", "localisation_scores",
    # multi-class
    "MultiClassDensityLoss", "classify_cells", "per_class_counts", "confusion_matrix", "match_and_classify",
]
