#!/bin/bash
# EC2 user-data for a pixpool cache node, for the launch template the manager's ec2 provider
# launches from (or the Auto Scaling group's). At first boot it installs Node.js 24 and pixpool,
# then starts `pixpool cache-node --announce ec2` under systemd: the node announces itself to
# the manager, which checks the instance against EC2 (it runs, carries the pool's tags, the URL
# is its address) before the node enters the pool. docs/deploy.md, "AWS", says how to use it.
#
# Runs on Amazon Linux 2023 and Debian or Ubuntu, x86_64 or arm64. Fill in the settings below.
# Keep the pool's secret in SSM Parameter Store (PIXPOOL_SECRET_PARAMETER, a SecureString) so it
# never sits in user-data: anyone who may read the launch template or the instance's user-data
# (ec2:DescribeLaunchTemplateVersions, ec2:DescribeInstanceAttribute, or any process on the
# instance through the metadata service) could read a PIXPOOL_SECRET written here.
set -euo pipefail

# ---- settings ---------------------------------------------------------------------------------
# pixpool's source as a tarball with package-lock.json (git archive; docs/deploy.md), over https.
PIXPOOL_TARBALL_URL='https://artifacts.example.com/pixpool/pixpool.tar.gz'
# Its SHA-256, so that a tampered or truncated download is refused; empty: not checked.
PIXPOOL_TARBALL_SHA256=''
PIXPOOL_MANAGER_URL='http://10.0.0.2:5002'
# The secret's SSM parameter (read with the instance profile: ssm:GetParameter, and kms:Decrypt
# for its key); or, with this empty, the secret itself in PIXPOOL_SECRET.
PIXPOOL_SECRET_PARAMETER='/pixpool/secret'
PIXPOOL_SECRET=''
# MiB of images the node holds: a full node takes about 1.15 × this + 80 MiB of memory. The
# manager then sets the pool's capacity; keep it at this or below.
PIXPOOL_CAPACITY_MB=512
NODE_MAJOR=24
# -------------------------------------------------------------------------------------------------

# One instance-metadata value (IMDSv2), e.g. `imds local-ipv4`.
imds() {
  local token
  token=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' \
    http://169.254.169.254/latest/api/token)
  curl -fsS -H "X-aws-ec2-metadata-token: ${token}" "http://169.254.169.254/latest/meta-data/$1"
}

# The pool's secret on stdout: from SSM when PIXPOOL_SECRET_PARAMETER names it (the AWS CLI is
# on Amazon Linux; Debian gets it below), else PIXPOOL_SECRET. Never logged.
read_secret() {
  local secret
  if [ -n "${PIXPOOL_SECRET_PARAMETER}" ]; then
    secret=$(aws ssm get-parameter --region "$(imds placement/region)" \
      --name "${PIXPOOL_SECRET_PARAMETER}" --with-decryption \
      --query Parameter.Value --output text) || {
      echo "pixpool user-data: cannot read ${PIXPOOL_SECRET_PARAMETER} from SSM" >&2
      return 1
    }
  else
    secret=${PIXPOOL_SECRET}
  fi
  if [ -z "${secret}" ]; then
    echo 'pixpool user-data: no secret: set PIXPOOL_SECRET_PARAMETER or PIXPOOL_SECRET' >&2
    return 1
  fi
  printf '%s' "${secret}"
}

exec > >(tee -a /var/log/pixpool-user-data.log) 2>&1
echo "pixpool user-data: starting at $(date -Is)"

if command -v dnf >/dev/null 2>&1; then
  dnf install -y -q tar xz >/dev/null
elif command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl ca-certificates tar xz-utils >/dev/null
  if [ -n "${PIXPOOL_SECRET_PARAMETER}" ] && ! command -v aws >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq awscli >/dev/null
  fi
fi
pool_secret=$(read_secret)

# Node.js: the newest release of the major line, checked against the release's SHA-256 list.
case "$(uname -m)" in
  x86_64) node_arch=x64 ;;
  aarch64) node_arch=arm64 ;;
  *) echo "pixpool user-data: no Node.js build for $(uname -m)" >&2; exit 1 ;;
esac
node_dist="https://nodejs.org/dist/latest-v${NODE_MAJOR}.x"
work=$(mktemp -d)
curl -fsSL --retry 5 -o "$work/SHASUMS256.txt" "$node_dist/SHASUMS256.txt"
node_tarball=$(awk -v arch="$node_arch" '$2 ~ ("^node-v[0-9.]+-linux-" arch "\\.tar\\.xz$") { print $2 }' "$work/SHASUMS256.txt")
curl -fsSL --retry 5 -o "$work/$node_tarball" "$node_dist/$node_tarball"
(cd "$work" && grep " $node_tarball\$" SHASUMS256.txt | sha256sum -c -)
rm -rf /opt/node && mkdir -p /opt/node
tar -xJf "$work/$node_tarball" -C /opt/node --strip-components=1
ln -sf /opt/node/bin/node /usr/local/bin/node
export PATH=/opt/node/bin:$PATH
echo "pixpool user-data: node $(node -v)"

# pixpool, with its production dependencies, owned by root and read by the service.
curl -fsSL --retry 5 -o "$work/pixpool.tar.gz" "$PIXPOOL_TARBALL_URL"
if [ -n "$PIXPOOL_TARBALL_SHA256" ]; then
  echo "$PIXPOOL_TARBALL_SHA256  $work/pixpool.tar.gz" | sha256sum -c -
fi
rm -rf /opt/pixpool && mkdir -p /opt/pixpool
tar -xzf "$work/pixpool.tar.gz" -C /opt/pixpool --strip-components=1
(cd /opt/pixpool && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
id pixpool >/dev/null 2>&1 ||
  useradd --system --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin pixpool

# The address the pool reaches this node at: its private IPv4, from the metadata service (IMDSv2).
private_ip=$(imds local-ipv4)

install -d -m 0755 /etc/pixpool
umask 077
cat >/etc/pixpool/pixpool.env <<EOF
PIXPOOL_HOST=0.0.0.0
PIXPOOL_SECRET=${pool_secret}
EOF
umask 022

install -m 0644 /opt/pixpool/deploy/systemd/pixpool-cache-node.service /etc/systemd/system/
install -d -m 0755 /etc/systemd/system/pixpool-cache-node.service.d
cat >/etc/systemd/system/pixpool-cache-node.service.d/ec2.conf <<EOF
[Service]
ExecStart=
ExecStart=/usr/local/bin/node /opt/pixpool/bin/pixpool.js cache-node --announce ec2 --manager-url ${PIXPOOL_MANAGER_URL} --advertise-url http://${private_ip}:5001 --capacity ${PIXPOOL_CAPACITY_MB}
EOF
rm -rf "$work"

systemctl daemon-reload
systemctl enable --now pixpool-cache-node.service
echo "pixpool user-data: pixpool-cache-node started at $(date -Is), announcing http://${private_ip}:5001"
