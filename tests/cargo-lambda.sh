# Sourced by tests/run and tests/bench: installs cargo-lambda and ziglang (the linker
# `cargo lambda build` cross-compiles with) from PyPI if either is missing.

cargo_lambda_ok() {
  command -v cargo-lambda >/dev/null && cargo lambda --version >/dev/null 2>&1 &&
    python3 -c 'import ziglang' 2>/dev/null
}
if ! cargo_lambda_ok; then
  log "installing cargo-lambda and ziglang (PyPI)"
  python3 -m pip install -q 'cargo-lambda>=1.8,<2' ziglang
  # pip's scripts folder may not be on PATH (a user install, a fresh virtualenv).
  PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$HOME/.local/bin:$PATH"
  export PATH
  hash -r
  cargo_lambda_ok || { echo "cargo-lambda or ziglang is still missing after pip install" >&2; exit 1; }
fi
