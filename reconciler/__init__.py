"""GitOps for the MLflow Model Registry: pins in git decide which model version serves where."""

# The one version source: the package metadata (pyproject.toml reads it through hatch), `reconciler
# --version`, and what `reconciler init` pins a promotion repository's action and hook to.
__version__ = "0.1.0"
