#!/usr/bin/env bash
# A real Postfix with STARTTLS on loopback, the SMTP peer the end-to-end TLS
# and send tests compare mfcheck against (with Postfix's own posttls-finger,
# and swaks).
#
# openssl (not our Go code) makes a root CA, an intermediate CA and the leaf
# certificates; one Postfix instance of our own serves one smtpd per address:
#   127.0.62.10 mx-good.tls.test        valid leaf + intermediate; the lab's
#                                       "gateway": its Received lines say
#                                       "by mx-good.tls.test (Postfix) with ESMTPS"
#   127.0.62.11 mx-wrongname.tls.test   valid chain, names other.tls.test only
#   127.0.62.12 mx-nochain.tls.test     leaf without its intermediate
#   127.0.62.13 mx-expired.tls.test     expired leaf (valid chain)
#   127.0.62.14 mx-selfsigned.tls.test  self-signed leaf
#   127.0.62.15 mx-plain.tls.test       no STARTTLS
#   127.0.62.20 cloud-locked.tls.test   valid chain; a locked-down cloud
#                                       mailbox endpoint: RCPT from any client
#                                       but the gateway (127.0.62.10, which no
#                                       test connects from) gets "550 5.7.1 ...
#                                       direct delivery refused: mail must come
#                                       through the gateway"
#   127.0.62.21 cloud-open.tls.test     valid chain; an open cloud endpoint
#                                       that accepts the lab's domains from
#                                       anyone
# The lab's mail domains are tls.test and cutover.test (the domain of the
# MX cutover test, test/e2e/cutover_test.go). Every listener takes the same
# recipients: mail for any @tls.test or @cutover.test recipient is delivered
# to the one Maildir STATE/mail/tls.test/ (files in new/; virtual(8) allows
# no per-user paths from a pattern); find a message by a token header in
# new/ and cur/. cloud-locked refuses both domains alike. Every other
# recipient is rejected and nothing is ever relayed or sent out (all
# outbound transports are error:).
#
# STATE gets CA.pem (the root only, for --ca-file / posttls-finger -F /
# swaks --tls-ca-path), the certificates in certs/, the Postfix configuration
# in etc/ (MAIL_CONFIG for posttls-finger), the queue in spool/ and the log in
# postfix.log (maillog_file), where each listener's smtpd logs as
# postfix/NAME/smtpd (e.g. postfix/cloud-open/smtpd[PID]), so a test can tell
# which listener a connection reached.
#
# Usage: scripts/postfix-lab.sh start|stop [STATE_DIR]   (root: port 25)
set -euo pipefail
cmd=${1:?usage: $0 start|stop [STATE_DIR]}
repo=$(cd "$(dirname "$0")/.." && pwd)
state=${2:-$repo/.tmp/postfix}
mkdir -p "$state"
state=$(cd "$state" && pwd)
conf=$state/etc
spool=$state/spool
certs=$state/certs
mail=$state/mail
domain=tls.test
# The domains mail is accepted for (all into $mail/$domain).
mail_domains="$domain cutover.test"
banner_tag=mfcheck-lab

# name host address tls policy: tls "none" for the host without STARTTLS;
# policy "gateway-only" rejects RCPT from every client but the gateway.
hosts=(
  "good         mx-good       127.0.62.10 may  open"
  "wrongname    mx-wrongname  127.0.62.11 may  open"
  "nochain      mx-nochain    127.0.62.12 may  open"
  "expired      mx-expired    127.0.62.13 may  open"
  "selfsigned   mx-selfsigned 127.0.62.14 may  open"
  "plain        mx-plain      127.0.62.15 none open"
  "cloud-locked cloud-locked  127.0.62.20 may  gateway-only"
  "cloud-open   cloud-open    127.0.62.21 may  open"
)
# The one client cloud-locked accepts: the gateway's address. Connections
# from this machine come from 127.0.0.1 unless bound, so tests are refused.
gateway_addr=127.0.62.10
refusal="direct delivery refused: mail must come through the gateway"

