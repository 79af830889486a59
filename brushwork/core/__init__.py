"""Infrastructure every stage uses: configs, presets, errors and exits, files and storage, progress and log lines,
the process group, the schemas of records read back."""
