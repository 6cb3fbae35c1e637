"""Reference code for the course *Medical Imaging with Deep Learning*.

The package is small on purpose: each module holds one idea and reads top to
bottom. Start with :mod:`course_lib.config` (modes, devices, seeds),
:mod:`course_lib.training` (the one training loop every chapter uses) and
:mod:`course_lib.metrics` (precision, IoU, Dice, soft Dice loss, bootstrap CIs).
"""

from course_lib._meta import COLAB_INSTALL, REPO_URL

__version__ = "0.1.0"
__all__ = ["COLAB_INSTALL", "REPO_URL", "__version__"]
