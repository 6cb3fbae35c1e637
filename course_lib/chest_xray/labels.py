"""Label and view tables of four chest X-ray datasets, parsed into one tidy frame; view pairing; patient split.

Each reader returns one row per image with the columns

    path        image path relative to the dataset root (posix string)
    patient_id  str
    study_id    str (one visit: the images taken together and described by one report)
    view        normalised projection, one of :data:`VIEWS`; ``view_raw`` keeps the dataset's own value
    <label>...  one float column per label: 1 = present, 0 = absent, NaN = unknown (not mentioned/uncertain)

(plus ``label_source`` for PadChest and ``split`` for MIMIC when the split file is given). How each dataset
says "unknown" differs, and that is most of the label-noise lesson:

* **NIH ChestX-ray14** (Wang et al. 2017): ``Finding Labels`` lists the positive findings, ``|``-separated,
  mined from reports by NLP; anything not listed is 0 and ``No Finding`` means all 14 are 0, so there is no
  NaN. Views are ``PA`` or ``AP`` only: NIH has **no lateral views**.
* **PadChest** (Bustos et al. 2020): ``Labels`` is a Python-literal list of ~190 findings (27 % read by
  physicians, the rest by a neural network, see ``label_source``). Listed = 1, not listed = 0. Rows whose list
  holds nothing but ``''``, ``'exclude'`` or ``'unchanged'`` get NaN (the report says nothing usable);
  rows whose list cannot be parsed (``NaN`` in the CSV: 103 rows) are skipped and counted in
  ``frame.attrs["skipped_rows"]``. :data:`PADCHEST_LABELS` is the default selection; ``labels="all"`` keeps all.
* **CheXpert** (Irvin et al. 2019) and **MIMIC-CXR** (Johnson et al. 2019): 14 observations from a rule-based
  labeler, each 1 (positive), 0 (negative), -1 (uncertain, e.g. "may represent pneumonia") or blank (not
  mentioned). The uncertainty policy is an explicit argument, after Irvin et al.: ``uncertain="ignore"``
  (U-Ignore: -1 -> NaN, masked out of the loss), ``"ones"`` (U-Ones: -1 -> 1) or ``"zeros"`` (U-Zeros: -1 -> 0).
  Blank means unknown by default (``blank="nan"``); ``blank="zeros"`` reads it as negative, as most papers do.

:func:`pair_views` turns an image table into one row per study with a PA and a lateral image and explicit
``has_pa``/``has_lateral`` flags (the missing-view case). :func:`course_lib.data.splits.patient_split` splits by
patient, never by image.

References
----------
Wang et al. (2017) ChestX-ray8, CVPR. Bustos et al. (2020) PadChest, Med Image Anal 66. Irvin et al. (2019)
CheXpert, AAAI. Johnson et al. (2019) MIMIC-CXR-JPG, arXiv:1901.07042. Bertrand et al. (2019) Do lateral views
help automated chest X-ray predictions?, MIDL.
"""

from __future__ import annotations

import ast
import warnings

import numpy as np
import pandas as pd

__all__ = ["VIEWS", "LATERAL_VIEWS", "META_COLUMNS", "NIH_LABELS", "CHEXPERT_LABELS", "PADCHEST_LABELS",
           "read_nih", "read_padchest", "padchest_label_counts", "read_chexpert", "read_mimic", "label_columns",
           "pair_views"]

VIEWS = ("PA", "AP", "AP_SUPINE", "LATERAL", "LL", "OTHER", "UNKNOWN")
LATERAL_VIEWS = ("LATERAL", "LL")  # LL: left lateral, the standard lateral (left side against the detector)
META_COLUMNS = ("path", "patient_id", "study_id", "view", "view_raw", "label_source", "split")

NIH_LABELS = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
              "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia")
CHEXPERT_LABELS = ("No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
                   "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
                   "Pleural Other", "Fracture", "Support Devices")  # MIMIC-CXR uses the same 14 observations
