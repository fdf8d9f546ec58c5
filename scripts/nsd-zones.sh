#!/usr/bin/env bash
# Serve testdata/zones/ with two NSD instances on loopback, the real
# authoritative DNS server the end-to-end tests compare mfcheck against:
#   ns1 = 127.0.53.1:53 serves testdata/zones/*.zone
#   ns2 = 127.0.53.2:53 serves testdata/zones/ns2/*.zone (stale copies)
# NSD serves a copy of testdata/zones in STATE_DIR/zones (made afresh by
# start), so a test can change one served zone without touching the repo:
#   swap ZONE FILE     copies FILE over the served copy of ZONE (on every
#                      instance that serves ZONE), makes NSD reload it
#                      (SIGHUP: NSD re-reads zone files whose mtime changed)
#                      and waits until each instance answers with FILE's
#                      SOA serial
#   restore ZONE       the same with the repo's own testdata/zones file(s)
# Usage: scripts/nsd-zones.sh start|stop [STATE_DIR]   (needs root for port 53)
#        scripts/nsd-zones.sh swap ZONE FILE [STATE_DIR]
#        scripts/nsd-zones.sh restore ZONE [STATE_DIR]
set -euo pipefail
usage="usage: $0 start|stop [STATE_DIR] | swap ZONE FILE [STATE_DIR] | restore ZONE [STATE_DIR]"
cmd=${1:?$usage}
repo=$(cd "$(dirname "$0")/.." && pwd)
case $cmd in
swap) zone=${2:?$usage}; file=${3:?$usage}; state=${4:-$repo/.tmp/nsd};;
restore) zone=${2:?$usage}; state=${3:-$repo/.tmp/nsd};;
*) state=${2:-$repo/.tmp/nsd};;
esac
if [ "$cmd" = start ]; then mkdir -p "$state"; fi
if [ -d "$state" ]; then state=$(cd "$state" && pwd); fi
# The repo's zone files, and the copy NSD serves.
src=$repo/testdata/zones
zones=$state/zones

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

# zone_file NAME: the file name of zone NAME ("." is root.zone).
zone_file() {
  local z=${1%.}
  if [ -z "$z" ]; then echo root.zone; else echo "$z.zone"; fi
}

# file_serial ZONE FILE: the SOA serial of FILE, as NSD reads it.
file_serial() {
  # -p prints the SOA over two lines: "NAME TTL IN SOA MNAME RNAME (" and
  # "SERIAL ...": the serial is the third word after SOA, parentheses aside.
  nsd-checkzone -p "$1" "$2" | tr '()' '  ' | awk '
    { for (i = 1; i <= NF; i++) { if (n) { if (++n == 4) { print $i; exit } } else if ($i == "SOA") n = 1 } }'
}

# served_serial ADDR ZONE: the SOA serial ADDR answers for ZONE, or nothing.
served_serial() {
  dig +time=1 +tries=1 +norec +short @"$1" SOA "$2" 2>/dev/null | awk 'NR == 1 { print $3 }'
}

# instances ZONE: "NAME ADDR DIR" of each instance serving ZONE.
instances() {
  local f
  f=$(zone_file "$1")
  [ -f "$zones/$f" ] && echo "ns1 127.0.53.1 $zones"
  [ -f "$zones/ns2/$f" ] && echo "ns2 127.0.53.2 $zones/ns2"
  return 0
}

# replace ZONE NS1_FILE NS2_FILE: install the files as the served copies of
# ZONE (NS2_FILE for ns2, if it serves ZONE), reload, wait for the serials.
replace() {
  local zone=$1 f name addr dir new want got pid started any=
  f=$(zone_file "$zone")
  started=$(date +%s%N)
  while read -r name addr dir; do
    [ -n "$name" ] || continue
    any=1
    new=$2; [ "$name" = ns2 ] && new=$3
    nsd-checkzone "$zone" "$new" >/dev/null
    [ -f "$state/$name/nsd.pid" ] || { echo "nsd-zones: $name is not running (start it first)" >&2; return 1; }
    # A new file (new inode, new mtime) in place of the old one: NSD compares
    # the mtime on SIGHUP, and a reader never sees half a file.
    cp "$new" "$dir/.$f.new"
    mv -f "$dir/.$f.new" "$dir/$f"
    pid=$(cat "$state/$name/nsd.pid")
    kill -HUP "$pid"
  done < <(instances "$zone")
  [ -n "$any" ] || { echo "nsd-zones: no instance serves $zone" >&2; return 1; }
  while read -r name addr dir; do
    new=$2; [ "$name" = ns2 ] && new=$3
    want=$(file_serial "$zone" "$new")
    for i in $(seq 100); do
      got=$(served_serial "$addr" "$zone")
      [ "$got" = "$want" ] && break
      if [ "$i" = 100 ]; then
        echo "nsd-zones: $name ($addr) still serves $zone serial ${got:-none}, not $want, 10s after the reload; see $state/$name/nsd.log" >&2
        return 1
      fi
      sleep 0.1
    done
  done < <(instances "$zone")
  echo "NSD serves $zone serial $(file_serial "$zone" "$2") from $2 (reloaded in $(( ($(date +%s%N) - started) / 1000000 )) ms)"
}

case $cmd in
start)
  stop_one ns1; stop_one ns2
  # A fresh copy of the repo's zones every time: nothing left from a swap.
  rm -rf "$zones"
  mkdir -p "$zones"
  cp -R "$src/." "$zones/"
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
swap)
  [ -f "$file" ] || { echo "nsd-zones: no file $file" >&2; exit 1; }
  # One file for both instances: the swapped zone is the same everywhere.
  replace "$zone" "$file" "$file"
  ;;
restore)
  f=$(zone_file "$zone")
  [ -f "$src/$f" ] || [ -f "$src/ns2/$f" ] || { echo "nsd-zones: the repo has no zone $zone" >&2; exit 1; }
  replace "$zone" "$src/$f" "$src/ns2/$f"
  ;;
*)
  echo "$usage" >&2; exit 2;;
esac
