"""lmtp_profile.py - where the CPU time goes when lmtpd delivers one recipient per message
over reused connections, against bench_fsync_ceiling on 8 threads: the "Where the time
goes" section of lmtp_results.md, made by lmtp_bench.py (on by default, --no-profile skips it).

One more run of each load, sized to outlast the window, is sampled with `perf record -e
cpu-clock -a -g` (profile.py) for SECONDS after a second of warm-up, then stopped. The files
in new/, counted around the window, give its deliveries/s, and so CPU µs per delivery.

Idle is /proc/stat's idle + iowait over the window (the kernel's own clock of idle time),
not perf's idle samples: in the 2-CPU VM this was written on, perf samples a busy CPU fully
but an idle one only in part (CPU 1 never), so it misses interrupt work done on an idle CPU;
the busy time perf did not sample is shown as such. Shares of "all samples" would overstate
every process. A sampler reads the delivering process's thread states every 10 ms in the
window: the threads waiting on the disk (D) at once are the deliveries the disk works on.

The delivering process's kernel time is split by the system call it was in (the frame
do_syscall_64 called); read and write by socket, eventfd or file; interrupts count apart.
"""

import collections
import os
import re
import subprocess
import threading
import time

import perf_profile

LMTPD, SOURCE, CEILING = "lmtpd", "smtp-source", "bench_fsync_cei"  # comms: 15 characters kept
KTHREAD = re.compile(r"^(kworker|ksoftirqd|kdamond|rcu|migration|kswapd|kcompactd|khugepaged|jbd2|irq/|cpuhp)")
IDLE_LEAF = re.compile(r"halt|idle")  # the idle loop's own frames, as opposed to its interrupts
LEAD = 1.0  # seconds of load before the window: connections open, workers busy




# One load to profile: comm is the delivering process's name in perf, start() -> Popen,
# files() -> deliveries landed so far, pid(proc) -> the delivering process's PID.
Load = collections.namedtuple("Load", "name comm start files pid")


def idle_ticks():
    """Idle + iowait from /proc/stat in clock ticks: [all CPUs, CPU 0, CPU 1, ...]."""
    with open("/proc/stat") as f:
        return [int(x[4]) + int(x[5]) for x in (l.split() for l in f if l.startswith("cpu"))]


def thread_states(pid, stop, out):
    """Until stop is set, every 10 ms: the state letter of each thread of pid; puts the
    average number of threads per state in out."""
    counts, rounds = collections.Counter(), 0
    while not stop.wait(0.01):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            break
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    counts[f.read().rsplit(")", 1)[1].split()[0]] += 1
            except (OSError, IndexError):
                pass
        rounds += 1
    out.update({state: n / max(rounds, 1) for state, n in counts.items()})


def measure(load, seconds, data_path):
    """Starts the load, records the window after LEAD, stops the load. Returns (deliveries/s,
    idle shares [machine, CPU 0, ...], average threads per state, whether the load ran through)."""
    proc = load.start()
    states, stop = {}, threading.Event()
    try:
        time.sleep(LEAD)
        if proc.poll() is not None:
            raise RuntimeError(f"the profiled load ended before the window (rc {proc.returncode})")
        sampler = threading.Thread(target=thread_states, args=(load.pid(proc), stop, states))
        n0, i0, t0 = load.files(), idle_ticks(), time.monotonic()
        sampler.start()
        try:
            perf_profile.record(seconds, data_path)
        finally:
            stop.set()
            sampler.join()
        t1, i1, n1 = time.monotonic(), idle_ticks(), load.files()
        through = proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=60)
    ticks = os.sysconf("SC_CLK_TCK") * (t1 - t0)
    cpus = [os.cpu_count() or 1] + [1] * (len(i0) - 1)  # the "cpu" line sums every CPU
    idle = [min(1.0, (b - a) / (ticks * n)) for a, b, n in zip(i0, i1, cpus)]
    return (n1 - n0) / (t1 - t0), idle, states, through