# The findings shared with NIH/CheXpert, and frequent ones that the lateral view shows best (Bertrand et al. 2019:
# flattened diaphragm, hiatal hernia, kyphosis, COPD signs, air trapping). Names exactly as PadChest spells them.
PADCHEST_LABELS = ("cardiomegaly", "pleural effusion", "pneumonia", "atelectasis", "consolidation", "infiltrates",
                   "nodule", "pulmonary mass", "pneumothorax", "pulmonary edema", "pulmonary fibrosis", "emphysema",
                   "pleural thickening", "COPD signs", "air trapping", "flattened diaphragm", "hiatal hernia",
                   "kyphosis", "scoliosis", "aortic elongation", "interstitial pattern", "alveolar pattern",
                   "costophrenic angle blunting", "bronchiectasis", "hilar enlargement")
PADCHEST_UNINFORMATIVE = frozenset({"", "exclude", "unchanged"})

_PADCHEST_VIEWS = {"PA": "PA", "L": "LATERAL", "AP": "AP", "AP_horizontal": "AP_SUPINE", "UNK": "UNKNOWN"}
_MIMIC_VIEWS = {"PA": "PA", "AP": "AP", "LATERAL": "LATERAL", "LL": "LL"}  # AP AXIAL, LAO, SWIMMERS, ... -> OTHER


def _views(raw: pd.Series, mapping: dict) -> pd.Series:
    """Map raw view names through ``mapping``; missing -> UNKNOWN, anything else -> OTHER."""
    view = raw.map(mapping).fillna("OTHER")
    return view.where(raw.notna() & (raw.astype(str).str.strip() != ""), "UNKNOWN").astype(str)


def _read_csv(csv, columns, name: str) -> pd.DataFrame:
    try:
        frame = pd.read_csv(csv, usecols=lambda c: c in columns, dtype=str, keep_default_na=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{name} table {csv} not found") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{csv} is not the {name} table: columns {missing} are missing")
    return frame


def _tidy(path, patient, study, view, view_raw, labels: pd.DataFrame, **extra) -> pd.DataFrame:
    meta = pd.DataFrame({"path": path, "patient_id": patient, "study_id": study, "view": view,
                         "view_raw": view_raw, **extra}).reset_index(drop=True)
    return pd.concat([meta, labels.reset_index(drop=True).astype(np.float64)], axis=1)


def read_nih(csv, image_dir: str = "images") -> pd.DataFrame:
    """NIH ChestX-ray14 ``Data_Entry_2017_v2020.csv`` (112,120 images) as a tidy frame.

    Parameters
    ----------
    csv : path
    image_dir : str
        Folder of the PNGs relative to the dataset root; ``path`` is ``<image_dir>/<Image Index>``.

    Returns
    -------
    DataFrame
        ``study_id`` is the image name without ``.png`` (each follow-up visit has one image). Labels: the
        14 :data:`NIH_LABELS`, each 0 or 1.

    Raises
    ------
    ValueError
        A label outside the 14 findings and ``No Finding`` (names it and its row).
    """
    raw = _read_csv(csv, ["Image Index", "Finding Labels", "Patient ID", "View Position"], "NIH Data_Entry")
    findings = raw["Finding Labels"].fillna("").str.split("|")
    exploded = findings.explode().str.strip()
    unknown = exploded[~exploded.isin((*NIH_LABELS, "No Finding"))]
    if len(unknown):
        row = unknown.index[0]
        raise ValueError(f"unknown NIH label {unknown.iloc[0]!r} in row {row} ({raw['Image Index'][row]})")
    labels = pd.DataFrame({name: exploded.eq(name).groupby(level=0).any() for name in NIH_LABELS})
    view_raw = raw["View Position"]
    return _tidy(image_dir.rstrip("/") + "/" + raw["Image Index"], raw["Patient ID"], raw["Image Index"].str[:-4],
                 _views(view_raw, {"PA": "PA", "AP": "AP"}), view_raw, labels)


def _parse_list(text):
    """A PadChest label cell -> list of stripped names, or None if it is not a list of strings."""
    if not isinstance(text, str):
        return None
    try:
        value = ast.literal_eval(text)  # literals only: no code runs, unlike eval
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        return None
    return [v.strip() for v in value]


def _read_padchest_raw(csv):
    raw = _read_csv(csv, ["ImageID", "ImageDir", "StudyID", "PatientID", "Projection", "MethodLabel", "Labels"],
                    "PadChest")
    parsed = {text: _parse_list(text) for text in raw["Labels"].dropna().unique()}  # ~1 in 6 rows is unique
    lists = raw["Labels"].map(lambda text: parsed.get(text) if isinstance(text, str) else None)
    keep = lists.notna()
    return raw[keep].reset_index(drop=True), lists[keep].reset_index(drop=True), int((~keep).sum())


