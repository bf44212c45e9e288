#!/usr/bin/env bash
# Build llama.cpp's GGUF converter and tools (llama-quantize, llama-simple, llama-server) from the llama-cpp-python source
# package, which vendors the whole llama.cpp tree. Used by the GPU image and by CI (GGUF export test).
#   docker/build_llama_cpp.sh [DEST]   (default: $LLAMA_CPP_DIR or ~/.cache/titlegen/llama.cpp)
# Takes about 5 minutes on 2 cores; an existing build at DEST is kept.
set -euo pipefail
VERSION=0.3.36
DEST=${1:-${LLAMA_CPP_DIR:-$HOME/.cache/titlegen/llama.cpp}}
if [ -x "$DEST/build/bin/llama-simple" ] && [ -x "$DEST/build/bin/llama-quantize" ] && [ -x "$DEST/build/bin/llama-server" ] && [ -f "$DEST/convert_hf_to_gguf.py" ]; then
  echo "llama.cpp already built at $DEST"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --no-binary :all: -d "$work" "llama-cpp-python==$VERSION"
tar xzf "$work/llama_cpp_python-$VERSION.tar.gz" -C "$work"
src="$work/llama_cpp_python-$VERSION/vendor/llama.cpp"
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_USE_PREBUILT_UI=OFF > "$work/cmake.log"
cmake --build "$src/build" --target llama-simple llama-quantize llama-server -j"$(nproc)" > "$work/build.log" \
  || { tail -40 "$work/build.log"; exit 1; }
mkdir -p "$(dirname "$DEST")"
rm -rf "$DEST"
mv "$src" "$DEST"
echo "llama.cpp built at $DEST"
