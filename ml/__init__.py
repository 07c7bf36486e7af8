"""The training engine: datasets, models, the train loop, checkpoints and inference preprocessing.

Imports torch, torchvision and pydantic only, so it runs from a notebook or the command line
with no server (see ../shared/STYLE.md).
"""