def _by_frequency(names: pd.Series) -> pd.Series:
    counts = names[names.notna() & (names != "")].value_counts()
    order = sorted(counts.index, key=lambda name: (-counts[name], name))  # ties by name: a stable order
    return counts[order]


def padchest_label_counts(csv) -> pd.Series:
    """Number of PadChest images listing each label (the full vocabulary, 193 names), most frequent first."""
    _, lists, _ = _read_padchest_raw(csv)
    return _by_frequency(lists.map(set).explode())


def read_padchest(csv, labels=PADCHEST_LABELS) -> pd.DataFrame:
    """PadChest's label table (``PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv``) as a tidy frame.

    Parameters
    ----------
    csv : path
    labels : sequence of str or "all"
        Label columns to build (PadChest spelling); ``"all"``: every label in the table, most frequent first.

    Returns
    -------
    DataFrame
        ``path`` is ``<ImageDir>/<ImageID>``; ``view`` from ``Projection`` (``PA``, ``L`` -> ``LATERAL``,
        ``AP``, ``AP_horizontal`` -> ``AP_SUPINE``, ``COSTAL``/``EXCLUDE`` -> ``OTHER``, ``UNK`` -> ``UNKNOWN``);
        ``label_source`` is ``Physician`` or ``RNN_model``. ``frame.attrs["skipped_rows"]``: rows dropped
        because their label list could not be parsed.

    Warns
    -----
    UserWarning
        A requested label that no row lists (a misspelling gives an all-zero column otherwise).
    """
    raw, lists, skipped = _read_padchest_raw(csv)
    sets = lists.map(set)
    if isinstance(labels, str):
        if labels != "all":
            raise ValueError(f"`labels` must be a sequence of PadChest label names or 'all', got {labels!r}")
        labels = [n for n in _by_frequency(sets.explode()).index if n not in PADCHEST_UNINFORMATIVE]
    labels = list(labels)
    names = sets.explode()
    never = sorted(set(labels) - set(names.dropna()))
    if never:  # most likely a misspelt name: its column would silently be all zeros
        warnings.warn(f"labels {never} never occur in {csv}; their columns are all 0 (PadChest spells labels in "
                      "lower case, e.g. 'pleural effusion'; see padchest_label_counts)", stacklevel=2)
    names = names[names.isin(labels)]  # one entry per (row, listed label)
    onehot = np.zeros((len(raw), len(labels)), dtype=np.float64)  # (N, L)
    onehot[names.index.to_numpy(), pd.Categorical(names, categories=labels).codes] = 1.0
    onehot[sets.map(lambda s: s <= PADCHEST_UNINFORMATIVE).to_numpy()] = np.nan  # nothing usable said
    onehot = pd.DataFrame(onehot, columns=labels)
    frame = _tidy(raw["ImageDir"] + "/" + raw["ImageID"], raw["PatientID"], raw["StudyID"],
                  _views(raw["Projection"], _PADCHEST_VIEWS), raw["Projection"], onehot,
                  label_source=raw["MethodLabel"])
    frame.attrs["skipped_rows"] = skipped
    return frame


def _uncertainty(values: pd.DataFrame, uncertain: str, blank: str, source) -> pd.DataFrame:
    """Apply the CheXpert uncertainty policy to columns of 1 / 0 / -1 / NaN."""
    if uncertain not in ("ignore", "ones", "zeros"):
        raise ValueError(f"`uncertain` must be 'ignore' (U-Ignore), 'ones' (U-Ones) or 'zeros' (U-Zeros), "
                         f"got {uncertain!r}")
    if blank not in ("nan", "zeros"):
        raise ValueError(f"`blank` must be 'nan' (not mentioned = unknown) or 'zeros', got {blank!r}")
    values = values.apply(pd.to_numeric, errors="coerce").astype(np.float64)
    bad = values.notna() & ~values.isin([1.0, 0.0, -1.0])
    if bad.any().any():
        column = bad.any().idxmax()
        raise ValueError(f"{source}: column {column!r} holds {values[column][bad[column]].iloc[0]:g}; "
                         "expected 1, 0, -1 or blank")
    out = values.mask(values == -1.0, {"ignore": np.nan, "ones": 1.0, "zeros": 0.0}[uncertain])
    return out.mask(values.isna(), 0.0) if blank == "zeros" else out  # uncertain-ignored stays NaN


