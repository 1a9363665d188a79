# benches/realistic/scratch.sh — sourced by the scripts that run douane and nginx on the
# realistic harness's configuration (run.sh; benches/pair.sh, cpu.sh, allocs.sh).
#
# prepare_scratch DIR DOUANE_BIN: a fresh DIR holding what they all start from: nginx's
# directories and its two configurations (the origin, nginx.conf; the peer proxy,
# nginx-proxy.conf; one worker), a development certificate for localhost and 127.0.0.1
# (cert.pem, key.pem, made by DOUANE_BIN), douane.toml pointing at this checkout's data, and
# policies/ with the harness's policy.
prepare_scratch() {
  local dir=$1 bin=$2 realistic repo
  realistic=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd); repo=$(cd "$realistic/../.." && pwd)
  rm -rf "$dir"; mkdir -p "$dir"/{www,body,proxy,fastcgi,uwsgi,scgi,policies,audit}
  "$bin" certs dev --cert "$dir/cert.pem" --key "$dir/key.pem" --name localhost --name 127.0.0.1 >/dev/null
  for f in nginx nginx-proxy; do
    sed -e "s#@DIR@#$dir#g" -e "s#@WORKERS@#1#g" "$realistic/$f.conf" > "$dir/$f.conf"
  done
  sed "s#@REPO@#$repo#g" "$realistic/douane.toml" > "$dir/douane.toml"
  cp "$realistic/policy.toml" "$dir/policies/"
}

# connect_load: builds the new-connection client (connect-load/, a package of its own,
# outside the checkout's target/: CL_TARGET [/tmp/connect-load-target]) and prints its path.
connect_load() {
  local realistic target=${CL_TARGET:-/tmp/connect-load-target}
  realistic=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  CARGO_TARGET_DIR=$target cargo build --release -q --manifest-path "$realistic/connect-load/Cargo.toml"
  echo "$target/release/connect-load"
}
