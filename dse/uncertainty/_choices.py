"""The choices of ``dse sensitivity`` (here so that the command line reads them without
importing the model)."""

METHODS = ("sobol", "morris")
"""Global sensitivity methods (SALib)."""
SCALES = ("log", "linear")
"""Scales on which the objectives' variance is decomposed."""
