#!/usr/bin/env python3
"""Run the commands of partrain's documentation, so that the docs cannot drift from the programs.

    run_doc_blocks.py --source SRC --build BUILD [--list] [--keep] [--timeout S] FILE.md ...

Every fenced block whose info string is `sh` is a command block a reader is meant to run. Each one is run by bash,
from the top of a fresh temporary directory of its page that holds symlinks to SRC's top-level entries (inputs/,
scripts/, tools/, benchmarks/, results/, jobscripts/, docs/, tests/, ...; not build/ or hidden ones) and
build/release -> BUILD (the build under test), so the relative paths of the docs work and what the commands write
lands in the temporary directory. The blocks of one page run in
order in the same directory (a later block may read what an earlier one wrote); each block is its own shell,
which first sources scripts/env.sh, as the docs ask of the reader.

Rewriting: a command that starts a training mini-app (partrain-ref, -dp, -tp, -pp, -ep, -zero, -ps, -nmt), in a block
that does not set train.steps itself (in a command or a shell variable), gets `--set train.steps=1 --set
train.warmup=0` appended to the mini-app's arguments (before a pipe, a redirection, `&&`, `||`, `;` or a comment), so
every documented run is one step. Commands are the
block's lines joined at a trailing backslash; the lines of a here-document are passed through untouched.

Skipping: a block preceded (blank lines allowed) by `<!-- not run by tests: REASON -->` is not run; one preceded by
`<!-- needs: COMMAND -->` runs only where COMMAND succeeds (python3-torch installed, namespaces allowed). Every
skipped block is printed with its reason. A block that runs `scripts/vcluster up` gets `scripts/vcluster down`
after it, whatever happened; the virtual cluster is the docs' own (PARTRAIN_VCLUSTER_NAME=ptdoc, 10.253.0).

Output samples belong in ```text blocks; ```bash, ```shell and ```console blocks are refused, so a command cannot
hide from this test in a block it does not run. A command that fails makes the page fail, with the file, the
line, the command and the tail of its output; the remaining blocks still run. Exit code 0 when every block that
ran passed. The CPU time of every block (its processes and their children) is printed, and the page's total.

Each page is also read for what a reader cannot resolve or follow: words that only meant something to the people
who wrote it ("issue 16", "this round", "the brief", ...), relative links to files that do not exist, and, with
--max-lines N, a page longer than N lines (the README's limit).
"""
import argparse
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

APPS = r"partrain-(?:ref|dp|tp|pp|ep|zero|ps|nmt)"
APP_RE = re.compile(r"(?:(?<=^)|(?<=[\s/'\"(]))" + APPS + r"(?=\s|$)")
SKIP_RE = re.compile(r"^<!--\s*not run by tests:\s*(.*?)\s*-->\s*$")
NEEDS_RE = re.compile(r"^<!--\s*needs:\s*(.*?)\s*-->\s*$")
FENCE_RE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)\s*$")
REFUSED = {"bash", "shell", "console", "zsh", "shell-session"}
STEPS = "--set train.steps=1 --set train.warmup=0"
MARK = "__partrain_doc_failed__"
# words that point at the project's history or its conversations, which a reader of the docs cannot look up
UNRESOLVABLE = re.compile(r"\bissues? #?\d+|\bthe issue\b|\bthis (stop|round)\b|\bbefore this round\b|"
                          r"\bthe brief\b|\bthe main job\b|\bthe first build machine\b", re.I)
LINK_RE = re.compile(r"\]\(([^)#\s]*)(#[^)]*)?\)")


class Block:
    def __init__(self, path, fence_line, lines):
        self.path, self.fence_line, self.lines = path, fence_line, lines  # lines: [(line number, text)]
        self.skip = None   # reason
        self.needs = None  # command


def parse(path):
    """The sh blocks of a Markdown file, and the errors found on the way (refused block kinds, bad markers)."""
    blocks, errors = [], []
    text = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(text):
        m = FENCE_RE.match(text[i])
        if not m:
            i += 1
            continue
        fence, info, start = m.group(1), m.group(2).lower(), i
        body = []
        i += 1
        while i < len(text) and not text[i].startswith(fence[0] * len(fence)):
            body.append((i + 1, text[i]))
            i += 1
        i += 1
        if info in REFUSED:
            errors.append(f"{path}:{start + 1}: a ```{info} block: commands go in ```sh blocks (run by this test), "
                          "output in ```text blocks")
            continue
        if info != "sh":
            continue
        b = Block(path, start + 1, body)
        j = start - 1
        while j >= 0 and not text[j].strip():
            j -= 1
        if j >= 0:
            if (s := SKIP_RE.match(text[j].strip())):
                b.skip = s.group(1)
                if len(b.skip) < 10:
                    errors.append(f"{path}:{j + 1}: 'not run by tests' needs a real reason, not '{b.skip}'")
            elif (n := NEEDS_RE.match(text[j].strip())):
                b.needs = n.group(1)
            elif text[j].strip().startswith("<!--") and "run" in text[j]:
                errors.append(f"{path}:{j + 1}: unrecognised marker {text[j].strip()!r} "
                              "(use <!-- not run by tests: REASON --> or <!-- needs: COMMAND -->)")
        blocks.append(b)
    return blocks, errors


