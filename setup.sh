#!/usr/bin/env bash
# Set-up on a fresh Debian machine:
# - Java 17 and Maven (the embedded Apache Kafka broker runs on the JVM; Maven
#   fetches it from Maven Central into .kafka/lib, pinned in ops/kafka/pom.xml);
# - Prometheus and promtool (the ops tests use the real ones), Chromium and
#   ChromeDriver (the lead board's browser test), a CJK font (so its
#   screenshots show Chinese), stunnel (TLS in front of the embedded broker,
#   for the TLS test), nginx (the registry proxy's test);
# - a virtualenv in .venv with the hub and its test tools.
set -euo pipefail
cd "$(dirname "$0")"
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1; }
missing=""
if ! command -v java >/dev/null || [ "$(java_major)" -lt 17 ] 2>/dev/null; then
  missing="$missing openjdk-17-jre-headless"
fi
command -v mvn >/dev/null || missing="$missing maven"
command -v promtool >/dev/null && command -v prometheus >/dev/null || missing="$missing prometheus"
command -v chromium >/dev/null || missing="$missing chromium"
command -v chromedriver >/dev/null || missing="$missing chromium-driver"
command -v stunnel4 >/dev/null || missing="$missing stunnel4"
fc-list 2>/dev/null | grep -qi "noto sans cjk\|wenquanyi" || missing="$missing fonts-noto-cjk"
# the 通报's rendering test: LibreOffice prints the workbook, poppler makes the pictures
lean=""
command -v soffice >/dev/null || lean="$lean libreoffice-calc-nogui"
command -v pdftoppm >/dev/null || lean="$lean poppler-utils"
# the registry's read-only way in for the hub's services (ops/registry-proxy.conf)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || lean="$lean nginx"
if [ -n "$missing$lean" ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "setup: installing Debian packages:$missing$lean"
  $sudo apt-get update -qq
  [ -z "$missing" ] || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
  [ -z "$lean" ] || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $lean >/dev/null
fi
major=$(java_major)
if [ -z "$major" ] || [ "$major" -lt 17 ]; then
  echo "setup: Apache Kafka 4 needs Java 17 or later; 'java -version' says ${major:-nothing}." >&2
  echo "       Install openjdk-17-jre-headless and make it the default (update-alternatives --config java)." >&2
  exit 1
fi
# The broker: skipped when the pinned version is already there.
pinned=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' ops/kafka/pom.xml)
if [ ! -f ".kafka/lib/kafka_2.13-$pinned.jar" ] || [ ! -f ".kafka/lib/kafka-tools-$pinned.jar" ]; then
  echo "setup: fetching Apache Kafka $pinned from Maven Central into .kafka/lib"
  rm -rf .kafka/lib
  mvn -q -B -f ops/kafka/pom.xml dependency:copy-dependencies || {
    echo "setup: Maven could not fetch Apache Kafka $pinned (see above); check that Maven Central answers" >&2
    exit 1
  }
fi
python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
