#!/usr/bin/env bash
# Build llama.cpp's GGUF converter and tools (llama-quantize, llama-simple, llama-server) from the llama-cpp-python source
# package, which vendors the whole llama.cpp tree. Used by the GPU image, by CI (GGUF export test) and by
# `python -m titlegen_assets.demo` when llama.cpp is missing.
#   docker/build_llama_cpp.sh [DEST]   (default: $LLAMA_CPP_DIR or ~/.cache/titlegen/llama.cpp)
# Takes 12–15 minutes on 2 cores (README, Quick start); an existing build at DEST is kept. GGML_NATIVE=OFF: portable
# x86-64 kernels up to AVX2 (no AVX-512), the same on every machine. The source package is checked against its pinned
# sha256 (pip's hash-checking mode) before anything in it is unpacked or built. Build progress is printed; the whole
# output goes to DEST.build.log. PYTHON: the interpreter whose pip downloads the source (default python3).
set -euo pipefail
VERSION=0.3.36
# PyPI's sha256 of llama_cpp_python-0.3.36.tar.gz (https://pypi.org/simple/llama-cpp-python/, checked 2026-12-02).
SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
DEST=${1:-${LLAMA_CPP_DIR:-$HOME/.cache/titlegen/llama.cpp}}
LOG="$DEST.build.log"
PYTHON=${PYTHON:-python3}
INSTALL="Debian/Ubuntu: sudo apt-get install build-essential cmake; Fedora: sudo dnf install gcc-c++ make cmake; macOS: xcode-select --install && brew install cmake"
if [ -x "$DEST/build/bin/llama-simple" ] && [ -x "$DEST/build/bin/llama-quantize" ] && [ -x "$DEST/build/bin/llama-server" ] && [ -f "$DEST/convert_hf_to_gguf.py" ]; then
  echo "llama.cpp already built at $DEST"
  exit 0
fi
for tool in cmake make c++ tar "$PYTHON"; do
  if ! command -v "$tool" > /dev/null; then
    echo "build_llama_cpp.sh: '$tool' is not installed; building llama.cpp needs CMake >= 3.14, make and a C/C++ compiler ($INSTALL), and Python with pip" >&2
    exit 1
  fi
done
mkdir -p "$(dirname "$DEST")"
: > "$LOG"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "llama-cpp-python==$VERSION --hash=sha256:$SHA256" > "$work/requirements.txt"
echo "build_llama_cpp.sh: downloading the llama-cpp-python $VERSION source (75 MB; checked against sha256 ${SHA256:0:16}…)"
if ! "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: --require-hashes -r "$work/requirements.txt" \
    -d "$work" >> "$LOG" 2>&1; then
  tail -20 "$LOG" >&2
  echo "build_llama_cpp.sh: the llama-cpp-python $VERSION source could not be downloaded, or it is not the file whose sha256 is pinned here ($SHA256): nothing was built. pip's output is above and in $LOG" >&2
  exit 1
fi
tar xzf "$work/llama_cpp_python-$VERSION.tar.gz" -C "$work"
src="$work/llama_cpp_python-$VERSION/vendor/llama.cpp"
fail() {
  tail -40 "$LOG" >&2
  echo "build_llama_cpp.sh: the llama.cpp build failed while $1; the whole log is $LOG. It needs CMake >= 3.14, make and a C/C++ compiler ($INSTALL)." >&2
  exit 1
}
echo "build_llama_cpp.sh: configuring (log: $LOG)"
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_USE_PREBUILT_UI=OFF \
  >> "$LOG" 2>&1 || fail "configuring with cmake"
jobs=$(getconf _NPROCESSORS_ONLN)
echo "build_llama_cpp.sh: compiling llama-simple, llama-quantize and llama-server with $jobs jobs (cmake's progress below)"
# cmake's "[ 42%] Building CXX object ..." lines show the progress; everything (warnings included) goes to the log.
set +e
cmake --build "$src/build" --target llama-simple llama-quantize llama-server -j"$jobs" 2>&1 \
  | tee -a "$LOG" | grep --line-buffered '^\['
built=${PIPESTATUS[0]}
set -e
[ "$built" -eq 0 ] || fail "compiling"
rm -rf "$DEST"
mv "$src" "$DEST"
echo "llama.cpp built at $DEST"
