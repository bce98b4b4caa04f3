#!/usr/bin/env bash
# Install and prepare the real servers that ferryman's integration tests run against.
#
#   bash scripts/install-test-servers.sh        (as root; Debian/Ubuntu)
#
# Idempotent: a second run installs nothing and changes nothing. What it does:
#   * apt-get install vsftpd openssh-server lftp curl postgresql mariadb-server mariadb-client
#     gpg gpg-agent gpgconf chromium fonts-dejavu-core rclone (only the missing ones; one apt-get
#     update first, and only when something has to be installed); the database servers are
#     never run as services: the load tests start their own (tests/servers/postgres.py,
#     tests/servers/mariadb.py) in temporary data directories; GnuPG for the OpenPGP tests
#     (tests/pgp_keys.py); chromium for the dashboard's browser tests;
#   * ProFTPD (proftpd-core + proftpd-mod-crypto for mod_tls) unpacked, not installed, under
#     /opt/ferryman-test/proftpd: the Debian packages conflict with vsftpd's (both provide
#     ftp-server), so dpkg cannot hold both; only its shared libraries are apt-installed;
#   * makes sure no vsftpd/proftpd/sshd system service is left running by the install: the tests
#     start their own servers from temporary configs, as children, on free loopback
#     ports;
#   * creates the local test user the vsftpd tests log in as, with a fixed password, and a PAM
#     service that authenticates with pam_unix only (no pam_shells, no /etc/ftpusers);
#   * creates vsftpd's secure_chroot_dir and sshd's privilege-separation directory;
#   * creates a second, key-only test user with a login shell for the SFTP tests that run
#     commands over SSH (exec_hash): no password at all (not even a test one), so it can only
#     log in with the keys the test sshd's temporary authorized_keys file lists.
#
# TEST-ONLY CREDENTIALS: the user below exists only for the tests, logs in only to the vsftpd
# instances that the tests start on 127.0.0.1, has no login shell, and its password is public
# (tests/servers/vsftpd.py knows it). Never run this on a machine reachable by others with a
# system FTP service that uses the PAM service below.
set -euo pipefail

TEST_USER="ferrytest"
TEST_PASSWORD="ferrytest-only-not-secret"  # test-only, see above; tests/servers/vsftpd.py
TEST_HOME="/var/lib/ferryman-test/home"
SHELL_USER="ferrytest-sh"  # tests/servers/sshd.py SHELL_USER
SHELL_HOME="/var/lib/ferryman-test/shell-home"
PAM_SERVICE="ferryman-vsftpd-test"
SECURE_CHROOT_DIR="/var/run/vsftpd/empty"
# chromium (+ a font for readable screenshots): the web dashboard's browser tests (Playwright
# launches /usr/bin/chromium; it never downloads a browser of its own); rclone: a peer of the
# latency benchmarks (benchmarks/run.py --latency), not needed by the tests
PACKAGES=(vsftpd openssh-server lftp curl postgresql mariadb-server mariadb-client gpg gpg-agent
    gpgconf chromium fonts-dejavu-core rclone)
# ProFTPD's runtime libraries beyond what the base system has (proftpd-core's Depends)
PROFTPD_LIBS=(libhiredis0.14 libmemcached11 libmemcachedutil2 libpcre2-posix3)
PROFTPD_PACKAGES=(proftpd-core proftpd-mod-crypto)
PROFTPD_ROOT="/opt/ferryman-test/proftpd"  # tests/servers/proftpd.py PROFTPD_ROOT

log() { printf 'install-test-servers: %s\n' "$*"; }

if [[ ${EUID} -ne 0 ]]; then
    echo "install-test-servers: must run as root (it installs packages and creates a user)" >&2
    exit 1
fi

is_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == "installed" ]]
}

server_pids() {
    # pids of running vsftpd/proftpd/sshd processes (exact process name), one a line, sorted
    { pgrep -x vsftpd || true; pgrep -x proftpd || true; pgrep -x sshd || true;
      pgrep -x postgres || true; pgrep -x mariadbd || true; } | sort -n
}