def commands(block):
    """The block's commands: [(first line number, text)], lines joined at a trailing backslash, here-documents
    kept whole. Comment-only and blank lines are dropped."""
    out, cur, first, heredoc = [], [], None, None
    for n, line in block.lines:
        if heredoc is not None:
            cur.append(line)
            if line.strip() == heredoc:
                heredoc = None
                out.append((first, "\n".join(cur)))
                cur, first = [], None
            continue
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if first is None:
            first = n
        cur.append(line)
        h = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if h:
            heredoc = h.group(1)
            continue
        if line.rstrip().endswith("\\"):
            continue
        out.append((first, "\n".join(cur)))
        cur, first = [], None
    if cur:
        out.append((first, "\n".join(cur)))
    return out


def end_of_simple_command(cmd, start):
    """Index where the simple command containing position `start` ends: an unquoted |, &, ;, <, >, ), a comment,
    or the end. A redirection's file-descriptor digit stays with the redirection."""
    q = None
    i = start
    while i < len(cmd):
        c = cmd[i]
        if q:
            if c == "\\" and q == '"':
                i += 2
                continue
            if c == q:
                q = None
        elif c in "'\"":
            q = c
        elif c == "\\":
            i += 2
            continue
        elif c in "|&;<>)" or (c == "#" and cmd[i - 1].isspace()):
            if c in "<>" and i > 0 and cmd[i - 1].isdigit() and (i < 2 or cmd[i - 2].isspace()):
                i -= 1
            return i
        elif c == "\n":
            return i
        i += 1
    return i


def rewrite(cmd):
    """Append the short step counts to every training mini-app the command starts (unless it sets them)."""
    if "train.steps" in cmd or "<<" in cmd:
        return cmd
    # work on the command with continuation lines joined, so the insertion point is found across them
    flat = re.sub(r"\\\n", "  ", cmd)
    out, pos = [], 0
    for m in APP_RE.finditer(flat):
        if m.start() < pos:
            continue
        end = end_of_simple_command(flat, m.end())
        args = flat[m.end():end]
        if re.search(r"--(print-deck|help|version|estimate)\b|(^|\s)-h(\s|$)", args):
            continue
        cut = end
        while cut > m.end() and flat[cut - 1] in " \t":
            cut -= 1
        out.append(flat[pos:cut] + " " + STEPS + (" " if cut < len(flat) else ""))
        pos = cut
        while pos < len(flat) and flat[pos] in " \t" and pos < end:
            pos += 1
    if not out:
        return cmd
    out.append(flat[pos:])
    return "".join(out)


def anchors(path):
    """The anchors GitHub makes of a Markdown file's headings: lower case, punctuation dropped, spaces -> '-'."""
    out, seen, fence = set(), {}, False
    for line in open(path, encoding="utf-8"):
        if FENCE_RE.match(line.rstrip("\n")):
            fence = not fence
        if fence or not line.startswith("#"):
            continue
        slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def lint(path, max_lines):
    """Unresolvable words, dead relative links, and the page's length."""
    errors = []
    text = open(path, encoding="utf-8").read().split("\n")
    if text and text[-1] == "":
        text.pop()
    if max_lines and len(text) > max_lines:
        errors.append(f"{path}: {len(text)} lines, more than {max_lines}")
    for n, line in enumerate(text, 1):
        for m in UNRESOLVABLE.finditer(line):
            errors.append(f"{path}:{n}: '{m.group(0)}' means nothing to a reader: say what it refers to")
        for m in LINK_RE.finditer(line):
            target, frag = m.group(1), (m.group(2) or "")[1:]
            if re.match(r"[a-z]+:", target):
                continue
            full = os.path.join(os.path.dirname(path), target) if target else path
            if not os.path.exists(full):
                errors.append(f"{path}:{n}: link to {target}, which does not exist")
            elif frag and full.endswith(".md") and frag not in anchors(full):
                errors.append(f"{path}:{n}: link to {target}#{frag}: {target} has no such heading")
    return errors


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def workdir(source, build):
    d = tempfile.mkdtemp(prefix="partrain-docs-")
    for name in sorted(os.listdir(source)):
        if name != "build" and not name.startswith("."):
            os.symlink(os.path.join(source, name), os.path.join(d, name))
    os.mkdir(os.path.join(d, "build"))
    os.symlink(build, os.path.join(d, "build", "release"))
    return d


