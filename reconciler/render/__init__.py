"""Every output shape, by subject: text for terminals, markdown for reviews, JSON for machines.
Pure: each function returns a string; only the CLI prints."""
