# Sourced by tests/run and tests/bench: installs PostgreSQL from Debian's packages if it is
# missing, starts a throwaway cluster on a free loopback port, stops and removes it on exit,
# and exports PGBIN, PGPORT, PGHOST and REALNET_TEST_PG_URL. With PG_SSL=1 the cluster serves
# TLS only, with a certificate from a throwaway CA whose certificate is REALNET_TEST_PG_CA.

log() { printf '\n== %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

if ! PGBIN=$(pg_bin); then
  log "installing PostgreSQL (Debian package postgresql)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
  PGBIN=$(pg_bin) || { echo "PostgreSQL is still missing after apt-get install postgresql" >&2; exit 1; }
fi

PGDIR=$(mktemp -d /tmp/realnet-pg.XXXXXX)
PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "$(id -u)" = 0 ]; then
  chown postgres "$PGDIR"
  RUN_PG=(runuser -u postgres --)
else
  RUN_PG=()
fi
stop_pg() {
  "${RUN_PG[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PGDIR"
}
trap stop_pg EXIT

SSL_OPTIONS=""
SSL_MODE=""
if [ -n "${PG_SSL:-}" ]; then
  if ! command -v openssl >/dev/null; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq openssl >/dev/null
  fi
  ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$PGDIR/server.ext"
  { openssl req -x509 "${ec[@]}" -days 2 -subj "/CN=Realnet test CA" -keyout "$PGDIR/ca.key" -out "$PGDIR/ca.crt" &&
    openssl req "${ec[@]}" -subj "/CN=localhost" -keyout "$PGDIR/server.key" -out "$PGDIR/server.csr" &&
    openssl x509 -req -in "$PGDIR/server.csr" -CA "$PGDIR/ca.crt" -CAkey "$PGDIR/ca.key" -CAcreateserial \
      -days 2 -extfile "$PGDIR/server.ext" -out "$PGDIR/server.crt"; } >"$PGDIR/openssl.log" 2>&1 \
    || { cat "$PGDIR/openssl.log" >&2; exit 1; }
  chmod 600 "$PGDIR/server.key"
  [ "$(id -u)" = 0 ] && chown postgres "$PGDIR/server.key" "$PGDIR/server.crt"
  # hostssl only: a plaintext connection is refused, so a passing test really used TLS.
  SSL_OPTIONS="-c ssl=on -c ssl_cert_file=$PGDIR/server.crt -c ssl_key_file=$PGDIR/server.key -c hba_file=$PGDIR/pg_hba.conf"
  printf 'local all all trust\nhostssl all all 127.0.0.1/32 trust\n' >"$PGDIR/pg_hba.conf"
  [ "$(id -u)" = 0 ] && chown postgres "$PGDIR/pg_hba.conf"
  SSL_MODE=" sslmode=require"
  export REALNET_TEST_PG_CA="$PGDIR/ca.crt"
fi

log "starting PostgreSQL ($PGBIN) on 127.0.0.1:$PGPORT"
"${RUN_PG[@]}" "$PGBIN/initdb" -D "$PGDIR/data" -A trust -U postgres >"$PGDIR/initdb.log" 2>&1 \
  || { cat "$PGDIR/initdb.log" >&2; exit 1; }
"${RUN_PG[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w \
  -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c max_connections=200 $SSL_OPTIONS ${PG_EXTRA_OPTIONS:-}" start >/dev/null \
  || { cat "$PGDIR/server.log" >&2; exit 1; }

export PGBIN PGPORT PGHOST=127.0.0.1 PGUSER=postgres
export REALNET_TEST_PG_URL="host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres$SSL_MODE"
