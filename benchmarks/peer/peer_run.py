"""run(): a child process (and everything it starts) with a time limit, for the side-by-side peer scripts.

One run of either side takes seconds; a run past the limit is hung (seen once: a PyTorch DDP worker spinning in
gloo for 15 minutes while its peer had gone). The child gets its own process group, and on timeout the whole
group is killed and RuntimeError names the command: never a hang, never orphaned workers.
"""
import os
import signal
import subprocess

TIMEOUT_S = 600


def run(cmd, timeout_s=TIMEOUT_S):
    """stdout of cmd; RuntimeError when it fails or runs past timeout_s."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise RuntimeError(f"{' '.join(cmd)}: no result after {timeout_s} s, killed")
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit code {p.returncode}: {err.strip()[-500:]}")
    return out
