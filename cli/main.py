"""`austack`, the root command group.

Subcommands live one per module in this package, each exporting `cli`, and are imported only
when invoked, so `austack --help` stays fast (no torch import) and a broken optional module
cannot take the others down. Library errors (`AustackError`) become one-line messages with a
non-zero exit here, at the boundary, and nowhere else; so does a write into a read-only or
full output folder that no library check caught first (OSError with its file name).
"""
from __future__ import annotations

import errno
import importlib

import click

from austack import __version__
from austack.errors import AustackError

# command name -> (module in this package, one-line help shown by `austack --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "Run the whole pipeline on built-in synthetic data and print a leaderboard."),
    "synth": ("synth", "Write a synthetic dataset in a real dataset's raw layout."),
    "inspect": ("inspect", "Summarise a raw distribution: subjects, sessions, frames, labels, anomalies."),
    "prepare": ("prepare", "Align every frame of a raw distribution into one HDF5 store."),
    "verify": ("verify", "Check a prepared store: schema, counts, labels, checksums."),
    "info": ("info", "Summarise a prepared store per subject and fold."),
    "bench": ("bench", "Train and evaluate an AU detector on a prepared store; record the result."),
    "predict": ("predict", "Per-frame AU predictions of a trained detector on images and videos."),
    "leaderboard": ("leaderboard", "Per-AU F1 of recorded results beside the published numbers."),
    "export": ("export", "Write a store as the training lists of another AU codebase."),
    "score": ("score", "Score another tool's per-frame AU CSV on a store's folds."),
    "rescore": ("rescore", "Recompute a run's metrics from its stored predictions."),
    "compare": ("compare", "Paired difference in mean F1 of two results, with a CI and p-value."),
    "study": ("study", "Studies: label noise on synthetic data; sweeps over any setting."),
    "plot": ("plot", "Figures: per-AU F1 bars with CIs, t-SNE of AU embeddings, PR curves."),
    "protocols": ("protocols", "List the versioned fold protocols, or show one."),
    "cite": ("cite", "Citations for a dataset, its protocol and austack."),
    "weights": ("weights", "Pretrained backbone weights: list, fetch into the cache, verify."),
    "list": ("listing", "List registered backbones, losses, readers or recipes."),
}


# errno of a failed file operation -> (what happened, the fix), for those no library check foresaw
OUTPUT_ERRNOS = {
    errno.EROFS: ("cannot write {}: the folder is on a read-only filesystem", "choose a writable output folder"),
    errno.EACCES: ("{}: permission denied", "fix its permissions or choose another folder"),
    errno.EPERM: ("{}: operation not permitted", "fix its permissions or choose another folder"),
    errno.ENOSPC: ("cannot write {}: no space left on the device", "make room there or choose another folder"),
    errno.EDQUOT: ("cannot write {}: disk quota exceeded", "make room there or choose another folder"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(n for n, (mod, _) in COMMANDS.items() if importlib.util.find_spec(f"austack.cli.{mod}"))

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"austack.cli.{COMMANDS[name][0]}")
        cmd = module.cli
        cmd.name = name
        return cmd

    def format_commands(self, ctx, formatter):
        rows = [(n, COMMANDS[n][1]) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AustackError as e:
            raise UserError(e) from None
        except OSError as e:   # an output folder that is read-only or full: one line naming it
            if e.errno not in OUTPUT_ERRNOS or not e.filename:
                raise
            what, fix = OUTPUT_ERRNOS[e.errno]
            raise click.ClickException(f"{what.format(e.filename)}; {fix}") from None
        except click.UsageError as e:
            raise wrapped_usage_error(e) from None
        except (KeyboardInterrupt, click.Abort):
            raise Interrupted(ctx.invoked_subcommand) from None


# Commands that pick up where an interrupted run stopped when run again as they were
RESUMING = {"demo": "", "bench": "", "study": "", "prepare": " with --resume"}
WIDTH = 80


class Interrupted(click.ClickException):
    """Ctrl-C: say what was kept and how to go on, instead of click's bare `Aborted!`."""

    exit_code = 130       # the shell's code for a command stopped by SIGINT

    def __init__(self, command: str | None):
        if command in RESUMING:
            text = f"interrupted; finished work is kept: re-run the same command{RESUMING[command]} to resume"
        else:
            text = "interrupted; nothing was resumed or kept half-written"
        super().__init__(text)

    def show(self, file=None) -> None:
        click.echo(f"\n{self.format_message()}", err=True)


def wrapped_usage_error(e: click.UsageError) -> click.UsageError:
    """Click's own error (a bad option value, a list of choices) wrapped to the terminal's
    80 columns, words kept whole; the usage line and the --help hint stay as click prints them."""
    import textwrap

    room, lines = WIDTH - len("Error: "), []
    for line in e.format_message().splitlines():     # click's own line breaks (choice lists) stay
        lines += [line] if len(line.expandtabs()) <= room else \
            textwrap.wrap(line, room, break_long_words=False, break_on_hyphens=False)
    out = click.UsageError(("\n" + " " * len("Error: ")).join(lines), ctx=e.ctx)
    out.exit_code = e.exit_code
    return out


class UserError(click.ClickException):
    """A library error shown as one line, with the exit code its class asks for."""

    def __init__(self, err: AustackError):
        super().__init__(str(err))
        self.exit_code = err.exit_code


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="austack")
def cli():
    """austack: prepare AU datasets, train and score detectors, compare with published numbers.

    \b
    Start with:  austack demo
    """
