"""What every analysis script does with bad input and with its output, in one place: one line on stderr naming what
and which value, exit code 2 (no traceback); HDF5 files opened or refused; a figure written where it was asked, its
directory created. Imported by plot_*.py (which run from this directory: Python puts a script's folder on its path)
and by benchmarks/peer/*.py (which put this directory on their path).
"""
import argparse
import os
import sys

PROG = os.path.basename(sys.argv[0])


def parser(doc):
    """The command line's parser from the script's docstring: its first paragraph is the description, the rest the
    epilog, kept as written."""
    paragraphs = doc.split("\n\n")
    return argparse.ArgumentParser(description=paragraphs[0], epilog="\n\n".join(paragraphs[1:]),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def fail(what, value, why, code=2):
    """Bad input: one line on stderr, exit code 2 (1 for a run that failed)."""
    print(f"{PROG}: error: {what} = {value}: {why}", file=sys.stderr)
    sys.exit(code)


def open_h5(what, path):
    """path opened read-only as HDF5; a missing, unreadable or foreign file is an error naming `what`."""
    import h5py
    if not os.path.exists(path):
        fail(what, path, "no such file")
    if os.path.isdir(path):
        fail(what, path, "a directory, not a file")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        if not os.access(path, os.R_OK):
            fail(what, path, "cannot read it (permission denied)")
        fail(what, path, "not an HDF5 file" if not h5py.is_hdf5(path) else f"cannot open it as HDF5 ({e})")


def save(fig, path, dpi):
    """fig to path, its directory created; a path that cannot be written is an error."""
    folder = os.path.dirname(path)
    if folder and os.path.exists(folder) and not os.path.isdir(folder):
        fail("--out", path, f"cannot create the directory {folder} (a file of that name exists)")
    try:
        if folder:
            os.makedirs(folder, exist_ok=True)
    except OSError as e:
        fail("--out", path, f"cannot create the directory {folder} ({e.strerror or e})")
    try:
        fig.savefig(path, dpi=dpi)
    except (OSError, ValueError) as e:
        fail("--out", path, f"cannot write the figure ({getattr(e, 'strerror', None) or e})")


def one_line(text):
    """A child's output on one line (its lines joined by '; '), for an error line."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())
