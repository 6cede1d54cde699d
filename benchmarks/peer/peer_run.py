"""Process hygiene for the side-by-side peer scripts: nothing they start outlives them, and nothing hangs.

- run(cmd): the child (and everything it starts) in its own process group, with a time limit; on timeout the whole
  group is killed and RuntimeError names the command; a failure raises with the child's last stderr lines.
- Every child is told to die with its parent (Linux PR_SET_PDEATHSIG), so a caller killed even with SIGKILL takes
  its children with it; SIGTERM, SIGINT and SIGHUP to the caller kill every child group first, then exit.
- free_port(): a TCP port nobody holds, for a rendezvous (a fixed port that an earlier, unfinished run still holds
  made PyTorch DDP's gloo workers spin forever).
"""
import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys

TIMEOUT_S = 600
_children = set()


def die_with_parent():
    """This process receives SIGKILL when its parent exits (Linux prctl PR_SET_PDEATHSIG); a no-op elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except OSError:
        pass


def _kill_children(*_):
    for pid in list(_children):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _children.clear()


def _on_signal(signum, _frame):
    _kill_children()
    sys.exit(128 + signum)


for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_s, _on_signal)
atexit.register(_kill_children)


def free_port():
    """A TCP port on 127.0.0.1 that nobody holds right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, timeout_s=TIMEOUT_S):
    """stdout of cmd; RuntimeError when it fails or runs past timeout_s (its whole process group killed then)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         preexec_fn=die_with_parent)
    _children.add(p.pid)
    try:
        out, err = p.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise RuntimeError(f"{' '.join(cmd)}: no result after {timeout_s} s, killed with its process group")
    finally:
        _children.discard(p.pid)
        try:  # anything the child left behind in its group
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit code {p.returncode}: {err.strip()[-500:]}")
    return out


if __name__ == "__main__":  # a library: running it does nothing, and says so in one line
    print(f"{os.path.basename(sys.argv[0])}: a helper module, not a tool: compare_dp.py, compare_reference.py and "
          "torch_ddp.py import it (from peer_run import run, free_port, die_with_parent); nothing to run",
          file=sys.stderr)
    sys.exit(2)
