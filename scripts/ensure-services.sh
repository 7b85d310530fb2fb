#!/usr/bin/env bash
# Make sure a MySQL-protocol server (127.0.0.1:3306) and Redis (127.0.0.1:6379)
# answer: use running ones, else start the installed ones, else install
# mariadb-server / redis-server with apt-get when running as root.
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
# The suite logs in as root without a password over TCP, as this machine's
# MariaDB allows; a fresh Debian install only lets root in over the socket.
if command -v mariadb >/dev/null && ! mariadb -h127.0.0.1 -P"$MYSQL_PORT" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1; then
    mariadb -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
      GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
  else
    echo "warning: root cannot log in to 127.0.0.1:$MYSQL_PORT without a password; set TEST_MYSQL_URL" >&2
  fi
fi

if up 127.0.0.1 "$REDIS_PORT"; then
  echo "Redis is up on 127.0.0.1:$REDIS_PORT"
else
  command -v redis-server >/dev/null || install_pkg redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no >/dev/null
  wait_up Redis "$REDIS_PORT"
fi
