#!/usr/bin/env bash
# Make sure a MySQL-protocol server answers on 127.0.0.1:3306 with the suite's
# own user, and redis-server is installed (for `make bench`, also running on
# 127.0.0.1:6379): use running ones, else start the installed ones, else
# install mariadb-server / redis-server with apt-get when running as root.
# The browser tests need Debian's chromium at /usr/bin/chromium: installed the
# same way, else named (those tests then fail saying so; the rest still run).
set -euo pipefail

MYSQL_PORT=${TEST_MYSQL_PORT:-3306}
REDIS_PORT=${TEST_REDIS_PORT:-6379}

up() {  # host port -> exit 0 when something accepts TCP connections there
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_up() {  # name port: poll for up to 30 s
  for _ in $(seq 1 60); do
    up 127.0.0.1 "$2" && { echo "$1 is up on 127.0.0.1:$2"; return 0; }
    sleep 0.5
  done
  echo "$1 did not come up on 127.0.0.1:$2" >&2
  return 1
}

install_pkg() {  # package
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "Please install $1 (e.g. 'sudo apt-get install $1') or start it on 127.0.0.1." >&2
    exit 1
  fi
  echo "installing $1 with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

if up 127.0.0.1 "$MYSQL_PORT"; then
  echo "MySQL-protocol server is up on 127.0.0.1:$MYSQL_PORT"
else
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || install_pkg mariadb-server
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  if command -v start-stop-daemon >/dev/null; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  else
    /usr/sbin/mariadbd --user=mysql >/dev/null 2>&1 &
  fi
  wait_up MariaDB "$MYSQL_PORT"
fi
# The suite logs in as a user of its own, never as root: messaging_test with
# a generated password, kept in ~/.config/messaging-tests/mysql-url
# (owner-only; one for every checkout of this user, so two clones never
# reset each other's password). It may
# create, use and drop the databases whose names start with messaging (and grant on them),
# and create the users the credential-rotation and least-privilege tests need.
# Created once, through the socket as the server's root; TEST_MYSQL_URL
# names another server or user instead.
URL_DIR=${XDG_CONFIG_HOME:-$HOME/.config}/messaging-tests
URL_FILE=$URL_DIR/mysql-url
if [ -z "${TEST_MYSQL_URL:-}" ]; then
  login_ok() {  # the URL in the file still logs in
    [ -s "$URL_FILE" ] && .venv/bin/python - "$URL_FILE" <<'PY' 2>/dev/null
import sys
from urllib.parse import unquote, urlsplit
import pymysql
u = urlsplit(open(sys.argv[1]).read().strip())
pymysql.connect(host=u.hostname, port=u.port, user=unquote(u.username), password=unquote(u.password),
                ssl_disabled=True, connect_timeout=3).close()
PY
  }
  if ! login_ok; then
    if ! mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1; then
      echo "error: cannot create the test user: the server's root does not log in through the socket here;" \
           "create a user with rights on messaging_% databases and set TEST_MYSQL_URL=mysql://user:pass@127.0.0.1:$MYSQL_PORT" >&2
      exit 1
    fi
    password=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
    for host in 127.0.0.1 localhost; do
      mariadb -uroot -e "CREATE USER IF NOT EXISTS 'messaging_test'@'$host';
        ALTER USER 'messaging_test'@'$host' IDENTIFIED BY '$password';
        GRANT ALL PRIVILEGES ON \`messaging%\`.* TO 'messaging_test'@'$host' WITH GRANT OPTION;
        GRANT CREATE USER ON *.* TO 'messaging_test'@'$host';"
    done
    (umask 077 && mkdir -p "$URL_DIR" && echo "mysql://messaging_test:$password@127.0.0.1:$MYSQL_PORT" >"$URL_FILE")
    echo "created the MariaDB user messaging_test (URL in $URL_FILE)"
  fi
fi

# The suite starts redis-servers of its own on free ports; only `make bench`
# (`ensure-services.sh bench`) uses one on $REDIS_PORT.
command -v redis-server >/dev/null || install_pkg redis-server
if [ "${1:-}" = bench ]; then
  if up 127.0.0.1 "$REDIS_PORT"; then
    echo "Redis is up on 127.0.0.1:$REDIS_PORT"
  else
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no >/dev/null
    wait_up Redis "$REDIS_PORT"
  fi
fi

# tests/e2e/test_web_client.py drives Debian's chromium through Playwright
# (Playwright's own browser download is not used); `make bench` needs none.
if [ "${1:-}" != bench ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    install_pkg chromium
  else
    echo "warning: /usr/bin/chromium is missing, so tests/e2e/test_web_client.py will fail:" \
         "install Debian's chromium (e.g. 'sudo apt-get install chromium')." >&2
  fi
fi