def _syscall(frames):
    """What a kernel sample was doing, from its kernel frames (leaf first): the system call
    ('fsync', 'write (socket)'), or a '(...)' label: interrupts, page faults, no system call."""
    for i, name in enumerate(frames):
        if name.startswith(("asm_common_interrupt", "asm_sysvec_")):
            return "(interrupts taken in the process)"
        if name.startswith("asm_exc_page_fault"):
            return "(page faults)"
        if name == "do_syscall_64":
            callee = next((n for n in reversed(frames[:i]) if n != "x64_sys_call"), None)
            break
    else:
        return "(kernel, no system call)"
    if callee is None:
        return "(system call entry and exit)"
    if "exit_to_user_mode" in callee or callee.startswith("syscall_exit"):
        return "(return from a system call: reschedule)"
    name = re.sub(r"^(__x64_sys_|__do_sys_|__se_sys_|ksys_)", "", callee)
    name = re.sub(r"(\.(isra|constprop|part|cold)\.\d+)+$", "", name)
    name = {"renameat2": "rename", "renameat": "rename", "openat2": "openat", "open": "openat",
            "newfstatat": "stat", "statx": "stat", "newstat": "stat", "newlstat": "stat",
            "newfstat": "fstat"}.get(name, name)
    if name in ("read", "write", "readv", "writev", "pread64", "pwrite64"):
        chain = " ".join(frames[:i])
        if "sock_" in chain or "unix_" in chain:
            name += " (socket)"
        elif "eventfd" in chain:
            name += " (eventfd)"
        elif "ext4_" in chain or "filemap" in chain or "generic_perform_write" in chain:
            name += " (file)"
    return name


