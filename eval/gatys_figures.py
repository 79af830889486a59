#!/usr/bin/env python3
"""The paper's Gatys figures: Fig. 3 (α/β × style-layer sweep) and Fig. 4 (total loss vs iteration).

  python eval/gatys_figures.py fig3 --content photo.jpg --style scream.jpg --out figs/ [--preset paper]
        [--ratios 1e-5,1e-6,1e-7,1e-8] [--depths 3,4,5] [--image_size 256] [--iterations 300] [--random_vgg]
  python eval/gatys_figures.py fig4 renders/photo__scream.json [more.json ...] --out figs/    # figs/fig4.png

fig3 renders the whole grid as ONE batched job (one pair per cell, with per-pair α/β and style
layers conv_1..conv_k), writes each cell under OUT/cells/ (reruns skip finished cells), then
assembles OUT/fig3.png: the content and style images in the header row, the ratios above the
columns and the layer sets beside the rows. It takes train/gatys.py's render settings too
(not --pairs, --part, --parts: the cells are its own pairs).

fig4 plots the total loss at every evaluation from the runner's per-pair JSON files.
"""

import sys

from brushwork import cli
from brushwork.schemas.gatys import Fig3Config, Fig4Config


def fig3(cfg: Fig3Config) -> int:
    from brushwork.gatys import gatys_figures  # torch: imported once the flags are good

    return gatys_figures.fig3(cfg)


def fig4(cfg: Fig4Config) -> int:
    from brushwork.gatys import gatys_figures

    return gatys_figures.fig4(cfg)


COMMANDS = {"fig3": cli.Command(Fig3Config, fig3, Fig3Config.__doc__ + "\n\n" + cli.subcommand_doc(__doc__, "fig3"), presets="gatys",
                                default_preset="paper"),
            "fig4": cli.Command(Fig4Config, fig4, Fig4Config.__doc__ + "\n\n" + cli.subcommand_doc(__doc__, "fig4"))}

if __name__ == "__main__":
    sys.exit(cli.main(COMMANDS, doc=__doc__))
