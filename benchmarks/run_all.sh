#!/usr/bin/env bash
# Run the service benchmarks in turn (about 7 minutes) and keep the output in
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
  .venv/bin/python benchmarks/event_log_bench.py
  # Insights at a tenth of national size (~2 min); the full size (1,000,000 people,
  # 10,000,000 moments, ~25 min) is the script's default: see benchmarks/README.md.
  .venv/bin/python benchmarks/insights_bench.py --users 100000 --events 1000000
} 2>&1 | tee "$out"
echo "# saved to $out"
