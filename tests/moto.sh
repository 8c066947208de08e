# Sourced by tests/run: installs the moto AWS emulator from PyPI (moto[server], at least 5.2.5:
# older ones answer CompleteMultipartUpload in a shape the Rust SDK rejects) if it is missing
# or older, starts it on a free loopback port (through tests/moto_server.py, which serves one
# request at a time: moto is not safe under concurrent ones), stops it on exit (stop_moto), and exports what
# the AWS SDK needs to use it: AWS_ENDPOINT_URL, a region and dummy credentials.

moto_ok() {
  python3 - <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import moto.server  # the [server] extra's entry point
v = tuple(int(p) for p in version("moto").split(".")[:3])
sys.exit(0 if v >= (5, 2, 5) else 1)
PY
}
if ! moto_ok; then
  log "installing moto[server]>=5.2.5 (PyPI)"
  python3 -m pip install -q 'moto[server]>=5.2.5'
  moto_ok || { echo "moto[server]>=5.2.5 is still missing after pip install" >&2; exit 1; }
fi

MOTO_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MOTO_LOG=$(mktemp /tmp/realnet-moto.XXXXXX.log)
log "starting moto on 127.0.0.1:$MOTO_PORT"
python3 tests/moto_server.py 127.0.0.1 "$MOTO_PORT" >"$MOTO_LOG" 2>&1 &
MOTO_PID=$!
stop_moto() { kill "$MOTO_PID" 2>/dev/null || true; rm -f "$MOTO_LOG"; }
for _ in $(seq 100); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$MOTO_PORT/moto-api/')" 2>/dev/null && break
  sleep 0.1
done
python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$MOTO_PORT/moto-api/')" \
  || { echo "moto did not start:" >&2; cat "$MOTO_LOG" >&2; exit 1; }

export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=moto AWS_SECRET_ACCESS_KEY=moto
unset AWS_PROFILE AWS_SESSION_TOKEN