# The virtual(8) delivery agent writes the Maildir as this user.
mail_user=nobody
mail_uid=$(id -u "$mail_user")
mail_gid=$(id -g "$mail_user")

ossl() { openssl "$@" 2>>"$certs/openssl.log"; }

write_openssl_cnf() {
  cat > "$certs/openssl.cnf" <<'EOF'
# Only what the lab needs; independent of the system's openssl.cnf.
[ req ]
distinguished_name = dn
prompt             = no
[ dn ]
CN = unused

[ ca ]
default_ca = intermediate
[ intermediate ]
dir             = .
database        = $dir/index.txt
serial          = $dir/serial
new_certs_dir   = $dir/newcerts
certificate     = $dir/intermediate.pem
private_key     = $dir/intermediate.key
default_md      = sha256
policy          = any
unique_subject  = no
copy_extensions = none
email_in_dn     = no
[ any ]
commonName = supplied

[ v3_root ]
basicConstraints       = critical, CA:true
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
[ v3_intermediate ]
basicConstraints       = critical, CA:true, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
[ v3_leaf ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
subjectAltName         = DNS:${ENV::LEAF_SAN}
[ v3_selfsigned ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
subjectAltName         = DNS:${ENV::LEAF_SAN}
EOF
}

# must_fail REASON ARGS...: openssl verify ARGS rejects the certificate for REASON.
must_fail() {
  local reason=$1 out
  shift
  if out=$(openssl verify -CAfile root.pem "$@" 2>&1); then
    echo "postfix-lab: openssl verify accepted $*: $out" >&2; return 1
  fi
  case $out in *"$reason"*) ;; *) echo "postfix-lab: openssl verify $*: want \"$reason\", got: $out" >&2; return 1;; esac
}

newkey() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

# leaf NAME CN [STARTDATE ENDDATE]: a leaf for CN signed by the intermediate
# (openssl ca, so an explicit validity window in the past is possible).
leaf() {
  local name=$1 cn=$2 start=${3:-} end=${4:-}
  local window=(-days 825)
  [ -n "$start" ] && window=(-startdate "$start" -enddate "$end")
  newkey "$name.key"
  LEAF_SAN=$cn ossl req -new -config openssl.cnf -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
  LEAF_SAN=$cn ossl ca -batch -notext -config openssl.cnf -extensions v3_leaf \
    "${window[@]}" -in "$name.csr" -out "$name.pem"
}

