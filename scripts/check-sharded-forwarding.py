#!/usr/bin/env python3
"""Every virtual method of store::Store (src/store/store.h) must be overridden
by the sharded store (src/store/postgres/sharded.cc): a method it does not
forward silently answers with Store's default ("not supported", an empty
result) on a sharded installation (issue 15). Exits 1 naming the missing ones.

Usage: check-sharded-forwarding.py [REPO_ROOT]
"""
import os
import re
import sys


def virtual_methods(header):
    start = header.index("class Store {")
    end = header.index("\n};", start)
    names = []
    for name in re.findall(r"virtual\s+[^;{]*?\b(\w+)\s*\(", header[start:end]):
        if name != "Store" and name not in names:
            names.append(name)
    return names


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    header = open(os.path.join(root, "src/store/store.h")).read()
    sharded = open(os.path.join(root, "src/store/postgres/sharded.cc")).read()
    names = virtual_methods(header)
    missing = [n for n in names
               if not re.search(r"\b" + n + r"\s*\([^;{}]*?\)\s*(const\s*)?override\b", sharded)]
    if missing:
        print("the sharded store does not forward: " + ", ".join(missing))
        return 1
    print(f"the sharded store overrides all {len(names)} virtual methods of Store")
    return 0


if __name__ == "__main__":
    sys.exit(main())