class Run:
    """One perf.data: CPU ns per (comm, user/kernel), the delivering process's kernel ns by
    system call and by function, the window, and profile.py's Summary for shared objects.
    (Not Summary's symbols: `perf report --comm` merges a function's samples across processes
    and keeps or drops them all by the first one's comm, so a function the ceiling shares with
    kworker can vanish from its list.)"""

    def __init__(self, data_path, comm, rate, idle, states, through):
        self.comm, self.rate, self.states, self.through = comm, rate, states, through
        self.idle, self.idle_per_cpu = idle[0], idle[1:]
        self.summary = perf_profile.Summary(data_path)
        self.ns = collections.Counter()       # (comm, "user" | "kernel") -> ns
        self.calls = collections.Counter()    # system call of self.comm -> ns
        self.leaf_calls = collections.Counter()  # (kernel leaf symbol, system call) of self.comm -> ns
        first, last, samples = None, None, 0
        for comm_, stamp, period, frames in self._samples(data_path):
            first = stamp if first is None else min(first, stamp)
            last = stamp if last is None else max(last, stamp)
            samples += 1
            kernel = [name for is_k, name in frames if is_k]
            if comm_ == perf_profile.IDLE_COMM:
                if not frames or IDLE_LEAF.search(frames[0][1]):
                    continue  # the idle loop: counted as idle with the unsampled time
                comm_ = "(interrupts on an idle CPU)"
            space = "kernel" if frames and frames[0][0] else "user"
            self.ns[(comm_, space)] += period
            if comm_ == comm:
                self.calls[_syscall(kernel) if space == "kernel" else "(user space)"] += period
                if space == "kernel":
                    self.leaf_calls[(kernel[0], _syscall(kernel))] += period
        self.window = (last - first) if samples else 0.0
        self.machine = (os.cpu_count() or 1) * self.window * 1e9
        self.deliveries = rate * self.window
        # Busy time perf did not sample: interrupt work on an idle CPU (see the top).
        self.hidden = max(0.0, (1 - self.idle) * self.machine - sum(self.ns.values()))

    @staticmethod
    def _samples(data_path):
        """(comm, time s, period ns, [(is_kernel, symbol), ...] leaf first) per sample."""
        p = subprocess.run(["perf", "script", "-i", data_path, "-F", "comm,cpu,time,period,ip,sym"],
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise RuntimeError(f"perf script: rc {p.returncode}: {p.stderr.strip()[-500:]}")
        head, frames = None, []
        for line in p.stdout.splitlines() + [""]:
            m = re.match(r"^(\S.*?)\s+\[\d+\]\s+(\d+\.\d+):\s+(\d+)", line)
            if m:
                head, frames = (m.group(1), float(m.group(2)), int(m.group(3))), []
            elif line.strip() and head:
                addr, _, sym = line.strip().partition(" ")
                frames.append((len(addr) == 16 and addr.startswith("ffff"), sym.strip()))
            elif head:
                yield (*head, frames)
                head = None

    def us(self, ns):
        """CPU microseconds per delivery."""
        return ns / 1000 / self.deliveries if self.deliveries else 0.0

    def pct(self, ns):
        return 100.0 * ns / self.machine if self.machine else 0.0

    def group(self, role):
        """(user ns, kernel ns) of a role: the delivering process, smtp-source, kernel
        threads, interrupts on idle CPUs, perf, or everything else."""
        def role_of(comm):
            if comm == self.comm:
                return "self"
            if comm == SOURCE:
                return "source"
            if comm == "(interrupts on an idle CPU)" or KTHREAD.match(comm):
                return "kernel"
            return "perf" if comm in ("perf", "perf-exec") else "other"
        if role == "hidden":
            return 0, self.hidden
        pick = [(s, n) for (c, s), n in self.ns.items() if role_of(c) == role]
        return (sum(n for s, n in pick if s == "user"), sum(n for s, n in pick if s == "kernel"))

    def busy(self):
        return sum(self.ns.values()) + self.hidden

    def idle_pct(self):
        return 100.0 * self.idle

    def kernel_symbols(self):
        """{kernel function: self ns} of the delivering process."""
        out = collections.Counter()
        for (leaf, _), ns in self.leaf_calls.items():
            out[leaf] += ns
        return out


ROLES = [("self", "the delivering process: lmtpd / bench_fsync_ceiling"), ("source", "smtp-source (the LMTP client)"),
         ("kernel", "kernel threads (kworker, ksoftirqd, ...) and sampled interrupts on an idle CPU"),
         ("hidden", "not sampled by perf: interrupt work on an idle CPU (busy per /proc/stat)"),
         ("perf", "perf (the profiler)"), ("other", "everything else")]


def _process_table(lm, ce):
    lines = ["| where | lmtpd run: % of machine (user + kernel) | µs per delivery | ceiling run: % of machine "
             "(user + kernel) | µs per delivery |", "|---|---:|---:|---:|---:|"]
    for role, label in ROLES:
        cells = []
        for r in (lm, ce):
            u, k = r.group(role)
            cells += [f"{r.pct(u + k):.1f}% ({r.pct(u):.1f} + {r.pct(k):.1f})", f"{r.us(u + k):,.0f}"] \
                if u + k else ["-", "-"]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    lines.append(f"| **busy, all processes** | **{lm.pct(lm.busy()):.1f}%** | **{lm.us(lm.busy()):,.0f}** "
                 f"| **{ce.pct(ce.busy()):.1f}%** | **{ce.us(ce.busy()):,.0f}** |")
    per_cpu = lambda r: ", ".join(f"CPU {i} {100 * x:.0f}%" for i, x in enumerate(r.idle_per_cpu))
    lines.append(f"| idle (/proc/stat idle + iowait) | {lm.idle_pct():.1f}% ({per_cpu(lm)}) | "
                 f"| {ce.idle_pct():.1f}% ({per_cpu(ce)}) | |")
    return "\n".join(lines)


PROTOCOL = re.compile(r"socket|eventfd|^epoll|^futex|^accept|^recv|^send|^shutdown|^poll|^select")
# The file system calls bench_fsync_ceiling makes per delivery (fsync_ceiling.cpp), as named above.
SHARED = {"openat", "write (file)", "fsync", "close", "rename"}


def _syscall_table(lm, ce, top=16):
    names = sorted(set(lm.calls) | set(ce.calls), key=lambda c: -(lm.calls[c] + ce.calls[c]))
    lines = ["| lmtpd / ceiling thread was in | lmtpd µs per delivery | ceiling µs per delivery | difference | kind |",
             "|---|---:|---:|---:|---|"]
    shown = names[:top]
    for c in shown + (["(the rest)"] if len(names) > top else []):
        a = lm.calls[c] if c != "(the rest)" else sum(lm.calls[n] for n in names[top:])
        b = ce.calls[c] if c != "(the rest)" else sum(ce.calls[n] for n in names[top:])
        kind = ("file work both do" if c in SHARED else "protocol, event loop, threads" if PROTOCOL.search(c)
                else "" if c.startswith("(") else "file work only lmtpd does")
        lines.append(f"| `{c}` | {lm.us(a):,.1f} | {ce.us(b):,.1f} | {lm.us(a) - ce.us(b):+,.1f} | {kind} |")
    return "\n".join(lines)


def _symbol_table(lm, ce, top=12):
    """The top kernel functions of either delivering process, side by side."""
    a, b = lm.kernel_symbols(), ce.kernel_symbols()
    names = [s for s, _ in a.most_common(top)]
    names += [s for s, _ in b.most_common(top) if s not in names]
    names.sort(key=lambda s: -max(lm.us(a[s]), ce.us(b[s])))
    lines = ["| kernel function (self time) | lmtpd µs per delivery | ceiling µs per delivery |", "|---|---:|---:|"]
    lines += [f"| `{s}` | {lm.us(a[s]):,.1f} | {ce.us(b[s]):,.1f} |" for s in names]
    return "\n".join(lines)


def _gap(lm, ce):
    """lmtpd run minus ceiling run, µs per delivery, in parts that sum to the total."""
    calls = lambda r, test: r.us(sum(ns for c, ns in r.calls.items() if test(c)))
    part = lambda test: calls(lm, test) - calls(ce, test)
    grp = lambda role: lm.us(sum(lm.group(role))) - ce.us(sum(ce.group(role)))
    return [("smtp-source, the LMTP client", grp("source")),
            ("the delivering process's user space", part(lambda c: c == "(user space)")),
            ("its socket, event-loop and thread hand-off system calls", part(PROTOCOL.search)),
            ("its file system calls the ceiling does not make",
             part(lambda c: not c.startswith("(") and c not in SHARED and not PROTOCOL.search(c))),
            ("its file system calls both make: open, write, fsync, rename, close", part(lambda c: c in SHARED)),
            ("its other kernel time: interrupts, page faults, rescheduling",
             part(lambda c: c.startswith("(") and c != "(user space)")),
            ("kernel threads and interrupts on an idle CPU", grp("kernel") + grp("hidden")),
            ("perf and everything else", grp("perf") + grp("other"))]


def _states_table(lm, ce):
    """Average threads of the delivering process per state over the window."""
    names = [("D", "waiting on the disk (D)"), ("R", "running or waiting for a CPU (R; may count one the sampler displaced)"),
             ("S", "sleeping: idle worker, socket or futex wait (S)")]
    lines = ["| threads of the delivering process, on average | lmtpd | ceiling |", "|---|---:|---:|"]
    for key, label in names:
        lines.append(f"| {label} | {lm.states.get(key, 0):.1f} | {ce.states.get(key, 0):.1f} |")
    rest = lambda r: sum(n for k, n in r.states.items() if k not in dict(names))
    if rest(lm) + rest(ce) >= 0.05:
        lines.append(f"| other states | {rest(lm):.1f} | {rest(ce):.1f} |")
    return "\n".join(lines)


def _explain(lm, ce, gap, ceil4):
    """3-6 sentences from the numbers: is either run CPU-bound, where the extra CPU of
    lmtpd's run goes, and what limits lmtpd instead."""
    ncpu = os.cpu_count() or 1
    a, b = lm.us(lm.busy()), ce.us(ce.busy())
    source = lm.us(sum(lm.group("source")))
    out = [f"In the windows lmtpd delivered {lm.rate:,.0f}/s with the machine {lm.idle_pct():.0f}% idle, "
           f"the 8-thread ceiling {ce.rate:,.0f}/s with it {ce.idle_pct():.0f}% idle "
           f"(lmtpd at {100 * lm.rate / ce.rate:.0f}% of the ceiling"
           + (f", and at {100 * lm.rate / ceil4:.0f}% of the 4-thread ceiling's median above)." if ceil4 else ").")]
    cpu_bound = lambda r: r.idle_pct() < 10
    out.append(("The ceiling is CPU-bound" if cpu_bound(ce) else "The ceiling is not CPU-bound")
               + f": its {b:,.0f} µs of CPU per delivery would allow {ncpu * 1e6 / b:,.0f}/s on {ncpu} CPUs"
               + ("." if cpu_bound(ce) else f", and {ce.states.get('D', 0):.1f} of its 8 threads wait on the disk at once."))
    big = sorted(gap, key=lambda g: -abs(g[1]))[:3]
    out.append(f"lmtpd's run spends {a:,.0f} µs of CPU per delivery ({ncpu * 1e6 / a:,.0f}/s if the CPUs were "
               f"the limit), {a - b:,.0f} µs more than the ceiling; the largest parts: " +
               "; ".join(f"{name}, {us:+,.0f} µs" for name, us in big) + ".")
    budget = ncpu * 1e6 / (0.9 * ce.rate)
    left = budget - source - b
    out.append(f"90% of this ceiling ({0.9 * ce.rate:,.0f}/s) allows {budget:,.0f} µs of CPU per delivery for "
               f"everything on {ncpu} CPUs; smtp-source ({source:,.0f} µs) and the ceiling's own work ({b:,.0f} µs) "
               + (f"leave {left:,.0f} µs for the LMTP protocol and lmtpd's extra work, which take "
                  f"{a - b - source:,.0f} µs here." if left > 0 else
                  f"already take {source + b:,.0f} µs, so no LMTP server can meet it here."))
    d_l, d_c, r_l = (r.states.get(k, 0) for r, k in ((lm, "D"), (ce, "D"), (lm, "R")))
    if cpu_bound(lm):
        out.append(f"So lmtpd's limit is the CPUs it shares with its load generator, not the disk "
                   f"(on average {d_l:.1f} of its threads wait on the disk, the ceiling's {d_c:.1f}).")
    else:
        busiest = min(range(len(lm.idle_per_cpu)), key=lambda i: lm.idle_per_cpu[i], default=0)
        out.append(f"The CPUs are not fully used in lmtpd's run, yet on average only {d_l:.1f} of its threads "
                   f"wait on the disk (the ceiling's: {d_c:.1f}) while {r_l:.1f} run or wait for a CPU "
                   f"(CPU {busiest} is {100 * lm.idle_per_cpu[busiest]:.0f}% idle): each of smtp-source's "
                   "sessions has one message in flight, and only part of its time is an fsync.")
    syms_l, syms_c = lm.kernel_symbols(), ce.kernel_symbols()
    diff = sorted(((lm.us(ns) - ce.us(syms_c[s]), s) for s, ns in syms_l.items()), reverse=True)
    if diff and diff[0][0] > 0:
        us, s = diff[0]
        under = sorted(((ns, c) for (leaf, c), ns in lm.leaf_calls.items() if leaf == s), reverse=True)[:3]
        out.append(f"The kernel function whose cost per delivery grows most is `{s}` ({us:+,.1f} µs; in lmtpd "
                   "mostly under " + ", ".join(f"`{c}` {lm.us(ns):,.1f}" for ns, c in under) + ").")
    return " ".join(out)


def section(loads, seconds, data_dir, case, count, ceil4=None):
    """Profiles each Load (lmtpd's, then the ceiling's) and returns the markdown section;
    data_dir keeps the perf.data files. ceil4: the 4-thread ceiling's median, if measured."""
    runs = {}
    for load in loads:
        os.sync()
        data = os.path.join(data_dir, f"{load.name}.perf.data")
        rate, idle, states, through = measure(load, seconds, data)
        runs[load.name] = Run(data, load.comm, rate, idle, states, through)
        print(f"profiled: {load.name} {rate:,.1f} deliveries/s in the {seconds:g} s window, {100 * idle[0]:.0f}% idle"
              f"{'' if through else ' (the load ended inside the window)'}", flush=True)
    lm, ce = runs["lmtpd"], runs["ceiling"]
    gap = _gap(lm, ce)
    gap_md = "\n".join(["| lmtpd run minus ceiling run | µs per delivery |", "|---|---:|"] +
                       [f"| {name} | {us:+,.1f} |" for name, us in gap] +
                       [f"| **total** | **{lm.us(lm.busy()) - ce.us(ce.busy()):+,.1f}** |"])
    short = [f"the {n} load ended inside the window, so its idle share is overstated"
             for n, r in runs.items() if not r.through]
    own = lm.summary.comm_samples(LMTPD) or 1
    libs = ", ".join(f"{dso} {100 * n / own:.0f}%" for (c, dso), n in lm.summary.by_comm_dso.most_common()
                     if c == LMTPD and 100 * n / own >= 1)
    return f"""## Where the time goes: {case}, against the 8-thread fsync ceiling

One more run of lmtpd ({case}, `smtp-source` with -m {count:,}) and one of `bench_fsync_ceiling -j 8
-n {count:,}` (-s as in the Limits above), each after a `sync` and {LEAD:g} s of warm-up, sampled with `perf record -e cpu-clock -a -g`
for {seconds:g} s (tests/bench/perf_profile.py) and then stopped; the files landing in new/ during the window
give its rate. µs per delivery = CPU time in the window / deliveries in the window (lmtpd
{lm.deliveries:,.0f}, ceiling {ce.deliveries:,.0f}). Idle is /proc/stat's idle + iowait over the window: this
VM's perf samples an idle CPU only in part, and misses the interrupt work done on it, which the table
shows apart.{(' Note: ' + '; '.join(short) + '.') if short else ''}

{_process_table(lm, ce)}

{gap_md}

{_states_table(lm, ce)}

{_explain(lm, ce, gap, ceil4)}

The delivering process's CPU time by the system call it was in (kernel) or user space, µs per
delivery ("file work both do": the calls the ceiling makes too):

{_syscall_table(lm, ce)}

Hottest kernel functions of the delivering process (self time), µs per delivery. A cpu-clock
sample cannot interrupt code that runs with interrupts off (waking a thread, switching to one,
an interrupt handler), so that time shows where they are turned back on:
`_raw_spin_unlock_irqrestore`, `_raw_spin_unlock_irq`, `finish_task_switch`. `iowrite16` is the
virtio disk's queue notify, an exit to the hypervisor.

{_symbol_table(lm, ce)}

lmtpd's own samples by shared object: {libs or "none"}.
"""
