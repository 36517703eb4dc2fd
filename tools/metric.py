#!/usr/bin/env python3
"""Print ONE number: a task metric of a candidate ONNX model, for `nnc sweep --eval`.

    python3 tools/metric.py ORIGINAL.onnx CANDIDATE.onnx [--metric auto|...] [--task ...] [--json]

    nnc sweep model.onnx --eval 'python3 tools/metric.py model.onnx {model}' --max-drop 0.01

Built on tools/evaluate.py (same deterministic inputs, same task detection from the ORIGINAL's
file name). With --metric auto the number is, per task (higher is better for all of them):

  ocr_rec      char_acc      candidate's character accuracy vs the rendered ground truth
                             (1 - edit distance / characters); exact_match is available
  text_cls     accuracy      candidate's accuracy vs the true 0/180 labels
  orientation  accuracy      candidate's accuracy vs the true 0/90/180/270 labels
  ocr_det      iou           IoU of the candidate's text mask with the original's
  yolo         box_f1        box agreement: harmonic mean of the fraction of original boxes
                             matched by candidate boxes and vice versa (IoU >= 0.5, same class)
  vad          frame_agree   fraction of frames where the candidate's speech decision equals
                             the original's (mean over sample rates)
  generic      top1_agree    fraction of argmax agreements over the outputs (mean), falling
                             back to the mean output cosine similarity when no output has a
                             class axis
  face         face_decision face / non-face argmax agreement (MTCNN ONet)
  oww_mel, oww_emb, hotword, sentence_emb
               nn_agreement  nearest-neighbour retrieval agreement of the embeddings
  layout       boxes_matched_min  min of the two matched-box fractions (IoU >= 0.5, same class)

Other --metric values: any key of evaluate.py's "candidate" or "agreement" sections (e.g.
exact_match, text_equal, frame_top1, pixel_agreement, orig_matched_by_cand, top1).

Output: the number alone on stdout (with --json: {"metric": x, "task": ..., "name": ...}).
Exit status 2, with the reason on stderr, when the candidate fails to load or run or the
metric is undefined: `nnc sweep` then marks that setting as failed.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate  # noqa: E402  (tools/evaluate.py)

AUTO = {
    "ocr_rec": "char_acc",
    "text_cls": "accuracy",
    "orientation": "accuracy",
    "ocr_det": "iou",
    "yolo": "box_f1",
    "vad": "frame_agree",
    "generic": "top1_agree",
    "face": "face_decision",
    "oww_mel": "nn_agreement",
    "oww_emb": "nn_agreement",
    "hotword": "nn_agreement",
    "sentence_emb": "nn_agreement",
    "layout": "boxes_matched_min",
}


def run_task(task, pair, original_path):
    return evaluate.run_task(task, pair, original_path)


def pick(result, name):
    """The metric `name` from an evaluate.py task result, or None."""
    cand = result.get("candidate", {})
    agree = result.get("agreement", {})
    if name == "iou":
        return agree.get("iou_positive")
    if name == "box_f1":
        a, b = agree.get("orig_matched_by_cand"), agree.get("cand_matched_by_orig")
        if a is None or b is None:
            return None
        return 0.0 if a + b == 0 else 2 * a * b / (a + b)
    if name == "frame_agree":
        v = [x for k, x in agree.items() if k.startswith("frame_agreement_")]
        return sum(v) / len(v) if v else None
    if name == "top1_agree":
        v = [x for k, x in agree.items() if k.startswith("top1_")]
        if v:
            return sum(v) / len(v)
        c = [x for k, x in agree.items() if k.startswith("cosine_")]
        return sum(c) / len(c) if c else None
    if name in cand:
        return cand[name]
    return agree.get(name)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("original")
    ap.add_argument("candidate")
    ap.add_argument("--metric", default="auto",
                    help="auto (per task, see above) or a key of evaluate.py's candidate/agreement results")
    ap.add_argument("--task", default="auto", choices=["auto"] + evaluate.TASKS)
    ap.add_argument("--json", action="store_true", help='print {"metric": x, "task": ..., "name": ...}')
    args = ap.parse_args(argv)

    task = evaluate.auto_task(args.original) if args.task == "auto" else args.task
    name = AUTO[task] if args.metric == "auto" else args.metric
    try:
        pair = evaluate.Pair(args.original, args.candidate)
        result = run_task(task, pair, args.original)
    except evaluate.CandidateError as e:
        print("metric.py: candidate failed: %s" % e, file=sys.stderr)
        return 2
    value = pick(result, name)
    if value is None or isinstance(value, str) or value != value:
        print("metric.py: metric %r undefined for task %s (keys: %s)" % (
            name, task, sorted(set(result.get("candidate", {})) | set(result.get("agreement", {})))),
            file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"metric": float(value), "task": task, "name": name}))
    else:
        print(repr(float(value)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
