"""``python -m brushwork.pretrained``: the command that fetches released weights by name (its library is
``brushwork.data.pretrained``; the library never imports the CLI, this entry point does)."""

if __name__ == "__main__":
    from brushwork.cli import Command, main
    from brushwork.data.pretrained import __doc__ as usage
    from brushwork.data.pretrained import run
    from brushwork.schemas.data import PretrainedConfig

    raise SystemExit(main(Command(PretrainedConfig, run, usage), prog="python -m brushwork.pretrained"))
