#!/usr/bin/env python3
"""Evaluate a candidate ONNX model against the original on real, deterministic inputs.

    python3 tools/evaluate.py ORIGINAL.onnx CANDIDATE.onnx \
        [--task auto|ocr_rec|ocr_det|text_cls|orientation|yolo|vad|generic] [--exact] [--json]

Both models run in onnxruntime (CPUExecutionProvider, 2 intra-op threads) on the same
inputs. Inputs are generated deterministically at run time (no network, no data files):

  ocr_rec      text lines rendered with PIL + DejaVu fonts (known ground-truth strings)
  text_cls     the same lines rotated 0 / 180 degrees (known labels)
  orientation  rendered text pages rotated 0 / 90 / 180 / 270 degrees (known labels)
  ocr_det      rendered document pages (known text-line boxes)
  yolo         photographs bundled with scikit-image
  vad          speech from espeak-ng if it is on PATH, otherwise synthetic voiced signals
  generic      seeded random tensors built from the model's input shapes / dtypes

For every task the script reports task metrics for the ORIGINAL and the CANDIDATE, their
agreement, and for every output tensor whether the candidate's values are bit-identical to
the original's (plus max abs diff, SNR, cosine similarity).

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

TASKS = ["ocr_rec", "ocr_det", "text_cls", "orientation", "yolo", "vad", "generic"]
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
                              dtype=None, nonfinite_mismatch=0)
                      for n in self.out_names}
        self.n_runs = 0

    def run(self, feeds):
        oo = self.so.run(None, feeds)
        try:
            oc = self.sc.run(None, feeds)
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
            den = math.sqrt(st["n_o"] * st["n_c"])
            cos = st["dot"] / den if den > 0 else (1.0 if st["n_o"] == st["n_c"] else 0.0)
            if st["shape_mismatch"] or st["nonfinite_mismatch"]:
                # NaN/inf where the original is finite (or vice versa): worst-case scores
                snr, cos = -SNR_CAP_DB, 0.0
            rep[name] = dict(shape=st["shape"], dtype=st["dtype"], n=st["n"],
                             bit_identical=st["bit_identical"],
                             max_abs_diff=st["max_abs_diff"], snr_db=snr, cosine=cos,
                             nonfinite_mismatch=st["nonfinite_mismatch"],
                             shape_mismatch=st["shape_mismatch"])
        return rep

    def all_identical(self):
        return self.n_runs > 0 and all(s["bit_identical"] for s in self.stats.values())


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


def rendered_lines():
    rng = np.random.default_rng(1234)
    return [(t, render_line(i, t, rng)) for i, t in enumerate(TEXT_LINES)]


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

def task_ocr_rec(pair):
    meta = pair.so.get_modelmeta().custom_metadata_map
    n_cls = pair.so.get_outputs()[0].shape[-1]
    if "character" in meta:
        chars = ["<blank>"] + meta["character"].splitlines()
        if isinstance(n_cls, int) and len(chars) == n_cls - 1:
            chars.append(" ")
    else:
        chars = ["<blank>"] + [chr(0x20 + i) for i in range(95)]
    charset = set(chars)
    lines = rendered_lines()
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
                       frame_top1=frame_agree / max(frame_total, 1)),
        details=dict(samples=[dict(gt=t, original=o, candidate=c) for (t, _), o, c in
                              zip(lines, res["original"], res["candidate"])], **info),
    )


# --------------------------------------------------------------------------- text_cls

def task_text_cls(pair):
    lines = rendered_lines()
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
        agreement=dict(top1=float(np.mean(po == pc)), max_abs_prob_diff=probs_diff),
    )


# --------------------------------------------------------------------------- orientation

def render_page(idx, w, h, rng):
    font_size = 18 + (idx * 5) % 10
    font = load_font(idx, font_size)
    bg = 255 - int(rng.integers(0, 20))
    img = Image.new("RGB", (w, h), (bg, bg, bg))
    d = ImageDraw.Draw(img)
    words = PARAGRAPH.split()
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


def task_orientation(pair):
    rng = np.random.default_rng(4321)
    name = pair.so.get_inputs()[0].name
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    # Label k (metadata "character": 0, 90, 180, 270) means the page content is rotated
    # k*90 degrees CLOCKWISE (PIL ROTATE_270 is 90 deg clockwise). With the opposite
    # convention the original model's confusion matrix is an exact 90<->270 swap.
    rots = [None, Image.ROTATE_270, Image.ROTATE_180, Image.ROTATE_90]
    labels, po, pc = [], [], []
    sizes = [(600, 800), (800, 600), (640, 900), (700, 700), (900, 640), (560, 760)]
    n_pages = 10
    for p in range(n_pages):
        w, h = sizes[p % len(sizes)]
        page = render_page(p, w, h, rng)
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
        agreement=dict(top1=float(np.mean(po == pc))),
        details=dict(confusion_original=[[int(np.sum((labels == i) & (po == j))) for j in range(4)]
                                         for i in range(4)]),
    )


# --------------------------------------------------------------------------- ocr_det

def render_doc(idx, w, h, rng):
    bg = 255 - int(rng.integers(0, 25))
    img = Image.new("RGB", (w, h), (bg, bg, bg))
    d = ImageDraw.Draw(img)
    boxes = []
    y = 20 + int(rng.integers(0, 20))
    k = idx * 5
    while True:
        size = int(rng.integers(18, 40))
        font = load_font(k, size)
        text = TEXT_LINES[k % len(TEXT_LINES)]
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


def task_ocr_det(pair):
    rng = np.random.default_rng(777)
    name = pair.so.get_inputs()[0].name
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    sizes = [(640, 480), (480, 640), (736, 544), (608, 608), (544, 736), (672, 512)]
    inter_tot = union_tot = agree_tot = pix_tot = 0
    ious = []
    m = {"original": dict(hit=0, lines=0, pos=0, pos_in=0),
         "candidate": dict(hit=0, lines=0, pos=0, pos_in=0)}
    for i, (w, h) in enumerate(sizes):
        img, boxes = render_doc(i, w, h, rng)
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
        input_source="%d rendered document pages, imagenet mean/std normalization, threshold 0.3" % len(sizes),
        original=fin(m["original"]),
        candidate=fin(m["candidate"]),
        agreement=dict(iou_positive=inter_tot / union_tot if union_tot else 1.0,
                       mean_iou_per_image=float(np.mean(ious)),
                       pixel_agreement=agree_tot / max(pix_tot, 1)),
    )


# --------------------------------------------------------------------------- yolo

def yolo_images():
    import warnings
    warnings.filterwarnings("ignore")
    import skimage.data as sd
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
    extra = []
    for n, a in imgs:
        if n in ("astronaut", "camera"):
            extra.append((n + "_flip", np.ascontiguousarray(a[:, ::-1])))
            h, w = a.shape[:2]
            extra.append((n + "_crop", np.ascontiguousarray(a[: h * 2 // 3, w // 6: w * 5 // 6])))
    return imgs + extra


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


def task_yolo(pair):
    inp = pair.so.get_inputs()[0]
    size = 320
    if isinstance(inp.shape[2], int):
        size = inp.shape[2]
    imgs = yolo_images()
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
    return dict(
        n_inputs=len(imgs),
        input_source="%d scikit-image photographs (+flips/crops), letterboxed to %dx%d RGB/255" % (len(imgs), size, size),
        original=dict(boxes=n_o, boxes_per_image=n_o / max(len(imgs), 1)),
        candidate=dict(boxes=n_c, boxes_per_image=n_c / max(len(imgs), 1)),
        agreement=dict(orig_matched_by_cand=n_match_o / n_o if n_o else (1.0 if n_c == 0 else 0.0),
                       cand_matched_by_orig=n_match_c / n_c if n_c else (1.0 if n_o == 0 else 0.0)),
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


def espeak_segments(sr_out):
    exe = shutil.which("espeak-ng")
    if not exe:
        return None
    segs = []
    with tempfile.TemporaryDirectory() as td:
        for i, (voice, speed, pitch, text) in enumerate(SPEECH_SENTENCES):
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


def synth_segments(sr):
    rng = np.random.default_rng(99)
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


def build_audio(sr):
    segs = espeak_segments(sr)
    source = "espeak-ng"
    if segs is None:
        segs = synth_segments(sr)
        source = "synthetic harmonic signals (espeak-ng not available)"
    rng = np.random.default_rng(2024)
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


def task_vad(pair, model_name):
    names = {i.name: i for i in pair.so.get_inputs()}
    rates = [16000] if "16k" in model_name else [16000, 8000]
    st_shape = [d if isinstance(d, int) else 1 for d in names["state"].shape] if "state" in names else None
    out = dict(original={}, candidate={}, agreement={}, details={})
    n_frames_total = 0
    src = None
    for sr in rates:
        x, lab, src = build_audio(sr)
        chunk = 512 if sr == 16000 else 256
        ctx_n = 64 if sr == 16000 else 32
        n = len(x) // chunk
        states = {"o": np.zeros(st_shape, np.float32), "c": np.zeros(st_shape, np.float32)}
        ctx = np.zeros(ctx_n, np.float32)
        po, pc = np.zeros(n), np.zeros(n)
        for i in range(n):
            frame = x[i * chunk:(i + 1) * chunk]
            inp = np.concatenate([ctx, frame])[None].astype(np.float32)
            ctx = frame[-ctx_n:]
            feeds_o = {"input": inp, "state": states["o"], "sr": np.array(sr, np.int64)}
            oo = pair.so.run(None, feeds_o)
            try:
                oc = pair.sc.run(None, {"input": inp, "state": states["c"], "sr": np.array(sr, np.int64)})
            except Exception as e:  # noqa: BLE001
                raise CandidateError("candidate failed to run: %s" % str(e).splitlines()[0][:300])
            pair.n_runs += 1
            for nm, a, b in zip(pair.out_names, oo, oc):
                pair._accumulate(nm, np.asarray(a), np.asarray(b))
            states["o"], states["c"] = oo[1], oc[1]
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
    out["n_inputs"] = n_frames_total
    out["input_source"] = ("%s audio, %s, %d sentences with silences + noise, "
                           "%s frames carrying state" % (
                               src, "/".join("%dk" % (r // 1000) for r in rates),
                               len(SPEECH_SENTENCES), "512/256-sample + 64/32 context"))
    out["details"]["audio_source"] = src
    out["details"]["labels"] = "approximate: frames inside a trimmed utterance span are speech"
    return out


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


def task_generic(pair):
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
    n_inputs = 4
    agree = {n: [0, 0] for n in pair.out_names}
    for k in range(n_inputs):
        oo, oc = pair.run(generic_feeds(pair.so, np.random.default_rng(1000 + k), chosen))
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
    return dict(n_inputs=n_inputs,
                input_source="seeded random tensors (standard normal / small ints), symbolic dims -> %d" % chosen,
                original={}, candidate={}, agreement=ag)


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
    return "generic"


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
    ap.add_argument("original")
    ap.add_argument("candidate")
    ap.add_argument("--task", default="auto", choices=["auto"] + TASKS)
    ap.add_argument("--exact", action="store_true",
                    help="exit 1 unless every output of every input is bit-identical")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    t0 = time.time()
    task = auto_task(args.original) if args.task == "auto" else args.task
    result = dict(task=task, original_path=args.original, candidate_path=args.candidate)
    status = 0
    pair = None
    try:
        pair = Pair(args.original, args.candidate)
        if task == "ocr_rec":
            r = task_ocr_rec(pair)
        elif task == "ocr_det":
            r = task_ocr_det(pair)
        elif task == "text_cls":
            r = task_text_cls(pair)
        elif task == "orientation":
            r = task_orientation(pair)
        elif task == "yolo":
            r = task_yolo(pair)
        elif task == "vad":
            r = task_vad(pair, os.path.basename(args.original).lower())
        else:
            r = task_generic(pair)
        result.update(r)
    except CandidateError as e:
        result["error"] = str(e)
        status = 2
    except Exception as e:  # noqa: BLE001  (original model / harness failure)
        result["error"] = "evaluation failed: %s: %s" % (type(e).__name__, str(e).splitlines()[0][:300] if str(e) else "")
        status = 2
    if pair is not None:
        result["outputs"] = pair.output_report()
        result["bit_identical"] = pair.all_identical() and "error" not in result
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
