"""bench_common.py - what the benchmark scripts share: the machine and a peer's version
for the report, tearing the peers down, the bare reference servers, a process tree and its
CPU time, and for delivery the agents' Maildir setup and what landed. The scripts put
tests/integration on sys.path before importing this."""

import os
import platform
import re
import resource
import subprocess
import sys

import lmtp_peers as lp
import peers


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


class BareServer(peers.DaemonHandle):
    """One of the benches' bare reference servers (bench_*_bare_server, one blocking thread
    per connection): its arguments, with "SOCKET" standing for its unix socket."""
    kind = "bare server"

    def __init__(self, ws, name, binary, args):
        self.name, self.proc = name, None
        self.socket, self.log_path = ws.file(f"{name}.sock"), ws.file(f"{name}.log")
        self.argv = [binary] + [self.socket if a == "SOCKET" else a for a in args]

    def start(self, timeout=10):
        self.proc = peers.start_daemon(self.argv, self.log_path)
        self.wait_listening([self.socket], timeout, "socket")
        return self


def tool_beside(binary, name):
    """The bench tool `name`, built in the directory of the tool `binary`."""
    return os.path.join(os.path.dirname(binary), name)


def landed_files(root):
    """The names of the files in every new/ and cur/ under root: one per delivery."""
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) in ("new", "cur"):
            yield from files


def count_landed(root):
    """How many deliveries landed under root."""
    return sum(1 for _ in landed_files(root))


def landed_size(root):
    """The size (from its S= field) of one file that landed under root, or None."""
    return next((int(m.group(1)) for m in (re.search(r",S=(\d+)", n) for n in landed_files(root)) if m), None)


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


def proc_stats():
    """Every process's /proc/PID/stat fields after its command name (field 3 on), by PID."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    out[int(entry)] = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
    return out


def descendants(pid, stats=None):
    """pid and every live descendant, through the ppid field of /proc/*/stat."""
    children = {}
    for p, fields in (stats if stats is not None else proc_stats()).items():
        children.setdefault(int(fields[1]), []).append(p)
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu_seconds(pid):
    """User + system CPU seconds used so far by pid's process tree: each live process's own
    and what its exited children used (cutime, cstime: a reaped lmtp child counts too)."""
    stats = proc_stats()
    ticks = sum(sum(int(x) for x in stats[p][11:15])  # stat fields 14-17: utime stime cutime cstime
                for p in descendants(pid, stats) if p in stats)
    return ticks / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    """User + system CPU seconds of this process's exited and reaped children so far (a load
    generator or limit run with subprocess.run is counted once it returns)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
