"""Procedurally drawn facial-expression videos: the embedded default dataset.

Every clip shows one randomly generated person (face shape, skin tone, hair, eyes, lips, clothes)
in front of a random background under random lighting, with small head motion, blinks and gaze
shifts.  The face is animated by FACS-like action units (AUs), each a geometric deformation of the
drawn features, switched on and off with an onset -> apex -> offset time course.  The seven DFEW
classes differ only by which AUs fire and by their dynamics (see ``CLASS_AUS`` / ``CLASS_TIMING``);
everything else (identity, motion, lighting, background, noise) is nuisance variation.

``generate_synthetic_dataset`` writes labeled clips (with k-fold split files) and unlabeled
"talking face" clips (random AUs, speech-like mouth motion) for masked-autoencoder pre-training.
Rendering is deterministic for a seed: each clip draws from its own ``SeedSequence([seed, kind,
index])``, so the output does not depend on the number of worker processes.

Only numpy and OpenCV are used.  See docs/synthetic.md.

It lives with the datasets because it is one: the registry's ``synthetic`` set, written in the
split-file format every reader here takes. Three modules: ``spec`` (classes, AUs and the random
choices of a clip), ``render`` (the pixels) and ``writer`` (files, folds, ``meta.json``).
"""
from .render import make_clip, render_clip
from .spec import (AU_NAMES, AUS, CLASS_AUS, CLASS_TIMING, LABEL_NAMES, ClipSpec, RenderStyle,
                   au_profile, sample_clip_spec)
from .writer import DEFAULTS, generate_synthetic_dataset, preview_grid

__all__ = ['AU_NAMES', 'AUS', 'CLASS_AUS', 'CLASS_TIMING', 'LABEL_NAMES', 'DEFAULTS', 'ClipSpec',
           'RenderStyle', 'au_profile', 'sample_clip_spec', 'render_clip', 'make_clip',
           'generate_synthetic_dataset', 'preview_grid']