make_certs() {
  rm -rf "$certs"
  mkdir -p "$certs/newcerts"
  (
    cd "$certs"
    write_openssl_cnf
    : > index.txt
    echo 1000 > serial
    export LEAF_SAN=unused
    newkey root.key
    ossl req -x509 -new -config openssl.cnf -key root.key -subj "/CN=mfcheck lab root CA" \
      -extensions v3_root -days 3650 -out root.pem
    newkey intermediate.key
    ossl req -new -config openssl.cnf -key intermediate.key -subj "/CN=mfcheck lab intermediate CA" \
      -out intermediate.csr
    ossl x509 -req -in intermediate.csr -CA root.pem -CAkey root.key -CAcreateserial \
      -extfile openssl.cnf -extensions v3_intermediate -days 3650 -out intermediate.pem

    leaf good mx-good.$domain
    leaf wrongname other.$domain
    leaf nochain mx-nochain.$domain
    leaf expired mx-expired.$domain 20240101000000Z 20240401000000Z
    leaf cloud-locked cloud-locked.$domain
    leaf cloud-open cloud-open.$domain
    newkey selfsigned.key
    LEAF_SAN=mx-selfsigned.$domain ossl req -x509 -new -config openssl.cnf -key selfsigned.key \
      -subj "/CN=mx-selfsigned.$domain" -extensions v3_selfsigned -days 825 -out selfsigned.pem

    # Postfix chain files: the key, then the leaf, then what the server sends.
    for n in good wrongname expired cloud-locked cloud-open; do cat "$n.key" "$n.pem" intermediate.pem > "$n.chain.pem"; done
    cat nochain.key nochain.pem > nochain.chain.pem
    cat selfsigned.key selfsigned.pem > selfsigned.chain.pem
    chmod 600 ./*.key ./*.chain.pem
    # The independent check that the certificates are what their names say.
    openssl verify -CAfile root.pem -untrusted intermediate.pem good.pem >/dev/null
    openssl verify -CAfile root.pem -untrusted intermediate.pem -verify_hostname mx-good.$domain good.pem >/dev/null
    for n in cloud-locked cloud-open; do
      openssl verify -CAfile root.pem -untrusted intermediate.pem -verify_hostname "$n.$domain" "$n.pem" >/dev/null
    done
    must_fail "certificate has expired" -untrusted intermediate.pem expired.pem
    must_fail "unable to get local issuer certificate" nochain.pem
    must_fail "self-signed certificate" selfsigned.pem
    must_fail "hostname mismatch" -untrusted intermediate.pem -verify_hostname mx-wrongname.$domain wrongname.pem
  )
  cp "$certs/root.pem" "$state/CA.pem"
}

write_postfix_conf() {
  local addrs=() h name host addr tls policy
  for h in "${hosts[@]}"; do
    read -r name host addr tls policy <<<"$h"
    addrs+=("$addr")
  done
  # The Maildir exists (empty) from the start, so "no message yet" and "not
  # a Maildir" are different answers; virtual(8) delivers into it as $mail_user.
  mkdir -p "$conf" "$spool" "$mail/$domain/new" "$mail/$domain/cur" "$mail/$domain/tmp"
  chown -R "$mail_uid:$mail_gid" "$mail"
  chmod 700 "$mail/$domain" "$mail/$domain/new" "$mail/$domain/cur" "$mail/$domain/tmp"
  local interfaces
  interfaces=$(IFS=,; echo "${addrs[*]}")
  cat > "$conf/main.cf" <<EOF
# Written by scripts/postfix-lab.sh: a loopback-only lab instance.
compatibility_level = 3.6
queue_directory = $spool
data_directory = $state/data
maillog_file = $state/postfix.log
maillog_file_prefixes = $state
# Each smtpd in master.cf binds its own address ($interfaces). Those are
# not configured on lo (Linux routes all of 127/8 there), and Postfix refuses
# inet_interfaces addresses that no interface has; nothing listens on this.
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = mx.$domain
mydomain = $domain
myorigin = $domain
mynetworks = 127.0.0.0/8
smtpd_banner = \$myhostname ESMTP $banner_tag Postfix
biff = no

# Accept mail only for @$(echo $mail_domains | sed 's/ / and @/g'), into one Maildir; never relay, never send out.
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
relayhost =
virtual_mailbox_domains = $(echo $mail_domains | sed 's/ /, /g')
virtual_mailbox_base = $mail
# One Maildir for every recipient of those domains (virtual(8) allows no regexp
# substitution, so no per-user paths); messages are files under .../new/.
virtual_mailbox_maps = static:$domain/
virtual_uid_maps = static:$mail_uid
virtual_gid_maps = static:$mail_gid
virtual_minimum_uid = 1
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = reject_unauth_destination
smtpd_reject_unlisted_recipient = yes
default_transport = error:outbound mail is disabled in the mfcheck lab
relay_transport = error:outbound mail is disabled in the mfcheck lab
local_transport = error:local delivery is disabled in the mfcheck lab
notify_classes =
bounce_queue_lifetime = 0
maximal_queue_lifetime = 1h

# TLS: each listener in master.cf has its own chain file and level.
smtpd_tls_security_level = none
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_tls_session_cache_database =
EOF
  # cloud-locked's client check (cidr: needs no postmap); evaluated in
  # smtpd_recipient_restrictions, so the refusal is the reply to RCPT.
  cat > "$conf/gateway-only.cidr" <<EOF
# Written by scripts/postfix-lab.sh: only the gateway may deliver here.
$gateway_addr/32 OK
0.0.0.0/0 550 5.7.1 $refusal
EOF
  {
    echo "# Written by scripts/postfix-lab.sh. No chroot: the queue is ours."
    for h in "${hosts[@]}"; do
      read -r name host addr tls policy <<<"$h"
      echo "$addr:smtp inet n - n - - smtpd"
      echo "  -o myhostname=$host.$domain"
      echo "  -o syslog_name=postfix/$name"
      echo "  -o smtpd_tls_security_level=$tls"
      if [ "$tls" != none ]; then
        echo "  -o smtpd_tls_chain_files=$certs/$name.chain.pem"
      fi
      if [ "$policy" = gateway-only ]; then
        echo "  -o smtpd_recipient_restrictions=reject_unauth_destination,check_client_access,cidr:$conf/gateway-only.cidr"
      fi
    done
    cat <<'EOF'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
  } > "$conf/master.cf"
}

# pf ARGS: postfix -c CONF ARGS. Postfix writes its reasons (e.g. a fatal
# configuration error) to stderr only when that is a terminal, and there is
# no syslog here: give it one with script(1) so failures say why.
pf() {
  script -qec "postfix -c '$conf' $*" /dev/null | tr -d '\r'
  return "${PIPESTATUS[0]}"
}

master_pid() {
  local f=$spool/pid/master.pid pid
  [ -f "$f" ] || return 1
  pid=$(tr -d ' \n' < "$f")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # Only a master of this instance (a stale file may name a reused pid).
  grep -qF "$conf" "/proc/$pid/environ" 2>/dev/null || grep -qF -- "$conf" "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

stop_postfix() {
  local pid
  [ -f "$conf/main.cf" ] || return 0
  pid=$(master_pid) || { rm -f "$spool/pid/master.pid"; return 0; }
  pf stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  echo "postfix-lab: master $pid did not stop in 10s; killing it" >&2
  kill -9 "$pid" 2>/dev/null || true
}

# banner ADDR: the 220 greeting, or nothing.
banner() {
  local line=
  exec 3<>"/dev/tcp/$1/25" 2>/dev/null || return 1
  IFS= read -r -t 2 line <&3 || true
  printf 'QUIT\r\n' >&3 2>/dev/null || true
  exec 3<&- 3>&-
  printf '%s' "$line"
}

wait_ready() {
  local h name host addr tls policy line
  for h in "${hosts[@]}"; do
    read -r name host addr tls policy <<<"$h"
    for i in $(seq 100); do
      line=$(banner "$addr" || true)
      case $line in "220 $host.$domain ESMTP $banner_tag"*) break;; esac
      if [ "$i" = 100 ]; then
        echo "postfix-lab: $addr:25 did not greet (got: ${line:-nothing}); see $state/postfix.log" >&2
        tail -20 "$state/postfix.log" >&2 || true
        return 1
      fi
      sleep 0.1
    done
  done
}

case $cmd in
start)
  started=$(date +%s%N)
  stop_postfix
  # A clean lab every time: no queue, mail or log left from an earlier run.
  rm -rf "$spool" "$mail" "$state/data" "$state/postfix.log"
  make_certs
  write_postfix_conf
  pf check
  pf start
  wait_ready
  echo "Postfix lab: STARTTLS on 127.0.62.10-15:25 (tls.test; mail for @${mail_domains// /, @}), cloud-locked on 127.0.62.20:25" \
    "(refuses all but $gateway_addr), cloud-open on 127.0.62.21:25; CA in $state/CA.pem," \
    "Maildir $mail/$domain, log $state/postfix.log; up in $(( ($(date +%s%N) - started) / 1000000 )) ms"
  ;;
stop)
  stop_postfix
  ;;
*)
  echo "usage: $0 start|stop [STATE_DIR]" >&2; exit 2;;
esac