missing=()
for pkg in "${PACKAGES[@]}" "${PROFTPD_LIBS[@]}"; do
    is_installed "${pkg}" || missing+=("${pkg}")
done

if ((${#missing[@]} > 0)); then
    log "installing: ${missing[*]}"
    before_pids="$(server_pids)"

    # Keep the packages' maintainer scripts from starting the system services at all
    # (invoke-rc.d honours policy-rc.d; exit 101 = action forbidden). Only when none exists:
    # an existing policy is left as it is.
    temp_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        temp_policy="/usr/sbin/policy-rc.d"
        printf '#!/bin/sh\n# temporary, from ferryman scripts/install-test-servers.sh\nexit 101\n' \
            >"${temp_policy}"
        chmod 0755 "${temp_policy}"
        trap 'rm -f "${temp_policy}"' EXIT
    fi

    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"

    if [[ -n "${temp_policy}" ]]; then
        rm -f "${temp_policy}"
        trap - EXIT
    fi

    # If the install started a service anyway (e.g. under systemd), stop it again. Only pids that
    # were not running before the install count as started by it.
    new_pids="$(comm -13 <(printf '%s\n' "${before_pids}") <(server_pids) | sed '/^$/d' || true)"
    if [[ -n "${new_pids}" ]]; then
        log "the install started server processes ($(echo "${new_pids}" | tr '\n' ' ')); stopping"
        for svc in vsftpd proftpd ssh postgresql mariadb; do
            service "${svc}" stop >/dev/null 2>&1 || true
        done
        sleep 1
        for pid in ${new_pids}; do
            if kill -0 "${pid}" 2>/dev/null; then
                name="$(ps -o comm= -p "${pid}" || true)"
                if [[ "${name}" =~ ^(vsftpd|proftpd|sshd|postgres|mariadbd)$ ]]; then
                    log "stopping ${name} pid ${pid} (started by this install)"
                    kill "${pid}" 2>/dev/null || true
                fi
            fi
        done
    fi
else
    log "packages already installed: ${PACKAGES[*]}"
fi

# ProFTPD, unpacked beside vsftpd (see the top). Re-unpacked only when the version differs.
proftpd_version="$(apt-cache policy proftpd-core | awk '/Candidate:/ {print $2}')"
if [[ -z "${proftpd_version}" || "${proftpd_version}" == "(none)" ]]; then
    log "apt knows no proftpd-core; running apt-get update once"
    apt-get update
    proftpd_version="$(apt-cache policy proftpd-core | awk '/Candidate:/ {print $2}')"
fi
if [[ "$(cat "${PROFTPD_ROOT}/.version" 2>/dev/null || true)" != "${proftpd_version}" ]]; then
    log "unpacking proftpd ${proftpd_version} into ${PROFTPD_ROOT}"
    work="$(mktemp -d)"
    chmod 0755 "${work}"  # apt-get download runs as _apt where it can
    (cd "${work}" && apt-get download "${PROFTPD_PACKAGES[@]}")
    rm -rf "${PROFTPD_ROOT}"
    install -d -m 0755 "${PROFTPD_ROOT}"
    for deb in "${work}"/*.deb; do
        dpkg-deb -x "${deb}" "${PROFTPD_ROOT}"
    done
    rm -rf "${work}"
    echo "${proftpd_version}" >"${PROFTPD_ROOT}/.version"
fi

# The dedicated test user (no login shell; the PAM service below does not check shells).
if ! id -u "${TEST_USER}" >/dev/null 2>&1; then
    log "creating test user ${TEST_USER}"
    install -d -m 0755 "$(dirname "${TEST_HOME}")"
    useradd --system --create-home --home-dir "${TEST_HOME}" --shell /usr/sbin/nologin \
        --comment "ferryman test-only FTP user" "${TEST_USER}"
fi
install -d -m 0755 -o "${TEST_USER}" -g "$(id -gn "${TEST_USER}")" "${TEST_HOME}"
# Set the password only when it is not already the expected one (keeps /etc/shadow untouched).
current_hash="$(getent shadow "${TEST_USER}" | cut -d: -f2)"
if [[ "$(python3 - "${current_hash}" "${TEST_PASSWORD}" 2>/dev/null <<'EOF' || echo differ
import sys
try:
    import crypt  # deprecated in 3.11+, still present up to 3.12
except ImportError:
    sys.exit(1)
h, pw = sys.argv[1], sys.argv[2]
print("same" if h and crypt.crypt(pw, h) == h else "differ")
EOF
)" != "same" ]]; then
    log "setting the test-only password of ${TEST_USER}"
    echo "${TEST_USER}:${TEST_PASSWORD}" | chpasswd
fi

# The key-only shell user. Password field '*': no password can match, and unlike '!' it does
# not lock the account, which sshd (UsePAM no) would refuse even for key authentication.
if ! id -u "${SHELL_USER}" >/dev/null 2>&1; then
    log "creating key-only test user ${SHELL_USER}"
    install -d -m 0755 "$(dirname "${SHELL_HOME}")"
    useradd --system --create-home --home-dir "${SHELL_HOME}" --shell /bin/sh \
        --password '*' --comment "ferryman test-only SSH user (keys only)" "${SHELL_USER}"
fi
if [[ "$(getent shadow "${SHELL_USER}" | cut -d: -f2)" != "*" ]]; then
    usermod --password '*' "${SHELL_USER}"
fi
if [[ "$(getent passwd "${SHELL_USER}" | cut -d: -f7)" != "/bin/sh" ]]; then
    usermod --shell /bin/sh "${SHELL_USER}"
fi

# PAM service used by the test vsftpd instances: pam_unix only.
pam_file="/etc/pam.d/${PAM_SERVICE}"
pam_content='# ferryman test-only vsftpd service (scripts/install-test-servers.sh): pam_unix only,
# no pam_shells and no /etc/ftpusers list, so the test user needs no login shell.
auth     required pam_unix.so nodelay
account  required pam_unix.so
session  required pam_permit.so'
if [[ ! -f "${pam_file}" || "$(cat "${pam_file}")" != "${pam_content}" ]]; then
    log "writing ${pam_file}"
    printf '%s\n' "${pam_content}" >"${pam_file}"
    chmod 0644 "${pam_file}"
fi

# vsftpd's secure_chroot_dir (must exist, be empty and not writable by the ftp user);
# sshd's privilege separation directory.
install -d -m 0755 "${SECURE_CHROOT_DIR}"
install -d -m 0755 /run/sshd

# Final check: no system vsftpd/proftpd/sshd service left running by us.
if pgrep -x vsftpd >/dev/null || pgrep -x proftpd >/dev/null || pgrep -x sshd >/dev/null; then
    log "note: vsftpd/proftpd/sshd processes are running (not started by this script's install):"
    pgrep -a -x vsftpd || true
    pgrep -a -x proftpd || true
    pgrep -a -x sshd || true
fi

# The PostgreSQL server binaries live under /usr/lib/postgresql/VERSION/bin (Debian's layout).
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
for bin in /usr/sbin/vsftpd "${PROFTPD_ROOT}/usr/sbin/proftpd" /usr/sbin/sshd /usr/bin/lftp /usr/bin/curl \
    "${pg_bin}/initdb" "${pg_bin}/postgres" /usr/bin/psql /usr/sbin/mariadbd /usr/bin/mariadb-install-db \
    /usr/bin/mariadb /usr/bin/gpg /usr/bin/gpg-agent /usr/bin/gpgconf; do
    [[ -x "${bin}" ]] || { echo "install-test-servers: ${bin} missing after install" >&2; exit 1; }
done
log "ready (test users ${TEST_USER} and ${SHELL_USER}, PAM service ${PAM_SERVICE})"
