#!/bin/sh
# Install Huifang's Asterisk configuration (config/asterisk/) with the values of this
# deployment: the AMI secret and the addresses allowed to use it, and where FastAGI runs.
# The secret comes from the environment so it is never baked into the image.
set -eu
: "${HUIFANG_AMI_SECRET:?set HUIFANG_AMI_SECRET (the AMI user's secret)}"
: "${HUIFANG_AMI_PERMIT:=172.28.0.0/255.255.255.0}"
: "${HUIFANG_AGI_URL:=agi://agi:4573}"
src=/etc/huifang-asterisk
dst=/etc/asterisk

# awk reads the values from ENVIRON: no shell or sed quoting of the secret
awk '
  /^bindaddr *=/ { print "bindaddr = 0.0.0.0"; next }
  /^permit *=/   { print "permit = " ENVIRON["HUIFANG_AMI_PERMIT"]; next }
  /^secret *=/   { print "secret = " ENVIRON["HUIFANG_AMI_SECRET"]; next }
  { print }
' "$src/manager.conf" > "$dst/manager.conf"
awk '/^HUIFANG_AGI *=/ { print "HUIFANG_AGI = " ENVIRON["HUIFANG_AGI_URL"]; next } { print }' \
  "$src/extensions.conf" > "$dst/extensions.conf"
# your trunk: mount your own file over /etc/huifang-asterisk/pjsip.conf
cp "$src/pjsip.conf" "$dst/pjsip.conf"
# app_amd and app_queue load only with their configuration (AMD() tuned for Mandarin)
cp "$src/amd.conf" "$dst/amd.conf"
cp "$src/queues.conf" "$dst/queues.conf"
mkdir -p /var/spool/asterisk/recording
chown asterisk:asterisk /var/spool/asterisk/recording
chmod 640 "$dst/manager.conf"
chown asterisk:asterisk "$dst/manager.conf" "$dst/extensions.conf" "$dst/pjsip.conf"
exec "$@"
