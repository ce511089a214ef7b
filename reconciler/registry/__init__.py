"""Registry port (`Registry`) and its two implementations: MLflow and an in-memory fake."""
