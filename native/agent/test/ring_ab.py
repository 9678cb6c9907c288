#!/usr/bin/env python3
# Runs ring_bench builds (test/ring_bench.c) A/B interleaved and pools their rounds: per configuration the
# minimum and the median of the producer's ns per record (its thread's CPU time: other sessions' load takes
# the CPUs away in wall time) over every round of every run, and the drops.
# Usage: ring_ab.py RUNS ROUNDS RECORDS RING_KIB GAP BIN_A [BIN_B ...]   (each run: ROUNDS rounds of RECORDS records)
import statistics
import subprocess
import sys


def main():
    runs, rounds, records, kib, gap = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    bins = sys.argv[6:]
    pooled = {b: {} for b in bins}
    for _ in range(runs):
        for b in bins:
            out = subprocess.run([b, rounds, records, kib, gap, "raw"], check=True, capture_output=True, text=True).stdout
            for line in out.splitlines():
                if not line.startswith("raw\t"):
                    continue
                _, cfg, _wall, ns, drops = line.split("\t")
                p = pooled[b].setdefault(cfg, ([], []))
                p[0].append(float(ns))
                p[1].append(float(drops))
    cfgs = list(pooled[bins[0]].keys())
    print(f"{runs} runs x {rounds} rounds x {records} records, ring {kib} KiB, gap {gap}, interleaved; ns per record (producer thread CPU time), drops %")
    print(f"{'consumer':24}" + "".join(f" | {b.split('/')[-1]:>24}" for b in bins))
    for c in cfgs:
        row = f"{c:24}"
        for b in bins:
            ns, dr = pooled[b][c]
            row += f" | {min(ns):6.1f} {statistics.median(ns):7.1f} {statistics.mean(dr):7.2f}%"
        print(row)
    print("(each cell: minimum, median, mean drops)")


main()
