#!/usr/bin/env python3
"""The README's side-by-side table: the same statistics for any login logs.

Usage:
  compare.py LOG_OR_GLOB [LOG_OR_GLOB ...]
      [--replay-peer ASN.tsv.gz --users 10000 --seed 1]

For each log (Apache combined, read by DuckDB with read_csv(delim=' ')),
over the lines that pass the login filter (GET /login_success, status 200):
lines, users, quantiles of login lines per user and of distinct addresses
per user (DuckDB's quantile_disc), the share of login lines whose address
has login lines of two or more users, and the distinct offsets, request
lines and statuses of all lines.

The travel share cannot be read off a log. --replay-peer replays the
random draws of ../../../shared/peers/make_login_log.py (the seeded
re-statement of SageMaker's generator) and prints the share of its events
that were travel draws; for ipi-synth the summary's travel_share is the
same quantity (logins from a visited network).
"""
import argparse
import json

import duckdb


def stats(path):
    con = duckdb.connect()
    con.execute(f"""
        create view lines as select * from read_csv('{path}', delim=' ', quote='"', escape='"',
            header=false, auto_detect=false, parallel=true,
            columns={{'ip':'VARCHAR','ident':'VARCHAR','usr':'VARCHAR','ts':'VARCHAR','tz':'VARCHAR',
                      'request':'VARCHAR','status':'VARCHAR','bytes':'VARCHAR','referer':'VARCHAR',
                      'agent':'VARCHAR'}})
    """)
    con.execute("""create table login as select usr, ip from lines
                   where request = 'GET /login_success HTTP/1.1' and status = '200'""")
    out = {"log": path}
    out["lines"], out["offsets"], out["requests"], out["statuses"] = con.execute(
        "select count(*), count(distinct tz), count(distinct request), count(distinct status) from lines"
    ).fetchone()
    out["login_lines"], out["users"] = con.execute("select count(*), count(distinct usr) from login").fetchone()
    for name, expr in [("logins_per_user", "count(*)"), ("ips_per_user", "count(distinct ip)")]:
        row = con.execute(f"""
            with u as (select usr, {expr} n from login group by usr)
            select quantile_disc(n, 0.1), quantile_disc(n, 0.5), quantile_disc(n, 0.9),
                   quantile_disc(n, 0.99), max(n), avg(n) from u""").fetchone()
        out[name] = dict(zip(["p10", "p50", "p90", "p99", "max", "mean"], [*row[:5], round(row[5], 1)]))
    out["shared_address_share"] = con.execute("""
        with a as (select ip, count(*) n, count(distinct usr) u from login group by ip)
        select sum(case when u >= 2 then n else 0 end) / sum(n) from a""").fetchone()[0]
    return out


def replay_peer(asn, users, seed):
    """The travel share of make_login_log.py's draws, replayed."""
    import gzip

    import numpy as np
    op = gzip.open if asn.endswith(".gz") else open
    with op(asn, "rt") as f:
        n = sum(1 for _ in f)
    rng = np.random.default_rng(seed)
    rng.integers(0, n, users)
    rng.integers(-50000, 50001, users)
    events = np.minimum((50 * (rng.pareto(1.0, users) + 1)).astype(np.int64), 10000)
    p_travel = rng.beta(1, 30, users)
    rng.beta(3, 5, users)
    user = np.repeat(np.arange(users), events)
    travel = rng.random(len(user)) < p_travel[user]
    return {"events": int(len(user)), "travel_share": float(travel.mean())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--replay-peer")
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    for log in a.logs:
        print(json.dumps(stats(log)))
    if a.replay_peer:
        print(json.dumps(replay_peer(a.replay_peer, a.users, a.seed)))


if __name__ == "__main__":
    main()
