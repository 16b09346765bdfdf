"""Training the shipped models, the skip-set search and the model cards."""
