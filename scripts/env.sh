# Sourced by the scripts in this folder: one cargo target dir and model cache outside the
# clone, so CI and every checkout share one llama.cpp build and one copy of the models.
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vazhi/target}"
export VAZHI_MODELS="${VAZHI_MODELS:-$HOME/.cache/vazhi/models}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Every script builds the same way: the whole workspace, all targets, one feature set. Cargo
# resolves features per build, and a different set for llama-cpp-sys-2's build dependencies
# means another ~8 minute llama.cpp build (docs/decisions/0008-ffi-boundary.md).
VAZHI_CARGO_FEATURES=(--features vazhi-ffi/test-hooks)
build_workspace() {
  cargo build --release --locked --workspace --all-targets "${VAZHI_CARGO_FEATURES[@]}"
}
