"""bench_common.py - what the benchmark scripts share: the machine and a peer's version
for the report, tearing the peers down, a process tree and its CPU time, and for delivery
the agents' Maildir setup and how many messages landed. The scripts put tests/integration on sys.path before importing this."""

import os
import platform
import re
import resource
import subprocess
import sys

import lmtp_peers as lp


def machine():
    """'2 CPUs, <model>, Linux <release>'."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), model)
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {model}, {platform.system()} {platform.release()}"


def version(argv):
    """The first line a version command prints, or 'unknown'."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def count_landed(root):
    """Files in every new/ and cur/ under root: one per delivery."""
    n = 0
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) in ("new", "cur"):
            n += len(files)
    return n


def landed_size(root):
    """The size (from its S= field) of one file that landed in a new/ or cur/ under root, or None."""
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) in ("new", "cur"):
            for name in files:
                m = re.search(r",S=(\d+)", name)
                if m:
                    return int(m.group(1))
    return None


def tear_down(stops, ws):
    """Stops every peer (last started first), reporting but not stopping at a failure, then
    removes the workspace."""
    for stop in reversed(stops):
        try:
            stop()
        except Exception as e:  # report, but keep tearing down
            print(f"teardown: {e}", file=sys.stderr)
    ws.remove()


def maildir_setup(ws, name, users):
    """A delivery agent's setup as in seed [001]: recipients checked in the passwd-file users,
    static userdb uid=nobody, maildir:ROOT/%d/%n under the agent's own root."""
    root = lp.mail_root(ws, f"mail-{name}")
    return lp.MailSetup(name, root, ("passwd-file", f"scheme=PLAIN {users}"),
                        f"uid={lp.MAIL_USER} gid={lp.MAIL_GROUP} home={root}/%d/%n",
                        f"maildir:{root}/%d/%n")


def descendants(pid):
    """pid and every live descendant, through the ppid field of /proc/*/stat."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu_seconds(pid):
    """User + system CPU seconds used so far by pid's process tree: each live process's own
    and what its exited children used (cutime, cstime: a reaped lmtp child counts too)."""
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # stat fields 14-17: utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    """User + system CPU seconds of this process's exited and reaped children so far (a load
    generator or limit run with subprocess.run is counted once it returns)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