def read_chexpert(csv, uncertain: str = "ignore", blank: str = "nan") -> pd.DataFrame:
    """CheXpert ``train.csv``/``valid.csv`` as a tidy frame.

    Parameters
    ----------
    csv : path
    uncertain : {"ignore", "ones", "zeros"}
        Policy for -1 (module docstring).
    blank : {"nan", "zeros"}
        Policy for an empty cell (not mentioned).

    Returns
    -------
    DataFrame
        ``path`` as in the CSV (``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg``, relative
        to the folder holding ``CheXpert-v1.0-small``); ``patient_id`` ``patient00001``; ``study_id``
        ``patient00001/study1`` (study numbers restart for every patient). ``view``: ``LATERAL`` when
        ``Frontal/Lateral`` is ``Lateral``, else the ``AP/PA`` value (``PA``/``AP``; the rare ``LL``/``RL``
        on frontal rows -> ``OTHER``).
    """
    raw = _read_csv(csv, ["Path", "Frontal/Lateral", "AP/PA", *CHEXPERT_LABELS], "CheXpert")
    ids = raw["Path"].str.extract(r"(patient\d+)/(study\d+)/")
    if ids.isna().any().any():
        row = int(ids.isna().any(axis=1).idxmax())
        raise ValueError(f"{csv}: row {row} path {raw['Path'][row]!r} has no patientNNNNN/studyN/ part")
    lateral = raw["Frontal/Lateral"].eq("Lateral")
    frontal = _views(raw["AP/PA"], {"PA": "PA", "AP": "AP"})
    view = frontal.where(~lateral, "LATERAL").where(raw["Frontal/Lateral"].notna(), "UNKNOWN")
    view_raw = raw["Frontal/Lateral"].fillna("") + "/" + raw["AP/PA"].fillna("")
    labels = _uncertainty(raw[list(CHEXPERT_LABELS)], uncertain, blank, csv)
    return _tidy(raw["Path"], ids[0], ids[0] + "/" + ids[1], view, view_raw, labels)


def read_mimic(metadata_csv, chexpert_csv, split_csv=None, *, uncertain: str = "ignore",
               blank: str = "nan") -> pd.DataFrame:
    """MIMIC-CXR-JPG v2.0.0: ``mimic-cxr-2.0.0-metadata.csv(.gz)`` joined with ``-chexpert.csv(.gz)``.

    Parameters
    ----------
    metadata_csv, chexpert_csv : path
        One row per image (``dicom_id``, ``subject_id``, ``study_id``, ``ViewPosition``, ...); one row per
        study (``subject_id``, ``study_id`` and the 14 :data:`CHEXPERT_LABELS`, values 1/0/-1/blank).
    split_csv : path, optional
        ``mimic-cxr-2.0.0-split.csv(.gz)`` (``dicom_id``, ``split`` = train/validate/test): adds ``split``.
    uncertain, blank : str
        As in :func:`read_chexpert`.

    Returns
    -------
    DataFrame
        ``path`` = ``files/p<first 2 digits>/p<subject_id>/s<study_id>/<dicom_id>.jpg``. Studies without a
        row in the label table (the labeler found no report section) get NaN labels, whatever ``blank`` is.
        ``view`` from ``ViewPosition``: ``PA``, ``AP``, ``LATERAL``, ``LL``; ``AP AXIAL``, ``LAO``,
        ``XTABLE LATERAL``, ... -> ``OTHER``; blank -> ``UNKNOWN``.
    """
    meta = _read_csv(metadata_csv, ["dicom_id", "subject_id", "study_id", "ViewPosition"], "MIMIC-CXR metadata")
    labels = _read_csv(chexpert_csv, ["subject_id", "study_id", *CHEXPERT_LABELS], "MIMIC-CXR chexpert")
    if labels.duplicated(["subject_id", "study_id"]).any():
        raise ValueError(f"{chexpert_csv}: a study appears twice; expected one row per (subject_id, study_id)")
    meta = meta.merge(labels, on=["subject_id", "study_id"], how="left", validate="many_to_one", indicator=True)
    unlabelled = (meta.pop("_merge") == "left_only").to_numpy()
    extra = {}
    if split_csv is not None:
        split = _read_csv(split_csv, ["dicom_id", "split"], "MIMIC-CXR split")
        extra["split"] = meta[["dicom_id"]].merge(split, on="dicom_id", how="left")["split"]
    subject, study = meta["subject_id"], meta["study_id"]
    path = "files/p" + subject.str[:2] + "/p" + subject + "/s" + study + "/" + meta["dicom_id"] + ".jpg"
    values = _uncertainty(meta[list(CHEXPERT_LABELS)], uncertain, blank, chexpert_csv)
    values[unlabelled] = np.nan  # no label row at all: unknown, whatever `blank` says about empty cells
    return _tidy(path, subject, study, _views(meta["ViewPosition"], _MIMIC_VIEWS), meta["ViewPosition"],
                 values, **extra)


