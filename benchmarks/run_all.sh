#!/usr/bin/env bash
# Run every benchmark in turn (about 5 minutes) and keep the output in
# benchmarks/results/YYYY-MM-DDTHHMM.txt (git-ignored). Needs Redis on 127.0.0.1:6379
# and PostgreSQL on 127.0.0.1:5432 (database `test`, user `postgres`, trust auth).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
out="benchmarks/results/$(date +%Y-%m-%dT%H%M).txt"
{
  echo "# $(date -Iseconds) $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  .venv/bin/python benchmarks/webhook_accept.py
  .venv/bin/python benchmarks/end_to_end.py --db postgres
  .venv/bin/python benchmarks/end_to_end.py --db sqlite
  .venv/bin/python benchmarks/memory.py
} 2>&1 | tee "$out"
echo "# saved to $out"
