"""Training of self-supervised methods: config, data pipeline glue, trainer, checkpoints."""