def label_columns(frame: pd.DataFrame) -> list[str]:
    """The label columns of a tidy or paired frame: every column that is not metadata."""
    paired = ("pa_path", "lateral_path", "has_pa", "has_lateral")
    return [c for c in frame.columns if c not in META_COLUMNS and c not in paired]


def pair_views(frame: pd.DataFrame, labels=None, *, frontal=("PA",), lateral=LATERAL_VIEWS) -> pd.DataFrame:
    """One row per study: its PA image, its lateral image, and whether each exists.

    Parameters
    ----------
    frame : DataFrame
        A tidy frame from one of the readers.
    labels : sequence of str, optional
        Label columns to carry (default: all of them).
    frontal, lateral : sequence of str
        Which ``view`` values count as the PA and the lateral image. Add ``"AP"`` to ``frontal`` to accept AP.

    Returns
    -------
    DataFrame
        Columns ``patient_id``, ``study_id``, ``pa_path``, ``lateral_path`` (None when missing), ``has_pa``,
        ``has_lateral`` (bool), ``split`` if ``frame`` has one, then the labels. Only studies with at least one
        PA or lateral image appear, sorted by (patient, study). A study is keyed by (patient_id, study_id).

    Notes
    -----
    Rules, applied in this order: when a study has several PA (or lateral) images, the first by sorted
    ``path`` is used. A study's label is the maximum over its images ignoring NaN (positive if any image
    row says so; reports are per study, so the rows normally agree).

    Examples
    --------
    >>> frame = pd.DataFrame({"path": ["b.png", "a.png", "c.png", "d.png"], "patient_id": ["1", "1", "1", "2"],
    ...                       "study_id": ["s1", "s1", "s1", "s2"], "view": ["PA", "PA", "LATERAL", "PA"],
    ...                       "Effusion": [1.0, 1.0, 1.0, np.nan]})
    >>> pair_views(frame)[["study_id", "pa_path", "lateral_path", "has_lateral", "Effusion"]].to_dict("list")
    {'study_id': ['s1', 's2'], 'pa_path': ['a.png', 'd.png'], 'lateral_path': ['c.png', None], \
'has_lateral': [True, False], 'Effusion': [1.0, nan]}
    """
    missing = [c for c in ("path", "patient_id", "study_id", "view") if c not in frame.columns]
    if missing:
        raise ValueError(f"`frame` lacks the columns {missing}; build it with read_nih/read_padchest/...")
    labels = label_columns(frame) if labels is None else list(labels)
    absent = [c for c in labels if c not in frame.columns]
    if absent:
        raise ValueError(f"label columns {absent} are not in `frame`")
    key = ["patient_id", "study_id"]
    ordered = frame.sort_values("path", kind="stable")
    pa = ordered[ordered["view"].isin(frontal)].groupby(key)["path"].first().rename("pa_path")
    lat = ordered[ordered["view"].isin(lateral)].groupby(key)["path"].first().rename("lateral_path")
    studies = pa.index.union(lat.index).sort_values()
    paired = pd.DataFrame(index=studies).join(pa).join(lat).astype(object)
    paired = paired.where(paired.notna(), None)
    paired["has_pa"] = paired["pa_path"].notna()
    paired["has_lateral"] = paired["lateral_path"].notna()
    grouped = frame.groupby(key)
    if "split" in frame.columns:
        paired = paired.join(grouped["split"].first())
    paired = paired.join(grouped[labels].max()) if labels else paired
    return paired.reset_index()
