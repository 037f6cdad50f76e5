"""Evaluation of explanations: localisation, faithfulness, perceptual and statistical tools.

Importing the package registers every occlusion strategy, ``ibo`` included (RePaint registers
it where it is defined, :mod:`xaistudy.evaluate.inpaint`).
"""

from xaistudy.evaluate import inpaint  # noqa: F401 (registers the ibo occlusion strategy)
