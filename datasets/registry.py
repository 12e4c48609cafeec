"""The dataset registry: the one place the rest of the code asks what a dataset is.

Each entry names the task type, the label (or regression target) names in the official order, the
number of model outputs, the folds of the paper's protocol and the metrics the paper reports.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

CLASSIFICATION = "classification"
REGRESSION = "regression"
PRETRAIN = "pretrain"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    task: str                      # 'classification' | 'regression' | 'pretrain'
    label_names: Tuple[str, ...]   # class names (index order) or regression target names
    folds: Tuple[str, ...]         # fold names of the paper's protocol, e.g. ('1', ..., '5')
    metrics: Tuple[str, ...]       # names of functions in engine.metrics, in report order
    protocol: str = ""             # one line describing the evaluation protocol
    val_is_test: bool = False      # the published splits have no validation split distinct from test
    pool_folds: bool = True        # cross-validated: pool predictions of all folds before the metric
    video_level_key: Optional[str] = None  # group clips into videos by this key (AVCAffe)
    input_crop: Optional[Tuple[int, int, int, int]] = None  # fixed (top, bottom, left, right) crop
    output_activation: str = "none"
    paper_results: Dict[str, float] = field(default_factory=dict)
    # the authors' README for their released fine-tuned checkpoints: fold -> metric -> value (their
    # "Total (Reproduced)" is the mean of these; paper_results is the paper's pooled number)
    released_results: Dict[str, Dict[str, float]] = field(default_factory=dict)

    @property
    def num_outputs(self) -> int:
        return len(self.label_names)

    @property
    def is_classification(self) -> bool:
        return self.task == CLASSIFICATION

    @property
    def is_regression(self) -> bool:
        return self.task == REGRESSION


_CLS_METRICS = ("uar", "war")
_FOLDS5 = tuple(str(i) for i in range(1, 6))

DFEW_LABELS = ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")

_REGISTRY: Dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> DatasetInfo:
    key = info.name.lower()
    if key in _REGISTRY:
        raise ValueError(f"dataset {info.name!r} is registered twice")
    _REGISTRY[key] = info
    return info


register(DatasetInfo(
    "voxceleb2", PRETRAIN, (), ("dev",), (),
    protocol="unlabeled pre-training set (dev split); dummy label 0 in split files",
    input_crop=(0, 160, 32, 192)))
register(DatasetInfo(
    "dfew", CLASSIFICATION, DFEW_LABELS, _FOLDS5, _CLS_METRICS,
    protocol="5-fold, predictions of all folds pooled", val_is_test=True,
    paper_results={"uar": 62.83, "war": 74.27},
    released_results={"1": {"uar": 63.63, "war": 75.31}, "2": {"uar": 58.82, "war": 71.68},
                      "3": {"uar": 64.88, "war": 74.96}, "4": {"uar": 63.73, "war": 74.65},
                      "5": {"uar": 68.39, "war": 77.44}}))
register(DatasetInfo(
    "ferv39k", CLASSIFICATION, DFEW_LABELS, ("official",), _CLS_METRICS,
    protocol="official train/test split", val_is_test=True, pool_folds=False,
    paper_results={"uar": 42.14, "war": 52.29},
    released_results={"official": {"uar": 43.05, "war": 52.86}}))
register(DatasetInfo(
    "mafw", CLASSIFICATION,
    ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise", "contempt",
     "anxiety", "helplessness", "disappointment"),
    _FOLDS5, _CLS_METRICS, protocol="5-fold, predictions of all folds pooled", val_is_test=True,
    paper_results={"uar": 41.19, "war": 54.28},
    released_results={"1": {"uar": 38.40, "war": 49.10}, "2": {"uar": 40.94, "war": 53.95},
                      "3": {"uar": 46.27, "war": 59.68}, "4": {"uar": 47.78, "war": 61.30},
                      "5": {"uar": 44.17, "war": 57.56}}))
register(DatasetInfo(
    "crema-d", CLASSIFICATION, ("anger", "disgust", "fear", "happy", "neutral", "sad"),
    _FOLDS5, _CLS_METRICS, protocol="5-fold subject-independent (actors), pooled",
    val_is_test=True, paper_results={"uar": 77.31, "war": 77.37}))
register(DatasetInfo(
    "ravdess", CLASSIFICATION,
    ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
    tuple(str(i) for i in range(1, 7)), _CLS_METRICS,
    protocol="6-fold subject-independent (4 actors per fold), speech video-only, pooled",
    val_is_test=True, paper_results={"uar": 75.15, "war": 75.01}))
register(DatasetInfo(
    "enterface05", CLASSIFICATION, ("anger", "disgust", "fear", "happiness", "sadness", "surprise"),
    _FOLDS5, _CLS_METRICS, protocol="5-fold subject-independent, pooled", val_is_test=True,
    paper_results={"uar": 60.58, "war": 60.54}))
register(DatasetInfo(
    "werewolf-xl", REGRESSION, ("arousal", "valence", "dominance"), _FOLDS5, ("ccc", "pcc"),
    protocol="5-fold session-independent (sessions 1-6, 7-12, ...), speaker clips, pooled",
    val_is_test=True,
    paper_results={"ccc_arousal": 0.1896, "ccc_valence": 0.6427, "ccc_dominance": 0.2969,
                   "pcc_arousal": 0.2351, "pcc_valence": 0.6711, "pcc_dominance": 0.3461}))
_AVC_AROUSAL = ("excited", "wide-awake", "neutral", "dull", "calm")
_AVC_VALENCE = ("pleasant", "pleased", "neutral", "unsatisfied", "unpleasant")
register(DatasetInfo(
    "avcaffe-arousal", CLASSIFICATION, _AVC_AROUSAL, ("official",), ("weighted_f1",),
    protocol="official 86/20 participant split; clip scores averaged per participant x task",
    val_is_test=True, pool_folds=False, video_level_key="participant_task",
    paper_results={"weighted_f1": 40.36}))
register(DatasetInfo(
    "avcaffe-valence", CLASSIFICATION, _AVC_VALENCE, ("official",), ("weighted_f1",),
    protocol="official 86/20 participant split; clip scores averaged per participant x task",
    val_is_test=True, pool_folds=False, video_level_key="participant_task",
    paper_results={"weighted_f1": 41.49}))
register(DatasetInfo(
    "chalearn-fi", REGRESSION,
    ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"),
    ("official",), ("ccc", "acc"),
    protocol="official 6000/2000/2000 train/validation/test", val_is_test=False,
    pool_folds=False, output_activation="sigmoid",
    paper_results={"ccc_mean": 0.6645, "acc_mean": 0.9175}))
register(DatasetInfo(
    "synthetic", CLASSIFICATION, DFEW_LABELS, _FOLDS5, _CLS_METRICS,
    protocol="embedded procedurally drawn facial videos, k folds, pooled", val_is_test=False))
register(DatasetInfo(
    "synthetic-pretrain", PRETRAIN, (), ("all",), (),
    protocol="embedded unlabeled talking-face clips"))

ALIASES = {"cremad": "crema-d", "enterface": "enterface05", "werewolf": "werewolf-xl",
           "chalearn": "chalearn-fi", "first-impressions": "chalearn-fi",
           "avcaffe_arousal": "avcaffe-arousal", "avcaffe_valence": "avcaffe-valence",
           "werewolf_xl": "werewolf-xl", "crema_d": "crema-d", "chalearn_fi": "chalearn-fi"}


def dataset_names() -> List[str]:
    return sorted(_REGISTRY)


def get_dataset_info(name: str) -> DatasetInfo:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in _REGISTRY:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")
    return _REGISTRY[key]
