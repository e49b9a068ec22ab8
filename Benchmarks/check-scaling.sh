#!/usr/bin/env bash
# How `pgevents check` grows with the number of notifying tables: generates migrations with N tables (each
# with a few typed columns and a JSON notify trigger on INSERT/UPDATE/DELETE), and times the check.
#   Benchmarks/check-scaling.sh [N …]      (default: 1 10 50 100)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product pgevents >&2
binary=$(swift build -c release --show-bin-path)/pgevents
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in "${@:-1 10 50 100}"; do
  for count in $n; do
    dir="$work/tables-$count"
    mkdir -p "$dir"
    {
      echo "CREATE FUNCTION notify_row() RETURNS trigger LANGUAGE plpgsql AS \$\$"
      echo "DECLARE r record := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;"
      echo "BEGIN PERFORM pg_notify(TG_ARGV[0], json_build_object('op', TG_OP, 'id', r.id)::text); RETURN NULL; END \$\$;"
      for i in $(seq 1 "$count"); do
        echo "CREATE TABLE t$i (id bigserial PRIMARY KEY, name varchar(200) NOT NULL, amount numeric(12,2), seen_at timestamptz DEFAULT now(), note text);"
        echo "CREATE TRIGGER t${i}_notify AFTER INSERT OR UPDATE OR DELETE ON t$i FOR EACH ROW EXECUTE FUNCTION notify_row('t${i}_changed');"
      done
    } > "$dir/001_tables.sql"
    start=$(date +%s.%N)
    "$binary" check "$dir" --format json > "$dir/report.json" || { echo "check failed for $count tables" >&2; exit 1; }
    end=$(date +%s.%N)
    checks=$(python3 -c "import json,sys; r=json.load(open('$dir/report.json')); print(r['summary']['checks'])")
    printf '%4d tables: %6.2f s wall, %5d checks\n' "$count" "$(echo "$end - $start" | bc)" "$checks"
  done
done
