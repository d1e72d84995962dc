"""The ``agentflow`` program: ``python -m agentflow`` and the installed ``agentflow`` script.

The garbage collector is off while agentflow, typer and the command line are imported and built
(about a million allocations, none of them garbage); ``agentflow.cli.main`` freezes what start-up
made and turns it back on before the command runs (#19 item 1). A plain command line of a read view
(``agentflow metrics --since 7d``, ``agentflow show RUN``, ``agentflow status``, ``agentflow log --run RUN``) is run by ``agentflow.fastcli`` without importing typer at all
(and with the collector left off: such a view makes no cyclic garbage); any other goes to typer.
"""

import gc
import sys

FAST = (
    "metrics",
    "show",
    "status",
    "log",
)  # the commands of ``agentflow.fastcli.FAST`` (a test): other commands never import it


def main() -> None:
    gc.disable()
    if sys.argv[1:2] and sys.argv[1] in FAST:
        from agentflow.fastcli import run as run_fast

        code = run_fast(sys.argv[1:])
        if code is not None:
            sys.exit(code)
    from agentflow.cli import main as run

    run()


if __name__ == "__main__":
    main()
