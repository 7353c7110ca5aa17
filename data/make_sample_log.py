#!/usr/bin/env python3
"""Write data/sample/access.log.gz: a small, seeded, made-up login log.

Apache combined format, 3 days (2018-11-10 to 2018-11-12 UTC), 60 users who
log in from a home and a work network, timestamps in each user's own UTC
offset (+0000, -0500, +0530, +0545, -0800), other site traffic, non-200
statuses, and a handful of broken lines so that rejects have work. No real
person, address or log is in it; every address comes from the seeded RNG.

    python3 data/make_sample_log.py        # rewrites data/sample/access.log.gz
"""
import datetime as dt
import gzip
import os
import random

rng = random.Random(7)
OFFSETS = [0, -300, 330, 345, -480]
PATHS = ["/", "/index.html", "/static/app.js", "/account", "/logout"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 12_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
]
START = dt.datetime(2018, 11, 10, tzinfo=dt.timezone.utc)


def net():
    return (rng.randint(1, 223), rng.randint(0, 255), rng.randint(0, 255))


def ip(prefix):
    return "%d.%d.%d.%d" % (*prefix, rng.randint(1, 254))


users = [
    dict(name="user_%d" % i, home=net(), work=net(), offset=rng.choice(OFFSETS), agent=rng.choice(AGENTS))
    for i in range(60)
]
lines = []
for _ in range(3000):
    u = rng.choice(users)
    t = START + dt.timedelta(seconds=rng.randrange(3 * 86400))
    off = dt.timedelta(minutes=u["offset"])
    local = (t + off).strftime("%d/%b/%Y:%H:%M:%S")
    sign = "+" if u["offset"] >= 0 else "-"
    tz = "%s%02d%02d" % (sign, abs(u["offset"]) // 60, abs(u["offset"]) % 60)
    addr = ip(u["home"] if rng.random() < 0.6 else u["work"])
    if rng.random() < 0.5:
        path, status, user = "/login_success", 200, u["name"]
    else:
        path, status, user = rng.choice(PATHS), rng.choice([200, 200, 200, 302, 404, 500]), "-"
    method = "GET" if rng.random() < 0.9 else "POST"
    size = rng.randint(200, 30000)
    lines.append((t, '%s - %s [%s %s] "%s %s HTTP/1.1" %d %d "-" "%s"' % (addr, user, local, tz, method, path, status, size, u["agent"])))
lines.sort(key=lambda x: x[0])
out = [line for _, line in lines]
# Broken lines a real log has: cut off, impossible date, garbage.
out.insert(500, out[500][:60])
out.insert(1500, '203.0.113.9 - user_1 [31/Feb/2018:10:00:00 +0000] "GET /login_success HTTP/1.1" 200 10 "-" "curl/7.61"')
out.insert(2500, "\x16\x03\x01 not a log line")
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample", "access.log.gz")
with gzip.GzipFile(path, "wb", mtime=0) as f:
    f.write(("\n".join(out) + "\n").encode())
print("wrote", path, len(out), "lines")