def run_script(script, cwd, env, timeout):
    with tempfile.NamedTemporaryFile("w", suffix=".sh", dir=cwd, prefix=".doc-block-", delete=False) as f:
        f.write(script)
    p = subprocess.Popen(["bash", f.name], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True, text=True, errors="replace")
    try:
        out, _ = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        out += f"\n{MARK} ? timeout after {timeout} s\n"
        rc = 124
    os.unlink(f.name)
    return rc, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", required=True, help="the repository (README.md, docs/, inputs/, scripts/, ...)")
    ap.add_argument("--build", required=True, help="the build directory under test (build/release)")
    ap.add_argument("--list", action="store_true", help="print the commands as they would run, run nothing")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directories")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per block (300)")
    ap.add_argument("--max-lines", type=int, default=0, help="fail a page longer than this (0: no limit)")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    source, build = os.path.realpath(a.source), os.path.realpath(a.build)
    failed, total_cpu, n_run, n_skip = 0, 0.0, 0, 0
    env = dict(os.environ, PARTRAIN_VCLUSTER_NAME="ptdoc", PARTRAIN_VCLUSTER_NET="10.253.0")
    env.pop("PARTRAIN_VCLUSTER_DIR", None)
    for path in a.files:
        rel = os.path.relpath(os.path.realpath(path), source)
        blocks, errors = parse(path)
        errors += lint(path, a.max_lines)
        for e in errors:
            print("ERROR", e.replace(path, rel, 1))
            failed += 1
        d = None if a.list else workdir(source, build)
        page_cpu = 0.0
        for b in blocks:
            where = f"{rel}:{b.fence_line}"
            if b.skip is not None:
                print(f"skipped {where}: {b.skip}")
                n_skip += 1
                continue
            raw = commands(b)
            sets_steps = any("train.steps" in c for _, c in raw)
            cmds = [(n, c if sets_steps else rewrite(c)) for n, c in raw]
            if a.list:
                print(f"--- {where}" + (f" (needs: {b.needs})" if b.needs else ""))
                for n, c in cmds:
                    print(f"{n:5d}  {c}")
                continue
            if b.needs:
                rc, out = run_script(f"source scripts/env.sh\n{b.needs}\n", d, env, 60)
                if rc != 0:
                    why = out.strip().splitlines()[-1] if out.strip() else f"exit code {rc}"
                    print(f"skipped {where}: needs `{b.needs}`, which fails here ({why})")
                    n_skip += 1
                    continue
            lines = ["set -eo pipefail", "source scripts/env.sh",
                     f"trap 'rc=$?; echo \"{MARK} $__doc_line $rc\"' ERR"]
            for n, c in cmds:
                lines += [f"__doc_line={n}", c]
            vcluster = any(re.search(r"scripts/vcluster\s+up\b", c) for _, c in cmds)
            c0, t0 = cpu_children(), time.time()
            rc, out = run_script("\n".join(lines) + "\n", d, env, a.timeout)
            if vcluster:
                run_script("source scripts/env.sh\nscripts/vcluster down\n", d, env, 120)
            cpu, wall = cpu_children() - c0, time.time() - t0
            page_cpu += cpu
            n_run += 1
            if rc == 0:
                print(f"ran     {where}: {len(cmds)} command(s), {wall:.1f} s, {cpu:.1f} s CPU")
                continue
            failed += 1
            at = [l for l in out.splitlines() if l.startswith(MARK)]
            line, code = (at[-1].split()[1:3] if at else ("?", str(rc)))
            cmd = next((c for n, c in cmds if str(n) == line), "(the block)")
            tail = "\n".join(l for l in out.splitlines() if not l.startswith(MARK))
            tail = "\n".join(tail.splitlines()[-40:])
            print(f"FAILED  {rel}:{line}: exit code {code}: {cmd}\n"
                  f"        (block at line {b.fence_line}, ran in {d}; last lines of its output:)\n"
                  + "\n".join("    | " + l for l in tail.splitlines()))
        if d is not None:
            print(f"page    {rel}: {page_cpu:.1f} s CPU")
            total_cpu += page_cpu
            if a.keep or failed:
                print(f"        kept {d}")
            else:
                shutil.rmtree(d, ignore_errors=True)
    if not a.list:
        print(f"{n_run} block(s) ran, {n_skip} skipped, {failed} failure(s); {total_cpu:.1f} s CPU in all")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
