"""The ``agentflow`` program: ``python -m agentflow`` and the installed ``agentflow`` script.

The garbage collector is off while agentflow, typer and the command line are imported and built
(about a million allocations, none of them garbage); ``agentflow.cli.main`` freezes what start-up
made and turns it back on before the command runs (#19 item 1).
"""

import gc


def main() -> None:
    gc.disable()
    from agentflow.cli import main as run

    run()


if __name__ == "__main__":
    main()
