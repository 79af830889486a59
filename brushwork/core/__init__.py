"""Infrastructure every stage uses: configs, errors, files and storage, progress and log lines, the process group, the schemas of records read back."""
