#!/usr/bin/env bash
# Builds the natives the jar carries (run by Maven in generate-sources; see pom.xml):
#   libocto.so      taken from ${OCTO_LIB_DIR} (default ../target/release); only when it is missing
#                   does this run `cargo build --release -p octo-ffi` (CI builds it once, before).
#   libocto-jni.so  the JNI glue, src/main/c/*.c compiled with gcc against ../include/octo.h,
#                   linked to libocto.so with rpath $ORIGIN so the two load from one directory.
# Both land in TARGET/native/linux-x86_64/ (for java.library.path) and in
# TARGET/classes/META-INF/native/linux-x86_64/ (packed into the jar, extracted by the loader).
# Usage: build-native.sh JAVA_HOME TARGET_DIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
JAVA_HOME_DIR=${1:?usage: build-native.sh JAVA_HOME TARGET_DIR}
TARGET=${2:?usage: build-native.sh JAVA_HOME TARGET_DIR}

default_lib_dir=$ROOT/target/release
[ -n "${CARGO_TARGET_DIR:-}" ] && [ ! -e "$default_lib_dir/libocto.so" ] && default_lib_dir=$CARGO_TARGET_DIR/release
LIB_DIR=${OCTO_LIB_DIR:-$default_lib_dir}

if [ ! -e "$LIB_DIR/libocto.so" ]; then
  echo "build-native.sh: $LIB_DIR/libocto.so is missing; building it with cargo" >&2
  (cd "$ROOT" && cargo build --release -p octo-ffi >&2)
  LIB_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/release
fi
[ -e "$LIB_DIR/libocto.so" ] || { echo "build-native.sh: no libocto.so in $LIB_DIR" >&2; exit 1; }

[ -e "$JAVA_HOME_DIR/include/jni.h" ] || {
  echo "build-native.sh: $JAVA_HOME_DIR/include/jni.h is missing (a JDK, not a JRE, is needed)" >&2
  exit 1
}

OUT=$TARGET/native/linux-x86_64
JAR_DIR=$TARGET/classes/META-INF/native/linux-x86_64
mkdir -p "$OUT" "$JAR_DIR"

cp -f "$LIB_DIR/libocto.so" "$OUT/libocto.so.tmp" && mv -f "$OUT/libocto.so.tmp" "$OUT/libocto.so"

glue=$OUT/libocto-jni.so
sources=("$HERE"/src/main/c/*.c)
if [ ! -e "$glue" ] || [ -n "$(find "${sources[@]}" "$HERE"/src/main/c "$ROOT/include/octo.h" "$0" -newer "$glue" -print -quit)" ]; then
  gcc -std=c11 -O2 -g -fPIC -shared -Wall -Wextra -Werror -Wno-unused-parameter \
    -fvisibility=hidden \
    -I"$JAVA_HOME_DIR/include" -I"$JAVA_HOME_DIR/include/linux" -I"$ROOT/include" \
    "${sources[@]}" -o "$glue.tmp" \
    -L"$OUT" -locto -Wl,-rpath,'$ORIGIN' -Wl,--no-undefined -lpthread
  mv -f "$glue.tmp" "$glue"
fi

cp -f "$OUT/libocto.so" "$OUT/libocto-jni.so" "$JAR_DIR/"
