"""Every command's config: frozen dataclasses of typed, bounded fields (no torch imports, so --help is fast).

One module per stage: ``data`` (synth, check, download, pretrained, shard), ``train`` (CycleGAN, fast
style and what their loops share), ``gatys`` (the runner and its figures), ``eval`` (translate,
stylize, grids, plots, FID, survey) and ``bench``.
"""
