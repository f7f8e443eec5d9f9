#!/bin/sh
# Build the example wasm tool and copy it next to this script (that copy is committed,
# so toolgate's tests and CI need neither the target nor this build).
#   rustup target add wasm32-wasip1   # once
set -eu
cd "$(dirname "$0")"
cargo build --target wasm32-wasip1 --release
cp target/wasm32-wasip1/release/word_stats.wasm word_stats.wasm
ls -l word_stats.wasm
