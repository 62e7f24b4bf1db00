#!/usr/bin/env bash
# EMR bootstrap action: install Dark Halo Scope on this node for the cluster's Python.
#
# usage: install_dhs.sh ARTIFACTS_S3_URI WHEEL_NAME PYTHON_VERSION
#   ARTIFACTS_S3_URI  s3://.../runs/<run id>/artifacts (holds the wheel, requirements.txt, SHA256SUMS)
#   WHEEL_NAME        dark_halo_scope-<version>-py3-none-any.whl
#   PYTHON_VERSION    e.g. 3.11 (the interpreter PYSPARK_PYTHON points at: /usr/bin/python3.11)
#
# Installs the pinned requirements (pip --require-hashes: every file checked against the SHA-256
# pinned in requirements.txt), then the wheel without deps; verifies both files by SHA-256;
# prepares NUMBA_CACHE_DIR (numba, used by lenstronomy, needs a writable cache on every node);
# links the installed jobs/ package at /opt/dhs/jobs for spark-submit. Any failure stops the
# bootstrap and with it the cluster: EMR reports the failing node and this script's output.
set -euo pipefail

ARTIFACTS="${1:?usage: install_dhs.sh ARTIFACTS_S3_URI WHEEL_NAME PYTHON_VERSION}"
WHEEL="${2:?usage: install_dhs.sh ARTIFACTS_S3_URI WHEEL_NAME PYTHON_VERSION}"
PY_VERSION="${3:?usage: install_dhs.sh ARTIFACTS_S3_URI WHEEL_NAME PYTHON_VERSION}"
PYTHON="/usr/bin/python${PY_VERSION}"
WORK_DIR="/mnt/dhs-bootstrap"
NUMBA_CACHE_DIR="/tmp/numba_cache"
JOBS_LINK="/opt/dhs/jobs"

log() { echo "[dhs-bootstrap $(date -u +%H:%M:%S)] $*" >&2; }
trap 'log "FAILED at line ${LINENO}: ${BASH_COMMAND}"' ERR

case "${ARTIFACTS}" in
  s3://*) ;;
  *) log "ARTIFACTS must be an s3:// URI, got '${ARTIFACTS}'"; exit 2 ;;
esac

if [[ ! -x "${PYTHON}" ]]; then
  log "installing python${PY_VERSION}"
  sudo dnf install -y -q "python${PY_VERSION}" "python${PY_VERSION}-pip" "python${PY_VERSION}-devel"
fi
"${PYTHON}" -m pip --version >/dev/null 2>&1 || sudo "${PYTHON}" -m ensurepip --upgrade

sudo mkdir -p "${WORK_DIR}"
sudo chown "$(id -u):$(id -g)" "${WORK_DIR}"
for name in "${WHEEL}" requirements.txt SHA256SUMS; do
  aws s3 cp --only-show-errors "${ARTIFACTS%/}/${name}" "${WORK_DIR}/${name}"
done
(cd "${WORK_DIR}" && sha256sum --check --strict SHA256SUMS)

log "installing pinned, hash-checked requirements for ${PYTHON}"
# Every pin carries the SHA-256 of its distribution files (emr/packaging.py): pip refuses any
# file whose hash differs. The file pins the whole dependency closure, so --no-deps installs
# exactly it. pip itself is not upgraded (an unpinned download); pip >= 8 enforces the hashes.
sudo "${PYTHON}" -m pip install --quiet --no-cache-dir --require-hashes --no-deps \
  -r "${WORK_DIR}/requirements.txt"
log "installing ${WHEEL}"
sudo "${PYTHON}" -m pip install --quiet --no-cache-dir --no-deps --force-reinstall "${WORK_DIR}/${WHEEL}"

sudo mkdir -p "${NUMBA_CACHE_DIR}"
sudo chmod 1777 "${NUMBA_CACHE_DIR}"
echo "export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR}" | sudo tee /etc/profile.d/dhs.sh >/dev/null

JOBS_DIR="$("${PYTHON}" -c 'import jobs, os; print(os.path.dirname(jobs.__file__))')"
sudo mkdir -p "$(dirname "${JOBS_LINK}")"
sudo ln -sfn "${JOBS_DIR}" "${JOBS_LINK}"

NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR}" "${PYTHON}" -c 'import dhs_gen, jobs.common, lenstronomy; print("dhs ok:", dhs_gen.__file__)'
log "done: ${WHEEL} on ${PYTHON}, jobs at ${JOBS_LINK}"
