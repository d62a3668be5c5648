"""auth_report.py - turns auth_bench.py's measurements into the markdown of its results:
the table of points, the limits line, the verdicts on issue 6's auth targets and, with
--profile, the section on where the CPU goes. Only formatting and arithmetic on numbers
already measured: nothing here starts a server or runs a load."""

import os
import statistics

from perf_profile import KERNEL_DSO

# The table's rows in order, (password, cache); auth_bench.py runs its points in the same
# order, so it takes the list from here.
ROWS = [("right", "off"), ("right", "on"), ("wrong", "off")]
CEILING_COMM = "bench_crypt_cei"  # the kernel keeps 15 characters of a thread's name


def spread(values, fmt="{:,.0f}"):
    """'median (min-max)' of a list of numbers."""
    if not values:
        return "-"
    mid = fmt.format(statistics.median(values))
    return mid if len(values) == 1 else f"{mid} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def med(runs, key):
    """The median of key over runs, or None when nothing ran."""
    return statistics.median(r[key] for r in runs) if runs else None


def limit_threads(n):
    """Threads of the crypt ceiling that limits a point with n connections; auth_bench.py
    runs the ceiling with this many, and the table names it."""
    return min(n, os.cpu_count() or 1)


def point_table(points, conc, limits, hash_ms):
    """One row per (password, cache, connections): authd, Dovecot, ratio, limit; and the
    anomalies of every server (the bare one's too)."""
    lines = ["| password | cache | conns | authd auths/s | Dovecot auths/s | authd / Dovecot "
             "| authd p50 / p99 ms | Dovecot p50 / p99 ms | limit: crypt_r/s (threads) | authd of limit "
             "| authd p50 over one hash |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    anomalies = []
    for n in conc:
        ceiling = med(limits[n], "verifications_per_s")
        for pw, cache in ROWS:
            a, d = points.get(("authd", cache, pw, n), []), points.get(("dovecot", cache, pw, n), [])
            for server in ("authd", "dovecot", "bare"):
                runs = points.get((server, cache, pw, n), [])
                bad = sum(r["error"] + (r["fail"] if pw == "right" else r["ok"]) for r in runs)
                if bad:
                    anomalies.append(f"{server} {pw} password, cache {cache}, c={n}: {bad:.0f} replies "
                                     "were errors or the wrong answer")
            rate = lambda runs: med(runs, "auths_per_s")
            lat = lambda runs: f"{med(runs, 'p50_ms'):.2f} / {med(runs, 'p99_ms'):.2f}" if runs else "-"
            ratio = f"{rate(a) / rate(d):,.2f}x" if a and d and rate(d) else "-"
            limit = f"{ceiling:,.0f} ({limit_threads(n)})" if ceiling else "-"
            hashes = cache == "off"  # a cache hit verifies no hash: the crypt limit does not bind
            share = f"{100 * rate(a) / ceiling:.1f}%" if a and ceiling and hashes else "-"
            over = f"{100 * (med(a, 'p50_ms') / hash_ms - 1):+.1f}%" if a and hash_ms and n == 1 and hashes else "-"
            lines.append(f"| {pw} | {cache} | {n} | {spread([r['auths_per_s'] for r in a])} "
                         f"| {spread([r['auths_per_s'] for r in d])} | {ratio} | {lat(a)} | {lat(d)} "
                         f"| {limit} | {share} | {over} |")
    return "\n".join(lines), anomalies


def bare_table(points, conc, limits, hash_ms):
    """The bare server's rows beside authd's and Dovecot's: a login with nothing around it,
    and authd as a share of that. "" without bare server points."""
    if not any(k[0] == "bare" for k in points):
        return ""
    lines = ["| password | cache | conns | bare server auths/s | p50 / p99 ms | of limit | p50 over one hash "
             "| bare / Dovecot | authd auths/s | authd of bare |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in conc:
        ceiling = med(limits[n], "verifications_per_s")
        for pw, cache in ROWS:
            b, a, d = (points.get((who, cache, pw, n), []) for who in ("bare", "authd", "dovecot"))
            if not b:
                continue
            rate, hashes = med(b, "auths_per_s"), cache == "off"
            share = f"{100 * rate / ceiling:.1f}%" if ceiling and hashes else "-"
            over = f"{100 * (med(b, 'p50_ms') / hash_ms - 1):+.1f}%" if hash_ms and n == 1 and hashes else "-"
            vs = f"{rate / med(d, 'auths_per_s'):,.2f}x" if d and med(d, "auths_per_s") else "-"
            ours = f"{100 * med(a, 'auths_per_s') / rate:.1f}%" if a and rate else "-"
            lines.append(f"| {pw} | {cache} | {n} | {spread([r['auths_per_s'] for r in b])} | "
                         f"{med(b, 'p50_ms'):.2f} / {med(b, 'p99_ms'):.2f} | {share} | {over} | {vs} "
                         f"| {spread([r['auths_per_s'] for r in a])} | {ours} |")
    return f"""## The least a server can do: a bare SQL passdb server

`bench_auth_bare_server` (tests/bench/auth_bare_server.cpp) under the same load, in the same runs:
one blocking thread per connection with its own MariaDB connection; per login the same
password_query, then crypt_r on that same thread, then OK or FAIL. No event loop, no hand-off
between threads, no log. It pays only what any server on this passdb pays: one SQL round trip
and MariaDB's CPU per login, and the socket to the client. With its cache (`-c`, cache on rows)
a right password it verified before is answered from memory: one socket round trip, the least
any cache can cost. Where it misses a target too, the limit is there and not in authd.

{chr(10).join(lines)}
"""


def limits_text(conc, limits):
    parts = [f"{spread([r['verifications_per_s'] for r in limits[n]])}/s on {limit_threads(n)} thread(s) "
             f"before the c={n} points" for n in conc if limits[n]]
    hashes = [r["p50_ms"] for r in limits.get(1, [])]
    if hashes:
        parts.append(f"one hash {spread(hashes, '{:.3f}')} ms (one thread, median call)")
    return ("Limits, median (min–max) of the runs: crypt_r " + "; ".join(parts) + ".") if parts else \
        "Limits: not measured (the budget ran out first)."


def verdicts(points, conc, limits, hash_ms):
    """Issue 6's auth targets: (target, measured, verdict) rows."""
    out = []

    def add(target, ok, measured):
        out.append((target, measured, "met" if ok else "**missed**"))

    for n in conc:
        a, ceiling = points.get(("authd", "off", "right", n)), med(limits[n], "verifications_per_s")
        if a and ceiling and n >= (os.cpu_count() or 1):
            got = med(a, "auths_per_s")
            paired = [100 * r["auths_per_s"] / c["verifications_per_s"] for r, c in zip(a, limits[n])]
            bare = points.get(("bare", "off", "right", n))
            add(f"uncached, c={n}: at least 95% of the all-core crypt ceiling", got >= 0.95 * ceiling,
                f"{100 * got / ceiling:.1f}% ({got:,.0f} of {ceiling:,.0f}/s; each run against its own "
                f"limit: {min(paired):.1f}–{max(paired):.1f}%)"
                + (f"; bare server {100 * med(bare, 'auths_per_s') / ceiling:.1f}%" if bare else ""))
    if hash_ms:
        for pw, what in (("right", "uncached conc-1 latency within 10% of one hash"),
                         ("wrong", "wrong password, delay 0, c=1: answered within one hash time (p50, 10% slack)")):
            a, bare = points.get(("authd", "off", pw, 1)), points.get(("bare", "off", pw, 1))
            if a:
                p50 = med(a, "p50_ms")
                add(what, p50 <= 1.10 * hash_ms,
                    f"p50 {p50:.3f} ms = {100 * (p50 / hash_ms - 1):+.1f}% over one hash ({hash_ms:.3f} ms)"
                    + (f"; bare server {100 * (med(bare, 'p50_ms') / hash_ms - 1):+.1f}%" if bare else ""))
    for n in conc:
        a, d = points.get(("authd", "on", "right", n)), points.get(("dovecot", "on", "right", n))
        if a and d and med(d, "auths_per_s"):
            x = med(a, "auths_per_s") / med(d, "auths_per_s")
            bare = points.get(("bare", "on", "right", n))
            add(f"cache on, c={n}: at least 100x Dovecot with its cache on", x >= 100,
                f"{x:,.1f}x ({med(a, 'auths_per_s'):,.0f} vs {med(d, 'auths_per_s'):,.0f}/s)"
                + (f"; bare server with a cache {med(bare, 'auths_per_s') / med(d, 'auths_per_s'):,.1f}x"
                   if bare else ""))
        if a:
            p99 = med(a, "p99_ms")
            add(f"cache on, c={n}: p99 under 1 ms", p99 < 1.0, f"p99 {p99:.3f} ms")
    lines = ["| target | measured (medians) | verdict |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {v} |" for t, m, v in out]
    return "\n".join(lines)


def profile_section(prof, profile_seconds):
    """Markdown: where the CPU went in authd's profiled point and in the ceiling's, and the
    conc-1 latency's parts."""
    (r, s), (c, cs) = prof["authd"], prof["ceiling"]
    ms_per_sample = lambda summ: (os.cpu_count() or 1) * profile_seconds * 1000 / max(summ.total, 1)
    crypt_a, crypt_c = s.dso_samples("authd", "libcrypt"), cs.dso_samples(CEILING_COMM, "libcrypt")
    # crypt_r calls memcpy/explicit_bzero/memset in libc: count them as the hash, in authd at
    # the ceiling's libc : libcrypt ratio (the ceiling does nothing else).
    libc_a = min(s.dso_samples("authd", "libc."),
                 round(crypt_a * cs.dso_samples(CEILING_COMM, "libc.") / max(crypt_c, 1)))
    hash_a, hash_c = crypt_a + libc_a, crypt_c + cs.dso_samples(CEILING_COMM, "libc.")
    kernel_a = s.dso_samples("authd", KERNEL_DSO)
    authd_all, load_all = s.comm_samples("authd"), s.comm_samples("bench_auth_load")
    maria, idle_a, idle_c = s.comm_samples("mariadbd"), s.comm_samples("swapper"), cs.comm_samples("swapper")
    rest_a = s.total - authd_all - load_all - maria - idle_a
    rest_c = cs.total - cs.comm_samples(CEILING_COMM) - idle_c
    logins = max(r["auths_per_s"] * profile_seconds, 1)
    per_login = hash_a * ms_per_sample(s) / logins
    per_verify = hash_c * ms_per_sample(cs) / max(c["verifications_per_s"] * profile_seconds, 1)
    other_ms = lambda n: n * ms_per_sample(s) / logins
    pct, pcc = s.pct, cs.pct
    gap, own = pcc(hash_c) - pct(hash_a), pct(authd_all - hash_a)
    outside = pct(maria + load_all + idle_a + rest_a) - pcc(idle_c + rest_c)
    return f"""## Where the CPU goes: authd, cache off, c={prof['conns']} (profiled run)

`perf record -e cpu-clock -a -g` for {profile_seconds:g} s inside one more run of the point
(tests/bench/perf_profile.py), then the crypt ceiling the same way. In these runs authd did
{r['auths_per_s']:,.0f} auths/s and the ceiling {c['verifications_per_s']:,.0f} verifications/s
({100 * r['auths_per_s'] / c['verifications_per_s']:.1f}%). CPU time of one hash (libcrypt and the libc calls
it makes): {per_login:.3f} ms in authd, {per_verify:.3f} ms in the ceiling (samples × {ms_per_sample(s):.3f} ms /
verifications). A hash costs the same in both, so authd's gap to the ceiling is the share of
the {os.cpu_count()} cores that goes to anything but hashing:

| share of all samples | authd run | ceiling run | CPU ms per login |
|---|---:|---:|---:|
| the hash: libcrypt + its libc calls (in authd estimated) | {pct(hash_a):.1f}% | {pcc(hash_c):.1f}% | {per_login:.3f} |
| authd, kernel (socket and eventfd syscalls, wakeups, TCP to MariaDB) | {pct(kernel_a):.1f}% | - | {other_ms(kernel_a):.3f} |
| authd, the rest of its user space (authd, libuv, libmariadb, ...) | {pct(authd_all - hash_a - kernel_a):.1f}% | - | {other_ms(authd_all - hash_a - kernel_a):.3f} |
| mariadbd | {pct(maria):.1f}% | - | {other_ms(maria):.3f} |
| bench_auth_load (the client) | {pct(load_all):.1f}% | - | {other_ms(load_all):.3f} |
| idle (swapper) | {pct(idle_a):.1f}% | {pcc(idle_c):.1f}% | - |
| everything else (kernel threads, other processes) | {pct(rest_a):.1f}% | {pcc(rest_c):.1f}% | - |

Of the {gap:.1f}-point gap in the hash's share, authd's own work besides the hash is {own:.1f} points
({other_ms(authd_all - hash_a):.3f} ms of CPU per login), and MariaDB, the client, idle time and the
rest {outside:.1f}. At 95% of the ceiling everything but hashing may take only ~5% of the
cores: MariaDB's query and the client alone take {pct(maria + load_all):.1f}% here.

authd run, per process:

{s.process_table()}

Inside authd:

{s.dso_table("authd")}

{s.symbol_table("authd")}

Ceiling run, per process and inside the ceiling tool:

{cs.process_table(top=4)}

{cs.dso_table(CEILING_COMM, top=4)}

{c1_section(prof["c1"], prof.get("dovecot_hits")) if prof.get("c1") else ""}"""


def c1_section(c1, dovecot_hits):
    """Markdown: a c=1 login's p50 against one hash, with and without the SQL query, and a
    cache hit's with the client and authd on one CPU or on two."""
    h, q, f = (statistics.median(c1[k]) for k in ("hash", "sql", "file"))
    bare = (f"| bare server, SQL passdb (no loop, no hand-off) | {statistics.median(c1['bare']):.3f} | "
            f"{100 * (statistics.median(c1['bare']) / h - 1):+.1f}% |\n") if c1.get("bare") else ""
    hits = "".join(f"| authd cache hit, client and authd {where} | {med(c1[k], 'p50_ms'):.3f} | "
                   f"{med(c1[k], 'auths_per_s'):,.0f} auths/s |\n"
                   for k, where in (("hit_same", "on one CPU"), ("hit_apart", "on two CPUs")) if k in c1)
    wakeups = ""
    if "hit_same" in c1 and "hit_apart" in c1:
        same, apart = med(c1["hit_same"], "p50_ms"), med(c1["hit_apart"], "p50_ms")
        wakeups = (f"\nA cache hit (pinned with sched_setaffinity) takes {same:.3f} ms with the client and\n"
                   f"authd on one CPU and {apart:.3f} ms on two: about {500 * (apart - same):.0f} µs per wakeup of a\n"
                   "thread on another CPU, which a c=1 login pays several times (client, authd's loop\n"
                   "and worker, MariaDB).")
        if dovecot_hits:
            wakeups += (f" 100x Dovecot's c=1 cache-on rate is {100 * dovecot_hits:,.0f}/s: reached only\n"
                        "while the scheduler keeps the client and authd on one CPU.")
    return f"""## Conc-1 latency: one hash, then the rest ({len(c1['hash'])} interleaved runs, medians)

| p50 at c=1 | ms | over one hash, or rate |
|---|---:|---:|
| one hash (`bench_crypt_ceiling -j 1`) | {h:.3f} | - |
| authd, passwd-file passdb (same users and hashes, no SQL) | {f:.3f} | {100 * (f / h - 1):+.1f}% |
| authd, SQL passdb (the bench's rows) | {q:.3f} | {100 * (q / h - 1):+.1f}% |
{bare}{hits}
Without SQL authd adds {f - h:.3f} ms to a hash (protocol, two thread hand-offs, socket round
trip); the SQL query adds {q - f:.3f} ms more: a TCP round trip to a MariaDB thread that sleeps
between logins. The 10% target leaves {0.1 * h:.3f} ms for both.{wakeups}
"""
