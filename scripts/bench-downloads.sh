#!/usr/bin/env bash
# Download benchmarks (one run, side by side): against curl on one connection, verified vs not, hashing vs
# openssl, parallel vs one connection under a 20 MB/s per-connection cap, peak memory. Needs curl and openssl.
# Uses about 2 x SIZE_MIB of temp space (default SIZE_MIB=2048), removed afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo bench -p comfyfleet-core --bench downloads
