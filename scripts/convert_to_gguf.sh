#!/usr/bin/env bash
# Convert a model folder to GGUF with llama.cpp's own converter, to check that it converts.
#
#   scripts/convert_to_gguf.sh MODEL_FOLDER OUT.gguf
#
# The converter is the one vendored in llama-cpp-python's source distribution (fetched from
# PyPI; nothing is compiled). It runs in its own throwaway environment under .cache/gguf.
set -euo pipefail
model=$1
out=$2
work=.cache/gguf
version=0.3.36
python=${PYTHON:-python3}
mkdir -p "$work"
if [ ! -x "$work/venv/bin/python" ]; then
    "$python" -m venv "$work/venv"
    "$work/venv/bin/pip" install -qq torch==2.13.0 numpy sentencepiece safetensors transformers protobuf
fi
source_dir="$work/llama_cpp_python-$version/vendor/llama.cpp"
if [ ! -f "$source_dir/convert_hf_to_gguf.py" ]; then
    "$work/venv/bin/pip" download -q --no-deps --no-binary :all: -d "$work" "llama-cpp-python==$version"
    tar xzf "$work/llama_cpp_python-$version.tar.gz" -C "$work" \
        "llama_cpp_python-$version/vendor/llama.cpp/convert_hf_to_gguf.py" \
        "llama_cpp_python-$version/vendor/llama.cpp/conversion" \
        "llama_cpp_python-$version/vendor/llama.cpp/gguf-py"
    "$work/venv/bin/pip" install -qq -e "$source_dir/gguf-py"
fi
"$work/venv/bin/python" "$source_dir/convert_hf_to_gguf.py" "$model" --outfile "$out" --outtype f32
