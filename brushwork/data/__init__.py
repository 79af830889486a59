"""Images and datasets: validation, shards (writing, reading, the training stream), synthetic data, downloads and
released weights."""
