#!/usr/bin/env bash
# The Java binding (bindings-java/): `mvn package` builds the JNI glue against include/octo.h,
# packs it with libocto.so (the release build 30-c-abi.sh made: no second Rust build) into the jar
# and runs the JUnit suite under -Xcheck:jni. Then: no JNI warning in any test output, the jar
# carries both natives and loads them by itself. Cargo runs only for what is missing (libocto, or octo-bench: the Rust Echo
# server and load generator the cross tests start).
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
export OCTO_LIB_DIR=${OCTO_LIB_DIR:-$TARGET/release}

if [ ! -e "$OCTO_LIB_DIR/libocto.so" ]; then
  echo "60-java: $OCTO_LIB_DIR/libocto.so is missing; building it"
  cargo build --release -p octo-ffi
fi
if [ ! -x "$TARGET/release/octo-bench" ]; then
  echo "60-java: $TARGET/release/octo-bench is missing; building it"
  cargo build --release -p octo-bench
fi
export OCTO_BENCH_BIN=$TARGET/release/octo-bench

cd bindings-java
# Offline first (the local Maven repository has everything after one build); online otherwise.
mkdir -p target
rm -rf target/surefire-reports
if ! mvn -B -q -Dstyle.color=never -o package >target/mvn-offline.log 2>&1; then
  if grep -q "offline mode" target/mvn-offline.log; then
    mvn -B -q -Dstyle.color=never package
  else
    cat target/mvn-offline.log
    exit 1
  fi
fi

if grep -l "WARNING in native method\|FATAL ERROR in native method" target/surefire-reports/*-output.txt 2>/dev/null; then
  echo "60-java: -Xcheck:jni reported JNI misuse (files above)" >&2
  exit 1
fi
jar=target/octo-java-0.1.0.jar
for lib in libocto.so libocto-jni.so; do
  jar tf "$jar" | grep -qx "META-INF/native/linux-x86_64/$lib" || {
    echo "60-java: $jar lacks META-INF/native/linux-x86_64/$lib" >&2
    exit 1
  }
done
# The jar alone (no natives on java.library.path) extracts and loads its natives.
probe=$(java -Xcheck:jni -Djava.library.path=/nonexistent -cp "$jar:target/test-classes" com.meituan.octo.LoaderProbe)
case "$probe" in
  EXTRACTED*) echo "60-java: the jar loads its own natives: $probe" ;;
  *) echo "60-java: the jar did not load its own natives: $probe" >&2; exit 1 ;;
esac
grep -h "^native memory" target/surefire-reports/*-output.txt || true
tests=$(grep -ho 'tests="[0-9]*"' target/surefire-reports/TEST-*.xml | tr -dc '0-9\n' | awk '{s += $1} END {print s}')
echo "60-java: $tests tests passed"
