"""The table of docs/benchmarks.md for bench/compat: (a) emit and (b) ingest per Django/Python stack.

    python -m bench.compat_report .cache/bench-results/compat
"""
import json
import os
import sys


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return None


def main(argv):
    out = argv[1]
    stacks = [name for name in os.listdir(out) if os.path.isdir(os.path.join(out, name))]
    stacks.sort(key=lambda name: [int(x) for x in name.replace("django", "").replace("-py", ".").split(".")])
    print("| stack | (a) applogs p50 / p95 µs | + filter p50 µs | NullHandler p50 µs | django-db-logger p50 µs "
          "| peer / applogs p50 | (b) ingest rows/s | raw COPY rows/s | ingest / COPY | rows landed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for stack in stacks:
        caller = _load(os.path.join(out, stack, "handler_caller.json"))
        ingest = _load(os.path.join(out, stack, "handler_ingest.json"))
        if not caller or not ingest:
            print("| %s | (no result) |||||||||" % stack)
            continue
        s = caller["subjects"]
        m = ingest["median"]["as migrated"]
        machine = caller.get("machine", {})
        print("| Django %s / Python %s | %.2f / %.2f | %.2f | %.2f | %.0f | %.0fx | %s | %s | %.0f%% | %s |" % (
            machine.get("django", "?"), machine.get("python", "?"),
            s["applogs"]["p50_us"], s["applogs"]["p95_us"], s["applogs+filter"]["p50_us"], s["null"]["p50_us"],
            s["django-db-logger"]["p50_us"], caller["ratio_peer_over_applogs_p50"],
            "{:,.0f}".format(m["handler_rps"]), "{:,.0f}".format(m["copy_rps"]), 100 * m["ratio"],
            "all" if ingest["all_rows_landed"] else "NOT all"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
