# Sourced by the scripts in this folder: one cargo target dir and model cache outside the
# clone, so CI and every checkout share one llama.cpp build and one copy of the models.
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vazhi/target}"
export VAZHI_MODELS="${VAZHI_MODELS:-$HOME/.cache/vazhi/models}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
