#!/usr/bin/env python3
"""compose-same.py: docker-compose.cluster.yml's init, router, gateway and lb
services are docker-compose.yml's but for what the cluster changes: the Redis
URL (PARLEY_REDIS_URL), the routers' PARLEY_WAIT_REPLICAS, what they depend on
(cluster-init instead of redis) and comments. run.sh runs it in its
compose-config phase, so that the two files do not drift apart.

Usage: compose-same.py SINGLE.yml CLUSTER.yml  (exit status 1 on a difference,
each printed as "service: key: single ... / cluster ...")."""
import sys

import yaml

ALLOWED_ENV = {"PARLEY_REDIS_URL", "PARLEY_WAIT_REPLICAS"}


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)["services"]


def norm(svc):
    svc = dict(svc)
    svc.pop("depends_on", None)
    env = svc.get("environment")
    if isinstance(env, dict):
        svc["environment"] = {k: v for k, v in env.items() if k not in ALLOWED_ENV}
    return svc


def main():
    single, cluster = load(sys.argv[1]), load(sys.argv[2])
    bad = 0
    for name in ("init", "router", "gateway", "lb"):
        a, b = norm(single[name]), norm(cluster[name])
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                print(f"{name}: {key}: single {a.get(key)!r} / cluster {b.get(key)!r}")
                bad = 1
    if "redis" in cluster:
        print("the cluster file has a single redis service")
        bad = 1
    print("init, router, gateway, lb: the same in both files" if not bad else "the files differ")
    return bad


if __name__ == "__main__":
    sys.exit(main())
