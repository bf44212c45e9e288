#!/usr/bin/env bash
# How long the code location takes to import (what the UI and the daemon pay on every reload). Goal: <= 1.5 s.
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/time -v python -c "import titlegen_assets.definitions" 2>&1 | grep -E "Elapsed|Maximum resident"
