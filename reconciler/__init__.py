"""GitOps for the MLflow Model Registry: pins in git decide which model version serves where."""
