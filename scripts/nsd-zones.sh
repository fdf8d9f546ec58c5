#!/usr/bin/env bash
# Serve testdata/zones/ with two NSD instances on loopback, the real
# authoritative DNS server the end-to-end tests compare mfcheck against:
#   ns1 = 127.0.53.1:53 serves testdata/zones/*.zone
#   ns2 = 127.0.53.2:53 serves testdata/zones/ns2/*.zone (stale copies)
# Usage: scripts/nsd-zones.sh start|stop [STATE_DIR]   (needs root for port 53)
set -euo pipefail
cmd=${1:?usage: $0 start|stop [STATE_DIR]}
repo=$(cd "$(dirname "$0")/.." && pwd)
state=${2:-$repo/.tmp/nsd}
zones=$repo/testdata/zones

# zone_name FILE: the zone a file holds, from its name ("root.zone" is ".").
zone_name() {
  local base
  base=$(basename "$1" .zone)
  if [ "$base" = root ]; then echo .; else echo "$base"; fi
}

write_conf() { # NAME ADDR ZONEDIR
  local name=$1 addr=$2 dir=$3 conf=$state/$1/nsd.conf f
  mkdir -p "$state/$name"
  {
    echo "server:"
    echo "  ip-address: $addr"
    echo "  port: 53"
    echo "  username: \"\""
    echo "  chroot: \"\""
    echo "  zonesdir: \"$dir\""
    echo "  database: \"\""
    echo "  zonelistfile: \"$state/$name/zone.list\""
    echo "  xfrdfile: \"$state/$name/xfrd.state\""
    echo "  xfrdir: \"$state/$name\""
    echo "  pidfile: \"$state/$name/nsd.pid\""
    echo "  logfile: \"$state/$name/nsd.log\""
    echo "  server-count: 1"
    echo "  verbosity: 1"
    echo "  hide-version: yes"
    echo "remote-control:"
    echo "  control-enable: no"
    for f in "$dir"/*.zone; do
      echo "zone:"
      echo "  name: \"$(zone_name "$f")\""
      echo "  zonefile: \"$f\""
    done
  } > "$conf"
  nsd-checkconf "$conf"
  for f in "$dir"/*.zone; do
    nsd-checkzone "$(zone_name "$f")" "$f" >/dev/null
  done
}

stop_one() {
  local pidfile=$state/$1/nsd.pid
  local pid
  if [ -f "$pidfile" ]; then
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$pidfile"
  fi
}

wait_ready() { # ADDR
  for _ in $(seq 100); do
    if dig +time=1 +tries=1 +norec @"$1" SOA zones.test >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "NSD on $1 did not answer" >&2
  return 1
}

case $cmd in
start)
  stop_one ns1; stop_one ns2
  write_conf ns1 127.0.53.1 "$zones"
  write_conf ns2 127.0.53.2 "$zones/ns2"
  nsd -c "$state/ns1/nsd.conf"
  nsd -c "$state/ns2/nsd.conf"
  wait_ready 127.0.53.1
  for _ in $(seq 100); do
    dig +time=1 +tries=1 +norec @127.0.53.2 SOA disagree.test >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "NSD serving testdata/zones on 127.0.53.1:53 and 127.0.53.2:53"
  ;;
stop)
  stop_one ns1; stop_one ns2
  ;;
*)
  echo "usage: $0 start|stop [STATE_DIR]" >&2; exit 2;;
esac
